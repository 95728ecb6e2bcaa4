//! `minik addons list|enable|disable`, and the start hook that applies a profile's enabled
//! addons ([`apply_enabled`]).

use super::{Context, live_nodes, state_of};
use crate::addons::{self, apply::Target, apply::WaitOptions};
use crate::any_driver::AnyDriver;
use crate::cli::{AddonsDisableArgs, AddonsEnableArgs, AddonsImagesArgs};
use crate::errors::{GUEST_NOT_RUNNING, GUEST_UNSUPPORTED, USAGE, fail_with};
use crate::state::{Profile, ProfileLoad, ProfileLock};
use minik_driver_api::{Driver, NodeInfo};
use serde_json::json;
use std::borrow::Cow;
use std::time::Duration;

/// Refuses profiles without Kubernetes.
fn require_kubernetes(profile: &Profile) -> anyhow::Result<()> {
    if profile.kubernetes.is_none() {
        return Err(fail_with(
            &GUEST_UNSUPPORTED,
            format!(
                "profile \"{}\" runs without Kubernetes (--no-kubernetes): addons need a cluster",
                profile.name
            ),
            "Create a profile with Kubernetes (`minik start -p NAME`) to use addons.",
        ));
    }
    Ok(())
}

/// The cluster to apply addons to: every node running and Kubernetes not paused.
async fn target<'a>(
    profile: &'a Profile,
    driver: &'a AnyDriver,
    live: &[NodeInfo],
) -> anyhow::Result<Target<'a, AnyDriver>> {
    for n in &profile.nodes {
        super::ssh::require_running(profile, &n.name, state_of(live, &n.name))?;
    }
    for n in &profile.nodes {
        let runner = driver.runner(&n.name);
        if !crate::cluster::pause::read_marker(&runner)
            .await?
            .is_empty()
        {
            return Err(fail_with(
                &GUEST_NOT_RUNNING,
                format!("profile \"{}\" is paused (node {})", profile.name, n.name),
                format!(
                    "Resume it with `minik unpause -p {}`, then retry.",
                    profile.name
                ),
            ));
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
fn as_configured<'a>(profile: &Profile, addon: &'a addons::Addon) -> Cow<'a, addons::Addon> {
    match profile.addon_images.get(&addon.name) {
        Some(resolved) if !resolved.is_empty() => Cow::Owned(addon.with_images(resolved)),
        _ => Cow::Borrowed(addon),
    }
}

/// `--images`/`--registries` for `addon`, checked: name → reference for the images that differ
/// from the defaults. MK_USAGE naming the valid image names otherwise.
fn overrides(
    addon: &addons::Addon,
    args: &AddonsEnableArgs,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let o = addons::ImageOverrides {
        images: args.images.iter().cloned().collect(),
        registries: args.registries.iter().cloned().collect(),
    };
    let resolved = addon.resolve_images(&o).map_err(|e| {
        fail_with(
            &USAGE,
            e,
            format!(
                "`minik addons images {}` lists its image names and defaults.",
                addon.name
            ),
        )
    })?;
    let defaults: std::collections::BTreeMap<&str, &str> =
        addon.image_names().into_iter().collect();
    Ok(resolved
        .into_iter()
        .filter(|(n, r)| defaults.get(n.as_str()) != Some(&r.as_str()))
        .collect())
}

/// `minik addons images NAME`.
pub async fn images(ctx: &Context, args: AddonsImagesArgs) -> anyhow::Result<u8> {
    let addon = addons::find(&args.name)?;
    let rows: Vec<serde_json::Value> = addon
        .image_names()
        .iter()
        .map(|(n, d)| json!({"name": n, "default": d}))
        .collect();
    if ctx.json() {
        crate::outln!("{}", json!({"addon": addon.name, "images": rows}));
        return Ok(0);
    }
    if rows.is_empty() {
        ctx.reporter
            .info(&format!("Addon {} runs no images of its own", addon.name));
        return Ok(0);
    }
    crate::outln!("{:<28} DEFAULT", "NAME");
    for (n, d) in addon.image_names() {
        crate::outln!("{n:<28} {d}");
    }
    Ok(0)
}

/// Whether the profile has the addon enabled.
pub fn is_enabled(profile: &Profile, name: &str) -> bool {
    profile.addons.get(name).copied().unwrap_or(false)
}

