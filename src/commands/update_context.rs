//! `minik update-context`: points the profile's kubeconfig cluster at the API server's live
//! address (`https://127.0.0.1:<published port>`, which changes when the engine publishes a
//! new port) and makes the profile's context the current one. Entries that are missing
//! altogether are not recreated here: `minik start` exports them.

use super::{Context, live_nodes, state_of};
use crate::errors::{
    GUEST_NOT_RUNNING, GUEST_UNSUPPORTED, HOST_KUBECONFIG, INTERNAL, fail, fail_with,
};
use crate::k8s::kubeconfig::{self, DEFAULT_LOCK_TIMEOUT};
use minik_driver_api::HostState;
use serde_json::json;

pub async fn run(ctx: &Context) -> anyhow::Result<u8> {
    let profile = ctx.load_profile().await?;
    if profile.kubernetes.is_none() {
        return Err(fail_with(
            &GUEST_UNSUPPORTED,
            format!(
                "profile \"{}\" runs without Kubernetes (--no-kubernetes): it has no kubeconfig context",
                profile.name
            ),
            "Create a profile with Kubernetes to get a kubeconfig context.",
        ));
    }
    let node = profile.control_plane();
    let (_driver, live) = live_nodes(ctx, &profile).await?;
    let state = state_of(&live, &node.name);
    let port = live
        .iter()
        .find(|l| l.name == node.name)
        .and_then(|l| l.api_port);
    let port = match (state, port) {
        (HostState::Running | HostState::Paused, Some(port)) => port,
        _ => {
            return Err(fail_with(
                &GUEST_NOT_RUNNING,
                format!(
                    "the control plane {} of profile \"{}\" is {state}: its API server has no address",
                    node.name, profile.name
                ),
                format!("Start it with `minik start -p {}`.", profile.name),
            ));
        }
    };
    let server = kubeconfig::local_server(port);
    let name = profile.name.clone();
    let target = server.clone();
    let (path, before, updated) = tokio::task::spawn_blocking(move || {
        let path = kubeconfig::target_path_from_env()?;
        let before = kubeconfig::endpoint_of(&path, &name).unwrap_or(None);
        let updated = kubeconfig::update_server(&path, &name, &target, true, DEFAULT_LOCK_TIMEOUT)?;
        anyhow::Ok((path, before, updated))
    })
    .await
    .map_err(|e| fail(&INTERNAL, format!("updating the kubeconfig stopped: {e}")))??;
    if !updated {
        return Err(fail_with(
            &HOST_KUBECONFIG,
            format!(
                "{} has no context \"{}\" (or its cluster is missing)",
                path.display(),
                profile.name
            ),
            format!(
                "Run `minik start -p {}` again: it exports the cluster's kubeconfig entries.",
                profile.name
            ),
        ));
    }
    if before.as_deref() == Some(server.as_str()) {
        ctx.reporter.info(&format!(
            "\"{}\" context is already pointing to {server}",
            profile.name
        ));
    } else {
        ctx.reporter.info(&format!(
            "\"{}\" context has been updated to point to {server}",
            profile.name
        ));
    }
    ctx.reporter.info(&format!(
        "Current context is \"{}\" ({})",
        profile.name,
        path.display()
    ));
    ctx.reporter.event(json!({
        "type": "result", "profile": profile.name, "server": server,
        "kubeconfig": path.display().to_string(), "changed": before.as_deref() != Some(server.as_str()),
    }));
    Ok(0)
}
