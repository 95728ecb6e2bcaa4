//! An existing profile comes back with its data: missing nodes recreated, stopped ones
//! started, paused ones resumed. Kubernetes is never bootstrapped again: node addresses and the
//! API port are stable, so the kubelet brings the static pods back by itself; this checks the
//! addresses held, resumes what `minik pause` froze, waits, rewrites the kubeconfig and
//! re-applies the enabled addons.

use super::create::{QemuSettings, Running, write_kubeconfig};
use super::error::{ClusterError, ClusterKind};
use super::{kubernetes, pause};
use crate::any_driver::AnyDriver;
use crate::k8s::version::KubernetesVersion;
use crate::node_image::build::BuildPlan;
use crate::session::Session;
use crate::state::Profile;
use minik_driver_api::{Driver, NodeSpec, Runner};
use std::path::PathBuf;
use std::time::Duration;

/// How to bring the profile back (flags already checked by the command).
#[derive(Debug, Clone)]
pub struct RestartRequest {
    /// Addons to enable on top of the recorded ones.
    pub addons: Vec<String>,
    /// For nodes that have to be recreated from minik's own image.
    pub kubernetes_from: Option<PathBuf>,
    pub qemu: QemuSettings,
    pub wait: bool,
    pub wait_timeout: Duration,
    /// Make the context kubectl's current one.
    pub set_current_context: bool,
}

/// Brings `profile` back. The caller holds the profile lock.
pub async fn restart(
    s: &Session<'_>,
    mut profile: Profile,
    req: &RestartRequest,
) -> anyhow::Result<Running> {
    let reporter = s.reporter;
    if !req.addons.is_empty() {
        for name in crate::addons::with_requirements(&req.addons)? {
            profile.addons.insert(name, true);
        }
        profile.save(s.home)?;
    }
    let step = reporter.step("engine", "Checking the container engine");
    let mut driver = AnyDriver::connect(&profile.driver, s.home)?;
    req.qemu.apply(s, &mut driver);
    step.finish_with(driver.check_explained().await)?;
    let nodes: Vec<NodeSpec> = profile.nodes.iter().map(NodeSpec::from).collect();
    let live = driver.list_nodes(&profile.name).await?;
    if profile
        .nodes
        .iter()
        .any(|n| !live.iter().any(|l| l.name == n.name))
    {
        // Nodes to recreate need the image (existing nodes keep the one they were made from).
        let version = match &profile.kubernetes {
            Some(k) => Some(KubernetesVersion::resolve(&k.version)?),
            None => None,
        };
        let mut plan = BuildPlan::new(version, req.kubernetes_from.clone());
        let is_default = plan.tag == profile.image;
        plan.tag = profile.image.clone();
        crate::node_image::build::ensure(s, &driver, &plan, is_default).await?;
    }
    super::start_existing(
        &driver,
        &super::request_for(&profile),
        &nodes,
        reporter,
        req.wait_timeout,
    )
    .await?;
    if let Some(spec) = &profile.kubernetes {
        let version = KubernetesVersion::resolve(&spec.version)?;
        let plan = kubernetes::plan_for(&driver, &profile, version, false).await?;
        check_addresses(&driver, &plan).await?;
        // A cluster paused with `minik pause` comes back whole: resume its containers and
        // its kubelet. A node that kept running through an interrupted `minik stop` (killed
        // after it stopped the kubelet, before the engine stopped the node) gets its kubelet
        // back too: `systemctl start` is a no-op where it already runs.
        for node in &plan.nodes {
            let runner = driver.runner(&node.name);
            if !pause::read_marker(&runner).await?.is_empty() {
                pause::unpause_node(&runner, true).await?;
            } else {
                pause::start_kubelet(&runner).await?;
            }
        }
        let config = kubernetes::export_kubeconfig(&driver, &plan).await?;
        if req.wait {
            kubernetes::wait_ready(&driver, &plan, &config, reporter, req.wait_timeout).await?;
        }
        write_kubeconfig(s, config, req.set_current_context).await?;
        // Re-apply the enabled addons after every restart (objects deleted by hand come
        // back), without waiting for their pods: they restart with the node, and the wait
        // above already covered the nodes and CoreDNS (minikube's default wait is the same).
        crate::addons::profile::apply_enabled(reporter, &driver, &profile, false, req.wait_timeout)
            .await;
    }
    let live = driver.list_nodes(&profile.name).await?;
    Ok(Running {
        driver,
        profile,
        live,
    })
}

/// Fails when a node's address differs from the one its kubeadm configuration was written
/// for (certificates and kubeconfigs name it): the cluster cannot come back as it was.
async fn check_addresses(driver: &AnyDriver, plan: &kubernetes::Plan) -> anyhow::Result<()> {
    for node in &plan.nodes {
        let runner = driver.runner(&node.name);
        let config = match runner
            .read_file(crate::k8s::kubeadm::KUBEADM_CONFIG_PATH)
            .await
        {
            Ok(c) => String::from_utf8_lossy(&c).into_owned(),
            Err(_) => continue,
        };
        if !names_address(&config, &node.ip) {
            return Err(ClusterError::new(
                ClusterKind::Bootstrap,
                format!(
                    "node {} came back with address {}, not the one its certificates were made for",
                    node.name, node.ip
                ),
            )
            .with_advice(format!(
                "Recreate the profile: `minik delete -p {0} && minik start -p {0}`.",
                plan.profile
            ))
            .into());
        }
    }
    Ok(())
}

/// Whether a kubeadm configuration names `ip` as a whole address (`192.168.49.2` is not named
/// by a config for `192.168.49.20`, nor by `10.192.168.49.2`).
fn names_address(config: &str, ip: &str) -> bool {
    config
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .any(|token| token == ip)
}

#[cfg(test)]
mod tests {
    use super::names_address;

    #[test]
    fn address_check_matches_whole_addresses_only() {
        let config = "localAPIEndpoint:\n  advertiseAddress: 192.168.49.20\ncontrolPlaneEndpoint: 192.168.49.20:6443\n  - name: node-ip\n    value: \"192.168.49.20\"\n";
        assert!(names_address(config, "192.168.49.20"));
        assert!(!names_address(config, "192.168.49.2"), "a prefix of .20");
        assert!(!names_address(config, "168.49.20"), "a suffix");
        assert!(names_address(
            "controlPlaneEndpoint: 10.0.0.3:6443",
            "10.0.0.3"
        ));
        assert!(!names_address("", "10.0.0.3"));
    }
}