pub async fn list(ctx: &Context) -> anyhow::Result<u8> {
    let name = ctx.profile_name()?;
    let profile = match Profile::load(&ctx.home, name)? {
        ProfileLoad::Found(p) => Some(p),
        ProfileLoad::Missing => None,
    };
    let rows: Vec<serde_json::Value> = addons::all()?
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "enabled": profile.as_ref().is_some_and(|p| is_enabled(p, &a.name)),
                "default": a.meta.default,
                "description": a.meta.description,
                "images": a.meta.images,
            })
        })
        .collect();
    if ctx.json() {
        crate::outln!(
            "{}",
            json!({"profile": name, "exists": profile.is_some(), "addons": rows})
        );
        return Ok(0);
    }
    crate::outln!(
        "{:<22} {:<9} {:<8} DESCRIPTION",
        "ADDON",
        "STATUS",
        "DEFAULT"
    );
    for r in &rows {
        crate::outln!(
            "{:<22} {:<9} {:<8} {}",
            r["name"].as_str().unwrap_or_default(),
            if r["enabled"] == true {
                "enabled"
            } else {
                "disabled"
            },
            if r["default"] == true { "on" } else { "off" },
            r["description"].as_str().unwrap_or_default()
        );
    }
    if profile.is_none() {
        ctx.reporter.info(&format!(
            "Profile \"{name}\" does not exist: `minik start -p {name} --addons a,b` creates it with those addons."
        ));
    }
    Ok(0)
}

pub async fn enable(ctx: &Context, args: AddonsEnableArgs) -> anyhow::Result<u8> {
    let wanted = addons::find(&args.name)?;
    let replaced = overrides(wanted, &args)?;
    let name = ctx.profile_name()?.to_string();
    let _lock = ProfileLock::acquire(&ctx.home, &name)?;
    let mut profile = ctx.load_profile().await?;
    require_kubernetes(&profile)?;
    // What enabling records (used by this run and every later start); restored on failure.
    let before = profile.addon_images.get(&args.name).cloned();
    if replaced.is_empty() {
        profile.addon_images.remove(&args.name);
    } else {
        profile
            .addon_images
            .insert(args.name.clone(), replaced.clone());
    }
    let (driver, live) = live_nodes(ctx, &profile).await?;
    let order = addons::with_requirements(std::slice::from_ref(&args.name))?;
    let wait = WaitOptions {
        wait: args.wait,
        timeout: args.wait_timeout,
    };
    let result = {
        let t = target(&profile, &driver, &live).await?;
        let mut done = Vec::new();
        let mut result = Ok(());
        for n in &order {
            let addon = as_configured(&profile, addons::find(n)?);
            // Applied objects stay even when the wait times out: record them as enabled so a
            // restart re-applies them and `disable` removes them.
            let r = addons::apply::enable(&t, &addon, wait, &ctx.reporter).await;
            let applied = !matches!(&r, Err(e) if !is_wait_timeout(e));
            if applied {
                done.push(n.clone());
            }
            if let Err(e) = r {
                result = Err(e);
                break;
            }
        }
        (
            done,
            result,
            t.control_plane_ip.clone(),
            t.control_plane_ports.clone(),
        )
    };
    let (done, result, ip, ports) = result;
    if !done.contains(&args.name) {
        // Not applied: keep the replacements the running objects (if any) were made with.
        match before {
            Some(b) => profile.addon_images.insert(args.name.clone(), b),
            None => profile.addon_images.remove(&args.name),
        };
    }
    for n in &done {
        profile.addons.insert(n.clone(), true);
    }
    profile.save(&ctx.home)?;
    result?;
    let addon = addons::find(&args.name)?;
    if ctx.json() {
        ctx.reporter.event(json!({
            "type": "result", "profile": profile.name, "addon": addon.name,
            "enabled": true, "also_enabled": &done[..done.len().saturating_sub(1)],
        }));
    } else {
        ctx.reporter.info(&format!(
            "Addon {} is enabled on \"{}\"",
            addon.name, profile.name
        ));
        if let Some(n) = addons::apply::notes(addon, &profile.name, ip.as_deref(), &ports) {
            crate::outln!("{n}");
        }
    }
    Ok(0)
}

/// Whether an enable error is only the readiness wait running out (the objects were applied).
fn is_wait_timeout(e: &anyhow::Error) -> bool {
    format!("{e:#}").contains("not ready after")
}

