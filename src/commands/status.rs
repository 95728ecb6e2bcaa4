//! `minik status`: per node the host state and, on Kubernetes profiles, kubelet, API server and
//! kubeconfig (minikube's fields and values); the exit code is minikube's bitmask
//! (docs/exit-codes.md).

use super::{Context, live_nodes, state_of};
use crate::any_driver::AnyDriver;
use crate::cli::StatusArgs;
use crate::cluster::health::{self, ComponentState};
use crate::k8s::kubeconfig::{self, KubeconfigStatus};
use crate::state::{NodeRecord, Profile};
use futures_util::future::join_all;
use minik_driver_api::{Driver, HostState, NodeInfo, Role};
use serde::Serialize;
use std::collections::BTreeMap;

/// Bit set when a node's host is not running.
pub const HOST_NOT_RUNNING: u8 = 1;
/// Bit set when kubelet or the API server of a Kubernetes profile is not running.
pub const CLUSTER_NOT_OK: u8 = 2;
/// Bit set when the profile's kubeconfig context is missing or points elsewhere.
pub const KUBECONFIG_NOT_OK: u8 = 4;

/// The component value of workers (API server, kubeconfig) and of --no-kubernetes profiles.
pub const IRRELEVANT: &str = "Irrelevant";

/// One node's status. Field names follow minikube's `status -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeStatus {
    pub name: String,
    pub role: String,
    pub host: String,
    /// Running, Stopped, Error (or the host state when the host is not running); `Irrelevant`
    /// on --no-kubernetes profiles.
    pub kubelet: String,
    /// Running, Stopped, Paused, Error on control planes; `Irrelevant` on workers and
    /// --no-kubernetes profiles.
    #[serde(rename = "APIServer")]
    pub api_server: String,
    /// Configured or Misconfigured on control planes; `Irrelevant` on workers and
    /// --no-kubernetes profiles.
    pub kubeconfig: String,
    pub worker: bool,
    #[serde(rename = "IP")]
    pub ip: Option<String>,
    /// Published node ports (node port → host port on 127.0.0.1); control planes only.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: BTreeMap<u16, u16>,
}

impl NodeStatus {
    /// The status bits this node sets (minikube's rules: Irrelevant never counts).
    pub fn exit_bits(&self, kubernetes: bool) -> u8 {
        let mut code = 0;
        if self.host != HostState::Running.as_str() {
            code |= HOST_NOT_RUNNING;
        }
        if !kubernetes {
            return code;
        }
        let running = ComponentState::Running.as_str();
        if self.kubelet != running || (self.api_server != running && self.api_server != IRRELEVANT)
        {
            code |= CLUSTER_NOT_OK;
        }
        if self.kubeconfig != KubeconfigStatus::Configured.as_str() && self.kubeconfig != IRRELEVANT
        {
            code |= KUBECONFIG_NOT_OK;
        }
        code
    }
}

pub async fn run(ctx: &Context, args: StatusArgs) -> anyhow::Result<u8> {
    let profile = ctx.load_profile().await?;
    let (driver, live) = live_nodes(ctx, &profile).await?;
    let mut nodes: Vec<&NodeRecord> = profile.nodes.iter().collect();
    if let Some(wanted) = &args.node {
        let known: Vec<String> = profile.nodes.iter().map(|n| n.name.clone()).collect();
        let node = profile
            .find_node(wanted)
            .ok_or_else(|| crate::cluster::unknown_node(&profile.name, wanted, &known))?;
        nodes = vec![node];
    }
    let kubernetes = profile.kubernetes.is_some();
    let statuses: Vec<NodeStatus> = join_all(
        nodes
            .iter()
            .map(|n| node_status(&driver, &profile, &live, n)),
    )
    .await;
    let code = statuses
        .iter()
        .fold(0, |code, s| code | s.exit_bits(kubernetes));
    if ctx.json() {
        crate::outln!("{}", serde_json::to_string(&statuses)?);
    } else {
        crate::ui::out::write(render_text(&profile, &statuses).as_bytes());
    }
    Ok(code)
}

/// One node's status; node commands only run when its host is running.
async fn node_status(
    driver: &AnyDriver,
    profile: &Profile,
    live: &[NodeInfo],
    node: &NodeRecord,
) -> NodeStatus {
    let info = live.iter().find(|l| l.name == node.name);
    let host = state_of(live, &node.name);
    let control_plane = node.role == Role::ControlPlane;
    let mut status = NodeStatus {
        name: node.name.clone(),
        role: node.role.to_string(),
        host: host.to_string(),
        kubelet: IRRELEVANT.into(),
        api_server: IRRELEVANT.into(),
        kubeconfig: IRRELEVANT.into(),
        worker: node.role == Role::Worker,
        ip: info.and_then(|l| l.ip.clone()),
        ports: info.map(|l| l.ports.clone()).unwrap_or_default(),
    };
    if profile.kubernetes.is_none() {
        return status;
    }
    if host != HostState::Running {
        // minikube's rule: a host that is not running gives its state to every component.
        status.kubelet = host.to_string();
        if control_plane {
            status.api_server = host.to_string();
            status.kubeconfig = host.to_string();
        }
        return status;
    }
    let runner = driver.runner(&node.name);
    if control_plane {
        // Independent probes run together, so a hung node costs one timeout, not three.
        let (kubelet, api_server, kubeconfig) = tokio::join!(
            health::kubelet(&runner),
            health::apiserver(&runner),
            kubeconfig::status_of_profile(&profile.name, info.and_then(|l| l.api_port)),
        );
        status.kubelet = kubelet.to_string();
        status.api_server = api_server.to_string();
        status.kubeconfig = kubeconfig.as_str().to_string();
    } else {
        status.kubelet = health::kubelet(&runner).await.to_string();
    }
    status
}

