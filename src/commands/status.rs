//! `minik status`: per node name, role and host state; exit code a bitmask (docs/exit-codes.md).

use super::{Context, live_nodes, state_of};
use crate::cli::StatusArgs;
use minik_driver_api::{HostState, Role};
use serde::Serialize;

/// Bit set when a node's host is not running.
pub const HOST_NOT_RUNNING: u8 = 1;

/// One node's status. Field names follow minikube's `status -o json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeStatus {
    pub name: String,
    pub role: String,
    pub host: String,
    /// `Irrelevant` on --no-kubernetes profiles.
    pub kubelet: String,
    #[serde(rename = "APIServer")]
    pub api_server: String,
    pub kubeconfig: String,
    pub worker: bool,
    #[serde(rename = "IP")]
    pub ip: Option<String>,
}

pub async fn run(ctx: &Context, args: StatusArgs) -> anyhow::Result<u8> {
    let profile = ctx.load_profile()?;
    let (_driver, live) = live_nodes(ctx, &profile).await?;
    let mut nodes: Vec<&crate::state::NodeRecord> = profile.nodes.iter().collect();
    if let Some(wanted) = &args.node {
        let known: Vec<String> = profile.nodes.iter().map(|n| n.name.clone()).collect();
        let node = profile
            .find_node(wanted)
            .ok_or_else(|| crate::cluster::unknown_node(&profile.name, wanted, &known))?;
        nodes = vec![node];
    }
    let mut code = 0;
    let mut statuses = Vec::new();
    for n in nodes {
        let state = state_of(&live, &n.name);
        if state != HostState::Running {
            code |= HOST_NOT_RUNNING;
        }
        let irrelevant = "Irrelevant".to_string();
        statuses.push(NodeStatus {
            name: n.name.clone(),
            role: n.role.to_string(),
            host: state.to_string(),
            kubelet: irrelevant.clone(),
            api_server: irrelevant.clone(),
            kubeconfig: irrelevant,
            worker: n.role == Role::Worker,
            ip: live
                .iter()
                .find(|l| l.name == n.name)
                .and_then(|l| l.ip.clone()),
        });
    }
    if ctx.json() {
        println!("{}", serde_json::to_string(&statuses)?);
    } else {
        let mut first = true;
        for s in &statuses {
            if !first {
                println!();
            }
            first = false;
            println!("{}", s.name);
            println!(
                "type: {}",
                if s.worker { "Worker" } else { "Control Plane" }
            );
            println!("host: {}", s.host);
            if profile.kubernetes.is_none() {
                println!("kubernetes: disabled (--no-kubernetes)");
            }
            if let Some(ip) = &s.ip {
                println!("ip: {ip}");
            }
        }
    }
    Ok(code)
}