pub async fn disable(ctx: &Context, args: AddonsDisableArgs) -> anyhow::Result<u8> {
    let addon = addons::find(&args.name)?;
    let name = ctx.profile_name()?.to_string();
    let _lock = ProfileLock::acquire(&ctx.home, &name)?;
    let mut profile = ctx.load_profile().await?;
    require_kubernetes(&profile)?;
    let dependents: Vec<&str> = addons::all()?
        .iter()
        .filter(|a| is_enabled(&profile, &a.name) && a.meta.requires.contains(&addon.name))
        .map(|a| a.name.as_str())
        .collect();
    if !dependents.is_empty() {
        return Err(fail_with(
            &USAGE,
            format!(
                "addon {} is needed by {} (enabled on \"{}\")",
                addon.name,
                dependents.join(", "),
                profile.name
            ),
            format!(
                "Disable {} first: `minik addons disable -p {} {}`.",
                dependents.join(", "),
                profile.name,
                dependents[0]
            ),
        ));
    }
    let (driver, live) = live_nodes(ctx, &profile).await?;
    {
        let t = target(&profile, &driver, &live).await?;
        addons::apply::disable(&t, addon, args.wait_timeout, &ctx.reporter).await?;
    }
    profile.addons.insert(addon.name.clone(), false);
    profile.addon_images.remove(&addon.name);
    profile.save(&ctx.home)?;
    if ctx.json() {
        ctx.reporter.event(json!({
            "type": "result", "profile": profile.name, "addon": addon.name, "enabled": false,
        }));
    } else {
        ctx.reporter.info(&format!(
            "Addon {} is disabled on \"{}\"",
            addon.name, profile.name
        ));
    }
    Ok(0)
}

/// Checks `--addons` names before anything is created.
pub fn validate_names(names: &[String]) -> anyhow::Result<()> {
    for n in names {
        addons::find(n)?;
    }
    Ok(())
}

/// The addon map of a new profile: the defaults plus `extra` (and what they need).
pub fn initial_state(extra: &[String]) -> anyhow::Result<std::collections::BTreeMap<String, bool>> {
    let mut wanted = addons::defaults()?;
    wanted.extend(extra.iter().cloned());
    let on = addons::with_requirements(&wanted)?;
    Ok(addons::all()?
        .iter()
        .map(|a| (a.name.clone(), on.contains(&a.name)))
        .collect())
}

/// Start hook: applies every enabled addon of a (running, just started or created) Kubernetes
/// profile, requirements first. Never fails the start: a failing addon is a warning (the
/// cluster is usable, and `minik addons enable NAME` retries it).
pub async fn apply_enabled(
    ctx: &Context,
    driver: &AnyDriver,
    profile: &Profile,
    wait: bool,
    timeout: Duration,
) {
    if let Err(e) = try_apply_enabled(ctx, driver, profile, wait, timeout).await {
        ctx.reporter.warn(&format!(
            "could not apply the addons of \"{}\": {e:#} (retry with `minik addons enable -p {} NAME`)",
            profile.name, profile.name
        ));
    }
}

async fn try_apply_enabled(
    ctx: &Context,
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
        .filter(|n| addons::find(n).is_ok())
        .collect();
    if enabled.is_empty() {
        return Ok(());
    }
    let order = addons::with_requirements(&enabled)?;
    let live = driver.list_nodes(&profile.name).await?;
    let t = target(profile, driver, &live).await?;
    let mut failed: Vec<&str> = Vec::new();
    for n in &order {
        let addon = as_configured(profile, addons::find(n)?);
        // An addon whose requirement failed is not applied (default-storageclass would
        // otherwise replace the bootstrap's working class with one nothing serves).
        if let Some(r) = addon
            .meta
            .requires
            .iter()
            .find(|r| failed.contains(&r.as_str()))
        {
            ctx.reporter
                .warn(&format!("addon {n}: skipped because {r} failed"));
            failed.push(n.as_str());
            continue;
        }
        if let Err(e) =
            addons::apply::enable(&t, &addon, WaitOptions { wait, timeout }, &ctx.reporter).await
        {
            // (The error names the addon already: "addon NAME: ...".)
            ctx.reporter.warn(&format!(
                "{e:#} (retry with `minik addons enable -p {} {n}`)",
                profile.name
            ));
            failed.push(n.as_str());
        }
    }
    Ok(())
}