/// The text layout: minikube's per-node blocks (name, type, host, kubelet, apiserver and
/// kubeconfig on control planes), then minik's `ip:` line; a warning with the fix when the
/// kubeconfig is Misconfigured.
pub fn render_text(profile: &Profile, statuses: &[NodeStatus]) -> String {
    let mut text = String::new();
    for (i, s) in statuses.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(&format!("{}\n", s.name));
        text.push_str(&format!(
            "type: {}\n",
            if s.worker { "Worker" } else { "Control Plane" }
        ));
        text.push_str(&format!("host: {}\n", s.host));
        if profile.kubernetes.is_none() {
            text.push_str("kubernetes: disabled (--no-kubernetes)\n");
        } else {
            text.push_str(&format!("kubelet: {}\n", s.kubelet));
            if !s.worker {
                text.push_str(&format!("apiserver: {}\n", s.api_server));
                text.push_str(&format!("kubeconfig: {}\n", s.kubeconfig));
            }
        }
        if let Some(ip) = &s.ip {
            text.push_str(&format!("ip: {ip}\n"));
        }
        if !s.ports.is_empty() {
            let ports: Vec<String> = s
                .ports
                .iter()
                .map(|(node, host)| format!("127.0.0.1:{host}->{node}"))
                .collect();
            text.push_str(&format!("ports: {}\n", ports.join(", ")));
        }
    }
    if statuses
        .iter()
        .any(|s| s.kubeconfig == KubeconfigStatus::Misconfigured.as_str())
    {
        text.push_str(&format!(
            "\nWARNING: Your kubectl is pointing to a stale or missing context for \"{0}\".\n\
             To fix the kubectl context, run `minik update-context -p {0}`\n",
            profile.name
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{KubernetesSpec, PROFILE_SCHEMA};

    fn status(host: &str, kubelet: &str, api: &str, kubeconfig: &str, worker: bool) -> NodeStatus {
        NodeStatus {
            name: if worker { "p-m02" } else { "p" }.into(),
            role: if worker { "worker" } else { "control-plane" }.into(),
            host: host.into(),
            kubelet: kubelet.into(),
            api_server: api.into(),
            kubeconfig: kubeconfig.into(),
            worker,
            ip: None,
            ports: if worker {
                BTreeMap::new()
            } else {
                BTreeMap::from([(80, 40002), (443, 40003), (6443, 40001)])
            },
        }
    }

    #[test]
    fn bitmask_follows_minikube() {
        let healthy = status("Running", "Running", "Running", "Configured", false);
        assert_eq!(healthy.exit_bits(true), 0);
        let paused = status("Running", "Stopped", "Paused", "Configured", false);
        assert_eq!(paused.exit_bits(true), CLUSTER_NOT_OK);
        let stopped = status("Stopped", "Stopped", "Stopped", "Stopped", false);
        assert_eq!(stopped.exit_bits(true), 7);
        let stale = status("Running", "Running", "Running", "Misconfigured", false);
        assert_eq!(stale.exit_bits(true), KUBECONFIG_NOT_OK);
        let worker = status("Running", "Running", IRRELEVANT, IRRELEVANT, true);
        assert_eq!(worker.exit_bits(true), 0);
        let worker_down = status("Running", "Error", IRRELEVANT, IRRELEVANT, true);
        assert_eq!(worker_down.exit_bits(true), CLUSTER_NOT_OK);
        // --no-kubernetes: only the host counts.
        let sandbox = status("Paused", IRRELEVANT, IRRELEVANT, IRRELEVANT, false);
        assert_eq!(sandbox.exit_bits(false), HOST_NOT_RUNNING);
    }

    #[test]
    fn text_layout() {
        let profile = Profile {
            schema: PROFILE_SCHEMA,
            name: "p".into(),
            driver: "fake".into(),
            image: "img".into(),
            cpus: None,
            memory_mib: None,
            nodes: Profile::node_records("p", 2),
            kubernetes: Some(KubernetesSpec {
                version: "v1.35.0".into(),
            }),
            addons: Default::default(),
            addon_images: Default::default(),
            created_unix: 0,
        };
        let text = render_text(
            &profile,
            &[
                status("Running", "Running", "Running", "Misconfigured", false),
                status("Running", "Running", IRRELEVANT, IRRELEVANT, true),
            ],
        );
        assert_eq!(
            text,
            "p\ntype: Control Plane\nhost: Running\nkubelet: Running\napiserver: Running\n\
             kubeconfig: Misconfigured\n\
             ports: 127.0.0.1:40002->80, 127.0.0.1:40003->443, 127.0.0.1:40001->6443\n\
             \np-m02\ntype: Worker\nhost: Running\nkubelet: Running\n\
             \nWARNING: Your kubectl is pointing to a stale or missing context for \"p\".\n\
             To fix the kubectl context, run `minik update-context -p p`\n"
        );
    }
}
