//! `minik image load|ls|rm`: images in every node's containerd (src/images).

use super::{Context, live_nodes, state_of};
use crate::any_driver::AnyDriver;
use crate::cli::{ImageLoadArgs, ImageRmArgs};
use crate::errors::{GUEST_IMAGE_NOT_FOUND, fail_with};
use crate::images::{self, Outcome, Source, reference};
use crate::state::Profile;
use futures_util::future::try_join_all;
use minik_driver_api::{Driver, NodeInfo};
use serde_json::json;
use std::time::Instant;

/// The profile's nodes, all of which must be running (a stopped or frozen node cannot take
/// an image).
fn running_nodes(profile: &Profile, live: &[NodeInfo]) -> anyhow::Result<Vec<String>> {
    for n in &profile.nodes {
        crate::cluster::require_running(profile, &n.name, state_of(live, &n.name))?;
    }
    Ok(profile.nodes.iter().map(|n| n.name.clone()).collect())
}

/// The engine to read images from: the profile's own (docker, podman); for drivers without
/// one (qemu), the first local engine that has every image.
async fn engine_for(
    ctx: &Context,
    driver: &AnyDriver,
    wanted: &[String],
) -> anyhow::Result<Option<AnyDriver>> {
    if driver.as_container_engine().is_some() {
        return Ok(None);
    }
    let mut tried = Vec::new();
    for name in crate::any_driver::DRIVERS {
        let Ok(candidate) = AnyDriver::connect(name, &ctx.home) else {
            tried.push(format!("{name}: not available"));
            continue;
        };
        if candidate.check().await.is_err() {
            tried.push(format!("{name}: not answering"));
            continue;
        }
        let Some(engine) = candidate.as_container_engine() else {
            continue;
        };
        let mut all = true;
        for image in wanted {
            if !engine.image_exists(image).await.unwrap_or(false) {
                all = false;
                break;
            }
        }
        if all {
            return Ok(Some(candidate));
        }
        tried.push(format!("{name}: does not have them all"));
    }
    Err(fail_with(
        &GUEST_IMAGE_NOT_FOUND,
        format!(
            "no local engine has {} ({})",
            wanted.join(", "),
            tried.join("; ")
        ),
        "Build or pull the images with docker or podman first, or load a file with --archive.",
    ))
}

pub async fn load(ctx: &Context, args: ImageLoadArgs) -> anyhow::Result<u8> {
    for image in &args.images {
        if let Some(why) = crate::images::reference::invalid_reason(image) {
            return Err(crate::errors::fail_with(
                &crate::errors::USAGE,
                format!("{image:?} is not an image reference: {why}"),
                "Name images as NAME[:TAG] (lower-case repository), e.g. `minik image load localhost/app:1`.",
            ));
        }
    }
    let profile = ctx.load_profile().await?;
    let started = Instant::now();
    // A bad archive is refused before anything else is touched.
    let from_archive = match &args.archive {
        Some(path) => Some(images::resolve_archive(path)?),
        None => None,
    };
    let (driver, live) = live_nodes(ctx, &profile).await?;
    let nodes = running_nodes(&profile, &live)?;
    let other_engine;
    let (wanted, source) = match (from_archive, &args.archive) {
        (Some(wanted), Some(path)) => (wanted, Source::Archive(path.clone())),
        _ => {
            other_engine = engine_for(ctx, &driver, &args.images).await?;
            let (engine_driver, engine_name) = match &other_engine {
                Some(d) => (d, d.name()),
                None => (&driver, driver.name()),
            };
            let engine = engine_driver
                .as_container_engine()
                .ok_or_else(|| crate::errors::fail(&crate::errors::INTERNAL, "no image source"))?;
            let wanted = images::resolve_in_engine(engine, engine_name, &args.images).await?;
            (wanted, Source::Engine(engine))
        }
    };
    let report = images::load(&driver, &nodes, &source, &wanted, &ctx.reporter).await?;
    let elapsed = started.elapsed();
    if ctx.json() {
        ctx.reporter.event(json!({
            "type": "result",
            "profile": profile.name,
            "images": report.images,
            "imports": report.imports,
            "bytes_streamed": report.bytes_streamed,
            "duration_ms": elapsed.as_millis() as u64,
        }));
        return Ok(0);
    }
    for (name, per_node) in &report.images {
        let group = |o: Outcome| -> Vec<&str> {
            per_node
                .iter()
                .filter(|(_, v)| **v == o)
                .map(|(k, _)| k.as_str())
                .collect()
        };
        let mut parts = Vec::new();
        for (o, label) in [
            (Outcome::Imported, "imported into"),
            (Outcome::Tagged, "tagged in"),
            (Outcome::Present, "already in"),
        ] {
            let nodes = group(o);
            if !nodes.is_empty() {
                parts.push(format!("{label} {}", nodes.join(", ")));
            }
        }
        crate::outln!("{name}: {}", parts.join("; "));
    }
    ctx.reporter.info(&format!(
        "Done in {:.2}s ({} import(s), {:.1} MB streamed)",
        elapsed.as_secs_f64(),
        report.imports,
        report.bytes_streamed as f64 / 1e6
    ));
    Ok(0)
}

