//! Stopping, pausing and resuming a profile's nodes. On Kubernetes profiles pause/unpause work
//! at the Kubernetes level (kubelet stopped, the chosen namespaces' containers frozen with
//! runc: [`super::pause`]); on `--no-kubernetes` profiles the driver freezes and thaws the
//! whole nodes. The caller holds the profile lock; `live` is the nodes' state read under it.

use super::error::{ClusterError, ClusterKind};
use super::pause::{self, Namespaces};
use super::state_of;
use crate::any_driver::AnyDriver;
use crate::session::Session;
use crate::state::Profile;
use anyhow::Context as _;
use futures_util::future::{join_all, try_join_all};
use minik_driver_api::{Driver, HostState, NodeInfo};
use std::time::Duration;

/// Stops every node that is not stopped yet; returns how many it stopped (0: it already was).
pub async fn stop(
    s: &Session<'_>,
    driver: &AnyDriver,
    live: &[NodeInfo],
    profile: &Profile,
    timeout: Duration,
) -> anyhow::Result<usize> {
    let to_stop: Vec<&str> = profile
        .nodes
        .iter()
        .map(|n| n.name.as_str())
        .filter(|n| {
            matches!(
                state_of(live, n),
                HostState::Running | HostState::Paused | HostState::Starting | HostState::Error
            )
        })
        .collect();
    if to_stop.is_empty() {
        return Ok(0);
    }
    if profile.kubernetes.is_some() {
        super::thaw_before_stop(driver, live, &to_stop, s.reporter).await;
    }
    let step = s.reporter.step(
        "stop-nodes",
        format!("Stopping {} node(s) of \"{}\"", to_stop.len(), profile.name),
    );
    if profile.kubernetes.is_some() {
        stop_pods(driver, live, &to_stop).await;
    }
    let r = try_join_all(to_stop.iter().map(|n| async move {
        driver
            .stop_node(n, timeout)
            .await
            .with_context(|| format!("stopping node {n}"))
    }))
    .await;
    step.finish_with(r)?;
    Ok(to_stop.len())
}

/// Best effort, before stopping a Kubernetes profile's running nodes: stops the kubelet and
/// the pods' containers in each ([`pause::stop_pods`]), so the engine's stop is quick instead
/// of waiting out its timeout. A failure is logged only: the engine's stop still follows.
async fn stop_pods(driver: &AnyDriver, live: &[NodeInfo], nodes: &[&str]) {
    let running = nodes
        .iter()
        .copied()
        .filter(|n| state_of(live, n) == HostState::Running);
    let results =
        join_all(running.map(|n| async move { (n, pause::stop_pods(&driver.runner(n)).await) }))
            .await;
    for (node, result) in results {
        if let Err(e) = result {
            tracing::debug!("node {node}: stopping pods before the node: {e:#}");
        }
    }
}

/// Pauses a profile. Kubernetes profiles (every node must run): kubelet stopped, then the
/// `namespaces`' containers frozen, in parallel across nodes; returns how many containers
/// were frozen. Other profiles: the running nodes are frozen whole; returns 0.
pub async fn pause(
    s: &Session<'_>,
    driver: &AnyDriver,
    live: &[NodeInfo],
    profile: &Profile,
    namespaces: &Namespaces,
) -> anyhow::Result<usize> {
    if profile.kubernetes.is_none() {
        let mut to_pause = Vec::new();
        for n in &profile.nodes {
            match state_of(live, &n.name) {
                HostState::Running => to_pause.push(n.name.as_str()),
                HostState::Paused => {}
                other => return Err(not_running(&profile.name, &n.name, other)),
            }
        }
        let step = s.reporter.step(
            "pause",
            format!("Pausing {} node(s) of \"{}\"", to_pause.len(), profile.name),
        );
        let r = try_join_all(to_pause.iter().map(|n| async move {
            driver
                .pause_node(n)
                .await
                .with_context(|| format!("pausing node {n}"))
        }))
        .await;
        step.finish_with(r)?;
        return Ok(0);
    }
    for n in &profile.nodes {
        let state = state_of(live, &n.name);
        if state != HostState::Running {
            return Err(not_running(&profile.name, &n.name, state));
        }
    }
    let step = s.reporter.step(
        "pause",
        format!(
            "Pausing Kubernetes in {} node(s) of \"{}\" ({})",
            profile.nodes.len(),
            profile.name,
            namespaces.describe()
        ),
    );
    let r = try_join_all(profile.nodes.iter().map(|n| async move {
        pause::pause_node(&driver.runner(&n.name), namespaces)
            .await
            .with_context(|| format!("pausing Kubernetes on node {}", n.name))
    }))
    .await;
    Ok(step.finish_with(r)?.iter().map(Vec::len).sum())
}

/// Resumes a profile. Kubernetes profiles: a node whose host is frozen is thawed first, then
/// the containers in its marker are resumed and kubelet started; returns how many containers
/// were resumed. Other profiles: the paused nodes are thawed; returns 0.
pub async fn unpause(
    s: &Session<'_>,
    driver: &AnyDriver,
    live: &[NodeInfo],
    profile: &Profile,
) -> anyhow::Result<usize> {
    if profile.kubernetes.is_none() {
        let mut to_unpause = Vec::new();
        for n in &profile.nodes {
            match state_of(live, &n.name) {
                HostState::Paused => to_unpause.push(n.name.as_str()),
                HostState::Running => {}
                other => return Err(not_running(&profile.name, &n.name, other)),
            }
        }
        let step = s.reporter.step(
            "unpause",
            format!(
                "Resuming {} node(s) of \"{}\"",
                to_unpause.len(),
                profile.name
            ),
        );
        let r = try_join_all(to_unpause.iter().map(|n| async move {
            driver
                .unpause_node(n)
                .await
                .with_context(|| format!("resuming node {n}"))
        }))
        .await;
        step.finish_with(r)?;
        return Ok(0);
    }
    for n in &profile.nodes {
        let state = state_of(live, &n.name);
        if !matches!(state, HostState::Running | HostState::Paused) {
            return Err(not_running(&profile.name, &n.name, state));
        }
    }
    let step = s.reporter.step(
        "unpause",
        format!(
            "Resuming Kubernetes in {} node(s) of \"{}\"",
            profile.nodes.len(),
            profile.name
        ),
    );
    let r = try_join_all(profile.nodes.iter().map(|n| async move {
        if state_of(live, &n.name) == HostState::Paused {
            driver
                .unpause_node(&n.name)
                .await
                .with_context(|| format!("resuming node {}", n.name))?;
        }
        pause::unpause_node(&driver.runner(&n.name), true)
            .await
            .with_context(|| format!("resuming Kubernetes on node {}", n.name))
    }))
    .await;
    Ok(step.finish_with(r)?.iter().map(Vec::len).sum())
}

fn not_running(profile: &str, node: &str, state: HostState) -> anyhow::Error {
    ClusterError::new(
        ClusterKind::NotRunning,
        format!("node {node} of profile \"{profile}\" is {state}"),
    )
    .with_advice(format!(
        "Start the profile first with `minik start -p {profile}`."
    ))
    .into()
}
