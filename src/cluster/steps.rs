//! The Kubernetes setup steps, listed in one place. `minik start` runs [`BOOTSTRAP`] on a new
//! profile's nodes; `minik node add` runs [`ADD_NODE`] for the new worker. Each step is a value
//! with a stable name (the progress line's id and the JSON event's `step`), a title, a rule for
//! whether it applies, and its work over the `Runner`s of the nodes ([`StepCtx`]).
//!
//! | step             | start (bootstrap)                         | node add                      |
//! |------------------|-------------------------------------------|-------------------------------|
//! | `kubeadm-config` | every node's kubeadm configuration        | the new node's                |
//! | `network`        | CNI conflist, pod routes, NAT, every node | every node, one at a time      |
//! | `kubeadm-init`   | `kubeadm init` on the first control plane | —                             |
//! | `storage`        | the default StorageClass                  | —                             |
//! | `kubeadm-join`   | the other nodes, in parallel              | the new node                  |
//!
//! Creating and booting the nodes come before (`cluster::provision`), exporting the kubeconfig
//! and waiting for readiness after ([`super::kubernetes`]).

use super::kubernetes::{self, ADMIN_CONF, Plan, PlannedNode, STORAGE_CLASS, STORAGE_MANIFEST};
use crate::ui::Reporter;
use futures_util::future::try_join_all;
use kube::config::Kubeconfig;
use minik_driver_api::{Driver, Runner};

/// One setup step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Render each new node's kubeadm configuration and copy it in.
    KubeadmConfig,
    /// minik's imageless CNI on every node: bridge conflist, routes to the other nodes' pod
    /// CIDRs, one masquerade rule, a boot unit that re-applies them.
    Network,
    /// `kubeadm init` on the first control plane.
    KubeadmInit,
    /// The default StorageClass (in-tree hostPath provisioner: no image).
    Storage,
    /// `kubeadm join` on the new nodes other than the first control plane.
    KubeadmJoin,
}

/// `minik start` on a new profile.
pub const BOOTSTRAP: &[Step] = &[
    Step::KubeadmConfig,
    Step::Network,
    Step::KubeadmInit,
    Step::Storage,
    Step::KubeadmJoin,
];

/// `minik node add`: the new worker's configuration, every node's routes, its join.
pub const ADD_NODE: &[Step] = &[Step::KubeadmConfig, Step::Network, Step::KubeadmJoin];

/// Whether the steps make a cluster or grow one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// A new cluster: every node of the plan is new, the first control plane inits.
    Bootstrap,
    /// Nodes join a running cluster (the plan carries a fresh join token).
    Grow,
}

/// What the steps work on.
pub struct StepCtx<'a, D: Driver> {
    pub driver: &'a D,
    pub plan: &'a Plan,
    pub goal: Goal,
    /// The nodes this run sets up (all of the plan's for [`Goal::Bootstrap`]).
    pub new_nodes: Vec<&'a PlannedNode>,
}

impl<'a, D: Driver> StepCtx<'a, D> {
    /// Every node of `plan` is new.
    pub fn bootstrap(driver: &'a D, plan: &'a Plan) -> Self {
        StepCtx {
            driver,
            plan,
            goal: Goal::Bootstrap,
            new_nodes: plan.nodes.iter().collect(),
        }
    }

    /// The nodes of `plan` named in `names` join the running cluster.
    pub fn grow(driver: &'a D, plan: &'a Plan, names: &[&str]) -> Self {
        StepCtx {
            driver,
            plan,
            goal: Goal::Grow,
            new_nodes: plan
                .nodes
                .iter()
                .filter(|n| names.contains(&n.name.as_str()))
                .collect(),
        }
    }

    /// The new nodes that join (all of them but the bootstrap control plane).
    fn joiners(&self) -> Vec<&'a PlannedNode> {
        let cp = self.plan.control_plane().index;
        self.new_nodes
            .iter()
            .copied()
            .filter(|n| self.goal == Goal::Grow || n.index != cp)
            .collect()
    }
}

