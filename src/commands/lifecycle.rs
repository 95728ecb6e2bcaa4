//! `stop`, `pause`, `unpause`.
//!
//! `stop` stops every node of a profile. `pause`/`unpause` work at the Kubernetes level on
//! Kubernetes profiles (kubelet stopped, the chosen namespaces' containers frozen with runc:
//! `cluster::pause`), and freeze/thaw the whole nodes through the driver on --no-kubernetes
//! profiles.

use super::{Context, live_nodes, state_of};
use crate::any_driver::AnyDriver;
use crate::cli::{PauseArgs, StopArgs};
use crate::cluster::pause::{self, Namespaces};
use crate::errors::{GUEST_NOT_RUNNING, USAGE, fail_with};
use crate::state::{Profile, ProfileLoad, ProfileLock};
use anyhow::Context as _;
use futures_util::future::{join_all, try_join_all};
use minik_driver_api::{Driver, HostState, NodeInfo};
use serde_json::json;
use std::time::Duration;

pub async fn stop(ctx: &Context, args: StopArgs) -> anyhow::Result<u8> {
    let names = if args.all {
        Profile::list_names(&ctx.home)?
    } else {
        vec![ctx.profile_name()?.to_string()]
    };
    for name in names {
        let _lock = ProfileLock::acquire(&ctx.home, &name)?;
        let profile = match Profile::load(&ctx.home, &name) {
            Ok(ProfileLoad::Found(p)) => p,
            // `--all`: a directory without its profile file is not a profile to stop.
            Ok(ProfileLoad::Missing) if args.all => continue,
            Ok(ProfileLoad::Missing) => return Err(ctx.missing(&name).await),
            Err(e) if args.all => {
                ctx.reporter
                    .warn(&format!("skipping profile {name}: {e:#}"));
                continue;
            }
            Err(e) => return Err(e),
        };
        stop_profile(ctx, &profile, Duration::from_secs(args.timeout)).await?;
    }
    Ok(0)
}

