//! Addons as a profile has them: which are on, the cluster they apply to, and applying the
//! enabled ones at `start` (the commands `addons` and `start` call these).

use super::apply::{Target, WaitOptions};
use super::{AddonError, AddonKind};
use crate::any_driver::AnyDriver;
use crate::state::Profile;
use crate::ui::Reporter;
use minik_driver_api::{Driver, NodeInfo};
use std::borrow::Cow;
use std::time::Duration;

/// Refuses profiles without Kubernetes.
pub fn require_kubernetes(profile: &Profile) -> anyhow::Result<()> {
    if profile.kubernetes.is_none() {
        return Err(AddonError::new(
            AddonKind::Unsupported,
            format!(
                "profile \"{}\" runs without Kubernetes (--no-kubernetes): addons need a cluster",
                profile.name
            ),
        )
        .with_advice("Create a profile with Kubernetes (`minik start -p NAME`) to use addons.")
        .into());
    }
    Ok(())
}

/// The cluster to apply addons to: every node running and Kubernetes not paused.
pub async fn target<'a>(
    profile: &'a Profile,
    driver: &'a AnyDriver,
    live: &[NodeInfo],
) -> anyhow::Result<Target<'a, AnyDriver>> {
    for n in &profile.nodes {
        crate::cluster::require_running(profile, &n.name, crate::cluster::state_of(live, &n.name))?;
    }
    for n in &profile.nodes {
        let runner = driver.runner(&n.name);
        if !crate::cluster::pause::read_marker(&runner)
            .await?
            .is_empty()
        {
            return Err(AddonError::new(
                AddonKind::NotRunning,
                format!("profile \"{}\" is paused (node {})", profile.name, n.name),
            )
            .with_advice(format!(
                "Resume it with `minik unpause -p {}`, then retry.",
                profile.name
            ))
            .into());
        }
    }
    let cp = profile.control_plane();
    Ok(Target {
        driver,
        profile: &profile.name,
        control_plane: cp.name.clone(),
        control_plane_ip: live
            .iter()
            .find(|l| l.name == cp.name)
            .and_then(|l| l.ip.clone()),
        control_plane_ports: live
            .iter()
            .find(|l| l.name == cp.name)
            .map(|l| l.ports.clone())
            .unwrap_or_default(),
        nodes: profile.nodes.iter().map(|n| n.name.clone()).collect(),
        engine: driver.as_container_engine().map(|e| (e, driver.name())),
        kubernetes: profile.kubernetes.as_ref().map(|k| k.version.as_str()),
    })
}

/// The addon as this profile runs it: with the image replacements recorded by
/// `addons enable --images/--registries`.
pub fn as_configured<'a>(profile: &Profile, addon: &'a super::Addon) -> Cow<'a, super::Addon> {
    match profile.addon_images.get(&addon.name) {
        Some(resolved) if !resolved.is_empty() => Cow::Owned(addon.with_images(resolved)),
        _ => Cow::Borrowed(addon),
    }
}

/// Checks `--addons` names before anything is created.
pub fn validate_names(names: &[String]) -> anyhow::Result<()> {
    for n in names {
        super::find(n)?;
    }
    Ok(())
}

/// The addon map of a new profile: the defaults plus `extra` (and what they need).
pub fn initial_state(extra: &[String]) -> anyhow::Result<std::collections::BTreeMap<String, bool>> {
    let mut wanted = super::defaults()?;
    wanted.extend(extra.iter().cloned());
    let on = super::with_requirements(&wanted)?;
    Ok(super::all()?
        .iter()
        .map(|a| (a.name.clone(), on.contains(&a.name)))
        .collect())
}

/// Start hook: applies every enabled addon of a (running, just started or created) Kubernetes
/// profile, requirements first. Never fails the start: a failing addon is a warning (the
/// cluster is usable, and `minik addons enable NAME` retries it).
pub async fn apply_enabled(
    reporter: &Reporter,
    driver: &AnyDriver,
    profile: &Profile,
    wait: bool,
    timeout: Duration,
) {
    if let Err(e) = try_apply_enabled(reporter, driver, profile, wait, timeout).await {
        reporter.warn(&format!(
            "could not apply the addons of \"{}\": {e:#} (retry with `minik addons enable -p {} NAME`)",
            profile.name, profile.name
        ));
    }
}

async fn try_apply_enabled(
    reporter: &Reporter,
    driver: &AnyDriver,
    profile: &Profile,
    wait: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    if profile.kubernetes.is_none() {
        return Ok(());
    }
    let enabled: Vec<String> = profile
        .addons
        .iter()
        .filter(|(_, on)| **on)
        .map(|(n, _)| n.clone())
        .filter(|n| super::find(n).is_ok())
        .collect();
    if enabled.is_empty() {
        return Ok(());
    }
    let order = super::with_requirements(&enabled)?;
    let live = driver.list_nodes(&profile.name).await?;
    let t = target(profile, driver, &live).await?;
    let mut failed: Vec<&str> = Vec::new();
    for n in &order {
        let addon = as_configured(profile, super::find(n)?);
        // An addon whose requirement failed is not applied (default-storageclass would
        // otherwise replace the bootstrap's working class with one nothing serves).
        if let Some(r) = addon
            .meta
            .requires
            .iter()
            .find(|r| failed.contains(&r.as_str()))
        {
            reporter.warn(&format!("addon {n}: skipped because {r} failed"));
            failed.push(n.as_str());
            continue;
        }
        if let Err(e) =
            super::apply::enable(&t, &addon, WaitOptions { wait, timeout }, reporter).await
        {
            // (The error names the addon already: "addon NAME: ...".)
            reporter.warn(&format!(
                "{e:#} (retry with `minik addons enable -p {} {n}`)",
                profile.name
            ));
            failed.push(n.as_str());
        }
    }
    Ok(())
}
