//! `stop`, `pause`, `unpause`: parse, lock, call `cluster::lifecycle`, report.

use super::{Context, live_nodes};
use crate::cli::{PauseArgs, StopArgs};
use crate::cluster::{self, pause::Namespaces};
use crate::errors::{USAGE, fail_with};
use crate::state::{Profile, ProfileLoad, ProfileLock};
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
        let (driver, live) = live_nodes(ctx, &profile).await?;
        let timeout = Duration::from_secs(args.timeout);
        let stopped =
            cluster::lifecycle::stop(&ctx.session(), &driver, &live, &profile, timeout).await?;
        if stopped == 0 {
            ctx.reporter
                .info(&format!("Profile \"{}\" is already stopped", profile.name));
        }
        ctx.reporter
            .event(json!({"type": "result", "profile": profile.name, "status": "Stopped"}));
    }
    Ok(0)
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
    let namespaces = Namespaces::from_flags(&args.namespaces, args.all_namespaces)?;
    let (driver, live) = live_nodes(ctx, &profile).await?;
    let frozen =
        cluster::lifecycle::pause(&ctx.session(), &driver, &live, &profile, &namespaces).await?;
    if profile.kubernetes.is_some() {
        ctx.reporter.info(&format!(
            "Paused {frozen} containers in: {}",
            namespaces.describe()
        ));
        ctx.reporter.event(json!({
            "type": "result", "profile": profile.name, "status": "Paused",
            "namespaces": namespaces.names(), "containers": frozen,
        }));
    } else {
        ctx.reporter
            .event(json!({"type": "result", "profile": profile.name, "status": "Paused"}));
    }
    Ok(0)
}

pub async fn unpause(ctx: &Context, args: PauseArgs) -> anyhow::Result<u8> {
    let name = ctx.profile_name()?.to_string();
    let _lock = ProfileLock::acquire(&ctx.home, &name)?;
    let profile = ctx.load_profile().await?;
    check_pause_flags(&profile, &args)?;
    let (driver, live) = live_nodes(ctx, &profile).await?;
    let resumed = cluster::lifecycle::unpause(&ctx.session(), &driver, &live, &profile).await?;
    if profile.kubernetes.is_some() {
        ctx.reporter.info(&format!("Unpaused {resumed} containers"));
        ctx.reporter.event(json!({
            "type": "result", "profile": profile.name, "status": "Running", "containers": resumed,
        }));
    } else {
        ctx.reporter
            .event(json!({"type": "result", "profile": profile.name, "status": "Running"}));
    }
    Ok(0)
}