async fn stop_profile(ctx: &Context, profile: &Profile, timeout: Duration) -> anyhow::Result<()> {
    let (driver, live) = live_nodes(ctx, profile).await?;
    let to_stop: Vec<&str> = profile
        .nodes
        .iter()
        .map(|n| n.name.as_str())
        .filter(|n| {
            matches!(
                state_of(&live, n),
                HostState::Running | HostState::Paused | HostState::Starting | HostState::Error
            )
        })
        .collect();
    if to_stop.is_empty() {
        ctx.reporter
            .info(&format!("Profile \"{}\" is already stopped", profile.name));
    } else {
        if profile.kubernetes.is_some() {
            crate::cluster::thaw_before_stop(&driver, &live, &to_stop, &ctx.reporter).await;
        }
        let step = ctx.reporter.step(
            "stop-nodes",
            format!("Stopping {} node(s) of \"{}\"", to_stop.len(), profile.name),
        );
        if profile.kubernetes.is_some() {
            stop_pods(&driver, &live, &to_stop).await;
        }
        let r = try_join_all(to_stop.iter().map(|n| {
            let driver = &driver;
            async move {
                driver
                    .stop_node(n, timeout)
                    .await
                    .with_context(|| format!("stopping node {n}"))
            }
        }))
        .await;
        step.finish_with(r)?;
    }
    ctx.reporter
        .event(json!({"type": "result", "profile": profile.name, "status": "Stopped"}));
    Ok(())
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

/// `-n`/`-A` only make sense on Kubernetes profiles.
fn check_pause_flags(profile: &Profile, args: &PauseArgs) -> anyhow::Result<()> {
    if profile.kubernetes.is_none() && (args.all_namespaces || !args.namespaces.is_empty()) {
        return Err(fail_with(
            &USAGE,
            format!(
                "profile \"{}\" runs without Kubernetes: -n/--namespaces and -A/--all-namespaces do not apply",
                profile.name
            ),
            format!(
                "Run `minik pause -p {}` without them: it freezes the whole nodes.",
                profile.name
            ),
        ));
    }
    Ok(())
}

pub async fn pause(ctx: &Context, args: PauseArgs) -> anyhow::Result<u8> {
    let name = ctx.profile_name()?.to_string();
    let _lock = ProfileLock::acquire(&ctx.home, &name)?;
    let profile = ctx.load_profile().await?;
    check_pause_flags(&profile, &args)?;
    if profile.kubernetes.is_some() {
        let namespaces = Namespaces::from_flags(&args.namespaces, args.all_namespaces)?;
        return pause_kubernetes(ctx, &profile, &namespaces).await;
    }
    let (driver, live) = live_nodes(ctx, &profile).await?;
    let mut to_pause = Vec::new();
    for n in &profile.nodes {
        match state_of(&live, &n.name) {
            HostState::Running => to_pause.push(n.name.as_str()),
            HostState::Paused => {}
            other => return Err(not_running(&profile.name, &n.name, other)),
        }
    }
    let step = ctx.reporter.step(
        "pause",
        format!("Pausing {} node(s) of \"{}\"", to_pause.len(), profile.name),
    );
    let r = try_join_all(to_pause.iter().map(|n| {
        let driver = &driver;
        async move {
            driver
                .pause_node(n)
                .await
                .with_context(|| format!("pausing node {n}"))
        }
    }))
    .await;
    step.finish_with(r)?;
    ctx.reporter
        .event(json!({"type": "result", "profile": profile.name, "status": "Paused"}));
    Ok(0)
}

/// Kubernetes pause on every node (all must be running): kubelet stopped, then the chosen
/// namespaces' containers frozen, in parallel across nodes.
async fn pause_kubernetes(
    ctx: &Context,
    profile: &Profile,
    namespaces: &Namespaces,
) -> anyhow::Result<u8> {
    let (driver, live) = live_nodes(ctx, profile).await?;
    for n in &profile.nodes {
        let state = state_of(&live, &n.name);
        if state != HostState::Running {
            return Err(not_running(&profile.name, &n.name, state));
        }
    }
    let step = ctx.reporter.step(
        "pause",
        format!(
            "Pausing Kubernetes in {} node(s) of \"{}\" ({})",
            profile.nodes.len(),
            profile.name,
            namespaces.describe()
        ),
    );
    let r = try_join_all(profile.nodes.iter().map(|n| {
        let driver = &driver;
        async move {
            pause::pause_node(&driver.runner(&n.name), namespaces)
                .await
                .with_context(|| format!("pausing Kubernetes on node {}", n.name))
        }
    }))
    .await;
    let frozen: usize = step.finish_with(r)?.iter().map(Vec::len).sum();
    ctx.reporter.info(&format!(
        "Paused {frozen} containers in: {}",
        namespaces.describe()
    ));
    ctx.reporter.event(json!({
        "type": "result", "profile": profile.name, "status": "Paused",
        "namespaces": namespaces.names(), "containers": frozen,
    }));
    Ok(0)
}

pub async fn unpause(ctx: &Context, args: PauseArgs) -> anyhow::Result<u8> {
    let name = ctx.profile_name()?.to_string();
    let _lock = ProfileLock::acquire(&ctx.home, &name)?;
    let profile = ctx.load_profile().await?;
    check_pause_flags(&profile, &args)?;
    if profile.kubernetes.is_some() {
        return unpause_kubernetes(ctx, &profile).await;
    }
    let (driver, live) = live_nodes(ctx, &profile).await?;
    let mut to_unpause = Vec::new();
    for n in &profile.nodes {
        match state_of(&live, &n.name) {
            HostState::Paused => to_unpause.push(n.name.as_str()),
            HostState::Running => {}
            other => return Err(not_running(&profile.name, &n.name, other)),
        }
    }
    let step = ctx.reporter.step(
        "unpause",
        format!(
            "Resuming {} node(s) of \"{}\"",
            to_unpause.len(),
            profile.name
        ),
    );
    let r = try_join_all(to_unpause.iter().map(|n| {
        let driver = &driver;
        async move {
            driver
                .unpause_node(n)
                .await
                .with_context(|| format!("resuming node {n}"))
        }
    }))
    .await;
    step.finish_with(r)?;
    ctx.reporter
        .event(json!({"type": "result", "profile": profile.name, "status": "Running"}));
    Ok(0)
}

/// Kubernetes unpause on every node: a node whose host is frozen is thawed first, then the
/// containers in its marker are resumed and kubelet started.
async fn unpause_kubernetes(ctx: &Context, profile: &Profile) -> anyhow::Result<u8> {
    let (driver, live) = live_nodes(ctx, profile).await?;
    for n in &profile.nodes {
        let state = state_of(&live, &n.name);
        if !matches!(state, HostState::Running | HostState::Paused) {
            return Err(not_running(&profile.name, &n.name, state));
        }
    }
    let step = ctx.reporter.step(
        "unpause",
        format!(
            "Resuming Kubernetes in {} node(s) of \"{}\"",
            profile.nodes.len(),
            profile.name
        ),
    );
    let r = try_join_all(profile.nodes.iter().map(|n| {
        let driver = &driver;
        let live = &live;
        async move {
            if state_of(live, &n.name) == HostState::Paused {
                driver
                    .unpause_node(&n.name)
                    .await
                    .with_context(|| format!("resuming node {}", n.name))?;
            }
            pause::unpause_node(&driver.runner(&n.name), true)
                .await
                .with_context(|| format!("resuming Kubernetes on node {}", n.name))
        }
    }))
    .await;
    let resumed: usize = step.finish_with(r)?.iter().map(Vec::len).sum();
    ctx.reporter.info(&format!("Unpaused {resumed} containers"));
    ctx.reporter.event(json!({
        "type": "result", "profile": profile.name, "status": "Running", "containers": resumed,
    }));
    Ok(0)
}

fn not_running(profile: &str, node: &str, state: HostState) -> anyhow::Error {
    fail_with(
        &GUEST_NOT_RUNNING,
        format!("node {node} of profile \"{profile}\" is {state}"),
        format!("Start the profile first with `minik start -p {profile}`."),
    )
}
