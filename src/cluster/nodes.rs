//! Growing and shrinking a profile by workers: `minik node add` creates, boots and joins one
//! ([`super::steps::ADD_NODE`]), removing it again on failure or the first Ctrl-C; `minik node
//! delete` drains it, drops its routes and deletes it.

use super::error::{ClusterError, ClusterKind};
use super::kubernetes::{self, PlannedNode};
use super::steps::{ADD_NODE, StepCtx};
use crate::any_driver::AnyDriver;
use crate::k8s::version::KubernetesVersion;
use crate::session::Session;
use crate::state::{NodeRecord, Profile};
use minik_driver_api::{Driver, HostState, NodeInfo, NodeSpec, Role};
use std::time::Duration;

/// How to add the node.
#[derive(Debug, Clone, Copy)]
pub struct AddOptions {
    pub wait: bool,
    pub wait_timeout: Duration,
    pub keep_on_failure: bool,
}

/// Adds one worker to a running profile and records it; returns its record. The caller holds
/// the profile lock; `live` is the nodes' state as read under it.
pub async fn add_worker(
    s: &Session<'_>,
    driver: &AnyDriver,
    profile: &mut Profile,
    live: &[NodeInfo],
    opts: AddOptions,
) -> anyhow::Result<NodeRecord> {
    let name = profile.name.clone();
    let reporter = s.reporter;
    // The first SIGINT/SIGTERM is this function's: it removes the node it was adding.
    let _scope = crate::interrupt::Scope::enter(format!(
        "Run `minik start -p {name}`: it removes a node that an interrupted `node add` left."
    ));
    let recorded: Vec<&str> = profile.nodes.iter().map(|n| n.name.as_str()).collect();
    super::remove_unrecorded(driver, &name, &recorded, live, reporter).await?;
    for n in &profile.nodes {
        let state = super::state_of(live, &n.name);
        if state != HostState::Running {
            return Err(ClusterError::new(
                ClusterKind::NotRunning,
                format!(
                    "node {} is {state}: nodes are added to a running profile",
                    n.name
                ),
            )
            .with_advice(format!("Start it first with `minik start -p {name}`."))
            .into());
        }
    }
    let index = profile.nodes.iter().map(|n| n.index).max().unwrap_or(0) + 1;
    let record = NodeRecord {
        name: Profile::node_name(&name, index),
        role: Role::Worker,
        index,
    };
    let mut grown = profile.clone();
    grown.nodes.push(record.clone());

    let work = async {
        let step = reporter.step("create-nodes", format!("Creating node {}", record.name));
        step.finish_with(
            driver
                .create_node(
                    &super::request_for(profile),
                    &NodeSpec::from(&record),
                    reporter,
                )
                .await
                .map_err(anyhow::Error::from),
        )?;
        super::wait_all_booted(
            driver,
            std::iter::once(record.name.as_str()),
            reporter,
            opts.wait_timeout,
            super::Stopped::Fails,
        )
        .await?;
        if let Some(k) = &profile.kubernetes {
            let version = KubernetesVersion::resolve(&k.version)?;
            let mut plan = kubernetes::plan_for(driver, &grown, version, false).await?;
            plan.token =
                kubernetes::create_token(&driver.runner(&plan.control_plane().name)).await?;
            let ctx = StepCtx::grow(driver, &plan, &[record.name.as_str()]);
            super::steps::run_all(ADD_NODE, &ctx, reporter).await?;
            if opts.wait {
                let config = kubernetes::export_kubeconfig(driver, &plan).await?;
                kubernetes::wait_ready(driver, &plan, &config, reporter, opts.wait_timeout).await?;
            }
        }
        anyhow::Ok(())
    };
    if let Err(err) = crate::interrupt::or_cancelled(work, "adding the node").await {
        if opts.keep_on_failure {
            reporter.warn(&format!(
                "keeping node {} (--keep-on-failure); remove it with `minik node delete {}`",
                record.name, record.name
            ));
        } else {
            let step = reporter.step("cleanup", format!("Removing node {}", record.name));
            match driver.delete_node(&record.name).await {
                Ok(_) => step.done(),
                Err(e) => {
                    step.fail(&e.to_string());
                    reporter.warn(&format!(
                        "cleanup failed: {e}; `minik start -p {name}` removes the node"
                    ));
                }
            }
        }
        return Err(err);
    }
    *profile = grown;
    profile.save(s.home)?;
    Ok(record)
}

/// Takes a worker out of the cluster (drained, when the control plane runs) and deletes it,
/// then records the smaller profile. The caller holds the profile lock.
pub async fn delete_worker(
    s: &Session<'_>,
    driver: &AnyDriver,
    profile: &mut Profile,
    live: &[NodeInfo],
    record: &NodeRecord,
) -> anyhow::Result<()> {
    let reporter = s.reporter;
    let mut shrunk = profile.clone();
    shrunk.nodes.retain(|n| n.name != record.name);
    if let Some(k) = &profile.kubernetes {
        let cp_state = super::state_of(live, &profile.control_plane().name);
        if cp_state == HostState::Running {
            let version = KubernetesVersion::resolve(&k.version)?;
            let plan = kubernetes::plan_for(driver, &shrunk, version, false).await?;
            let departing = PlannedNode {
                name: record.name.clone(),
                role: record.role,
                index: record.index,
                ip: String::new(),
            };
            let step = reporter.step(
                "drain",
                format!("Removing {} from the cluster", record.name),
            );
            step.finish_with(kubernetes::remove_node(driver, &plan, &departing, reporter).await)?;
        } else {
            reporter.warn(&format!(
                "the control plane is {cp_state}: node {} is removed without draining it",
                record.name
            ));
        }
    }
    let step = reporter.step("delete-node", format!("Deleting node {}", record.name));
    step.finish_with(
        driver
            .delete_node(&record.name)
            .await
            .map_err(anyhow::Error::from),
    )?;
    *profile = shrunk;
    profile.save(s.home)?;
    Ok(())
}