impl Step {
    /// The stable id: progress lines, JSON events, `minik start -v` logs.
    pub fn name(self) -> &'static str {
        match self {
            Step::KubeadmConfig => "kubeadm-config",
            Step::Network => "network",
            Step::KubeadmInit => "kubeadm-init",
            Step::Storage => "storage",
            Step::KubeadmJoin => "kubeadm-join",
        }
    }

    /// The progress line.
    pub fn title<D: Driver>(self, ctx: &StepCtx<'_, D>) -> String {
        match self {
            Step::KubeadmConfig => "Writing kubeadm configuration".into(),
            Step::Network => "Configuring the pod network".into(),
            Step::KubeadmInit => format!(
                "Starting the control plane (Kubernetes {})",
                ctx.plan.version
            ),
            Step::Storage => "Installing the default StorageClass".into(),
            Step::KubeadmJoin => match (ctx.goal, ctx.joiners().as_slice()) {
                (Goal::Grow, [one]) => format!("Joining {}", one.name),
                (_, joiners) => format!("Joining {} node(s)", joiners.len()),
            },
        }
    }

    /// Whether the step has work in `ctx`.
    pub fn applies<D: Driver>(self, ctx: &StepCtx<'_, D>) -> bool {
        match self {
            Step::KubeadmConfig | Step::Network => true,
            Step::KubeadmInit | Step::Storage => ctx.goal == Goal::Bootstrap,
            Step::KubeadmJoin => !ctx.joiners().is_empty(),
        }
    }

    /// The step's work.
    pub async fn run<D: Driver>(self, ctx: &StepCtx<'_, D>) -> anyhow::Result<()> {
        let plan = ctx.plan;
        let runner = |node: &PlannedNode| ctx.driver.runner(&node.name);
        match self {
            Step::KubeadmConfig => {
                try_join_all(ctx.new_nodes.iter().map(|node| async move {
                    kubernetes::write_kubeadm_config(&runner(node), plan, node).await
                }))
                .await?;
            }
            // New nodes in parallel; a running cluster's nodes one at a time, so a failure
            // stops before the next node and never leaves several half-reconfigured.
            Step::Network if ctx.goal == Goal::Bootstrap => {
                try_join_all(plan.nodes.iter().map(|node| async move {
                    kubernetes::configure_network(&runner(node), plan, node).await
                }))
                .await?;
            }
            Step::Network => {
                for node in &plan.nodes {
                    kubernetes::configure_network(&runner(node), plan, node).await?;
                }
            }
            Step::KubeadmInit => kubernetes::init(&runner(plan.control_plane())).await?,
            Step::Storage => {
                let cp = runner(plan.control_plane());
                cp.copy_to(STORAGE_MANIFEST, STORAGE_CLASS.as_bytes(), 0o644)
                    .await?;
                kubernetes::must(
                    &cp,
                    "storage",
                    &[
                        "kubectl",
                        "--kubeconfig",
                        ADMIN_CONF,
                        "apply",
                        "-f",
                        STORAGE_MANIFEST,
                    ],
                )
                .await?;
            }
            Step::KubeadmJoin => {
                try_join_all(
                    ctx.joiners()
                        .into_iter()
                        .map(|node| async move { kubernetes::join(&runner(node)).await }),
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// Runs the steps that apply, in order, each as one progress step; stops at the first failure.
pub async fn run_all<D: Driver>(
    steps: &[Step],
    ctx: &StepCtx<'_, D>,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    for step in steps.iter().copied().filter(|s| s.applies(ctx)) {
        let progress = reporter.step(step.name(), step.title(ctx));
        progress.finish_with(step.run(ctx).await)?;
    }
    Ok(())
}

/// A new cluster: [`BOOTSTRAP`] on every node of `plan`, then the profile's kubeconfig from
/// the control plane (returned, not yet written anywhere).
pub async fn bootstrap<D: Driver>(
    driver: &D,
    plan: &Plan,
    reporter: &Reporter,
) -> anyhow::Result<Kubeconfig> {
    run_all(BOOTSTRAP, &StepCtx::bootstrap(driver, plan), reporter).await?;
    let step = reporter.step("kubeconfig", "Exporting the kubeconfig");
    step.finish_with(kubernetes::export_kubeconfig(driver, plan).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::kubernetes::tests::plan;
    use minik_driver_api::fake::{FakeDriver, FakeEngine};

    fn names<D: Driver>(steps: &[Step], ctx: &StepCtx<'_, D>) -> Vec<(String, String)> {
        steps
            .iter()
            .filter(|s| s.applies(ctx))
            .map(|s| (s.name().to_string(), s.title(ctx)))
            .collect()
    }

    #[test]
    fn the_bootstrap_of_one_node_joins_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let driver = FakeDriver::new(FakeEngine::new(dir.path().join("e.json")));
        let p = plan(1);
        let ctx = StepCtx::bootstrap(&driver, &p);
        let got = names(BOOTSTRAP, &ctx);
        let ids: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            ids,
            ["kubeadm-config", "network", "kubeadm-init", "storage"]
        );
    }

    #[test]
    fn the_bootstrap_joins_every_node_but_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let driver = FakeDriver::new(FakeEngine::new(dir.path().join("e.json")));
        let p = plan(3);
        let ctx = StepCtx::bootstrap(&driver, &p);
        let got = names(BOOTSTRAP, &ctx);
        assert_eq!(got.last().unwrap().0, "kubeadm-join");
        assert_eq!(got.last().unwrap().1, "Joining 2 node(s)");
        assert_eq!(ctx.joiners().len(), 2);
    }

    #[test]
    fn adding_a_node_configures_and_joins_it_and_routes_every_node() {
        let dir = tempfile::tempdir().unwrap();
        let driver = FakeDriver::new(FakeEngine::new(dir.path().join("e.json")));
        let p = plan(3);
        let ctx = StepCtx::grow(&driver, &p, &["k-m03"]);
        let got = names(ADD_NODE, &ctx);
        let ids: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(ids, ["kubeadm-config", "network", "kubeadm-join"]);
        assert_eq!(got[2].1, "Joining k-m03");
        assert_eq!(ctx.new_nodes.len(), 1);
        assert!(!Step::KubeadmInit.applies(&ctx));
        assert!(!Step::Storage.applies(&ctx));
    }
}