pub async fn list(ctx: &Context) -> anyhow::Result<u8> {
    let profile = ctx.load_profile().await?;
    let (driver, live) = live_nodes(ctx, &profile).await?;
    let nodes = running_nodes(&profile, &live)?;
    let listings = try_join_all(nodes.iter().map(|n| {
        let runner = driver.runner(n);
        async move { anyhow::Ok((n.clone(), images::list(&runner).await?)) }
    }))
    .await?;
    let rows = images::merge_listings(&listings);
    if ctx.json() {
        crate::outln!("{}", json!({ "profile": profile.name, "images": rows }));
        return Ok(0);
    }
    if rows.is_empty() {
        crate::outln!("No images in the nodes of \"{}\".", profile.name);
        return Ok(0);
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(5).max(5);
    crate::outln!("{:<width$}  {:<12}  {:>10}  NODES", "IMAGE", "ID", "SIZE");
    for r in &rows {
        let id =
            r.id.as_deref()
                .and_then(|i| i.strip_prefix("sha256:"))
                .map(|h| &h[..12])
                .unwrap_or("-");
        let where_ = if r.nodes.len() == nodes.len() {
            "all".to_string()
        } else {
            r.nodes.join(",")
        };
        crate::outln!("{:<width$}  {id:<12}  {:>10}  {where_}", r.name, r.size);
    }
    Ok(0)
}

pub async fn remove(ctx: &Context, args: ImageRmArgs) -> anyhow::Result<u8> {
    let profile = ctx.load_profile().await?;
    let (driver, live) = live_nodes(ctx, &profile).await?;
    let nodes = running_nodes(&profile, &live)?;
    let names: Vec<String> = args
        .images
        .iter()
        .map(|i| reference::normalize(i))
        .collect();
    // Every image must be somewhere before anything is removed.
    let listings = try_join_all(nodes.iter().map(|n| {
        let runner = driver.runner(n);
        async move { images::list(&runner).await }
    }))
    .await?;
    let missing: Vec<&str> = names
        .iter()
        .filter(|name| !listings.iter().any(|l| l.get(name).is_some()))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(fail_with(
            &GUEST_IMAGE_NOT_FOUND,
            format!("no node of \"{}\" has {}", profile.name, missing.join(", ")),
            format!(
                "`minik image ls -p {}` lists the nodes' images.",
                profile.name
            ),
        ));
    }
    let step = ctx
        .reporter
        .step("image-rm", format!("Removing {}", names.join(", ")));
    let r = try_join_all(nodes.iter().map(|n| {
        let runner = driver.runner(n);
        let names = &names;
        async move {
            let mut removed = Vec::new();
            for name in names {
                if images::remove(&runner, name).await? {
                    removed.push(name.clone());
                }
            }
            anyhow::Ok((n.clone(), removed))
        }
    }))
    .await;
    let removed = step.finish_with(r)?;
    if ctx.json() {
        let map: serde_json::Map<String, serde_json::Value> =
            removed.into_iter().map(|(n, r)| (n, json!(r))).collect();
        ctx.reporter
            .event(json!({"type": "result", "profile": profile.name, "removed": map}));
    } else {
        for name in &names {
            let from: Vec<&str> = removed
                .iter()
                .filter(|(_, r)| r.contains(name))
                .map(|(n, _)| n.as_str())
                .collect();
            crate::outln!("{name}: removed from {}", from.join(", "));
        }
    }
    Ok(0)
}
