//! `minik addons list|enable|disable`, and the start hook that applies a profile's enabled
//! addons ([`apply_enabled`]).

use super::{Context, live_nodes};
use crate::addons::profile::{as_configured, require_kubernetes, target};
use crate::addons::{self, apply::WaitOptions};
use crate::cli::{AddonsDisableArgs, AddonsEnableArgs, AddonsImagesArgs};
use crate::errors::{USAGE, fail_with};
use crate::state::{Profile, ProfileLoad, ProfileLock};
use serde_json::json;

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
