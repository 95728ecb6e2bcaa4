//! `stop`, `pause`, `unpause`: change the host state of every node of a profile.

use super::{Context, live_nodes, state_of};
use crate::cli::StopArgs;
use crate::errors::{GUEST_NOT_RUNNING, fail_with};
use crate::state::{Profile, ProfileLoad, ProfileLock};
use anyhow::Context as _;
use futures_util::future::try_join_all;
use minik_driver_api::{Driver, HostState};
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
            Ok(ProfileLoad::Missing) => return Err(super::not_found(&name)),
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
        let step = ctx.reporter.step(
            "stop-nodes",
            format!("Stopping {} node(s) of \"{}\"", to_stop.len(), profile.name),
        );
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

pub async fn pause(ctx: &Context) -> anyhow::Result<u8> {
    let name = ctx.profile_name()?.to_string();
    let _lock = ProfileLock::acquire(&ctx.home, &name)?;
    let profile = ctx.load_profile()?;
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

pub async fn unpause(ctx: &Context) -> anyhow::Result<u8> {
    let name = ctx.profile_name()?.to_string();
    let _lock = ProfileLock::acquire(&ctx.home, &name)?;
    let profile = ctx.load_profile()?;
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

fn not_running(profile: &str, node: &str, state: HostState) -> anyhow::Error {
    fail_with(
        &GUEST_NOT_RUNNING,
        format!("node {node} of profile \"{profile}\" is {state}"),
        format!("Start the profile first with `minik start -p {profile}`."),
    )
}
