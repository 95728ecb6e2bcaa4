//! `minik node add|delete|list`: grow or shrink a profile by workers.

use super::{Context, live_nodes, state_of};
use crate::cli::{NodeAddArgs, NodeDeleteArgs};
use crate::cluster::{self, nodes::AddOptions};
use crate::errors::{GUEST_UNSUPPORTED, USAGE, fail_with};
use crate::state::ProfileLock;
use serde_json::json;

pub async fn add(ctx: &Context, args: NodeAddArgs) -> anyhow::Result<u8> {
    let name = ctx.profile_name()?.to_string();
    let _lock = ProfileLock::acquire(&ctx.home, &name)?;
    let mut profile = ctx.load_profile().await?;
    if args.control_plane {
        return Err(fail_with(
            &GUEST_UNSUPPORTED,
            "adding control-plane nodes (HA) is not supported yet",
            "Add workers with `minik node add`.",
        ));
    }
    let (driver, live) = live_nodes(ctx, &profile).await?;
    let opts = AddOptions {
        wait: args.wait,
        wait_timeout: args.wait_timeout,
        keep_on_failure: args.keep_on_failure,
    };
    let record =
        cluster::nodes::add_worker(&ctx.session(), &driver, &mut profile, &live, opts).await?;
    ctx.reporter
        .event(json!({"type": "result", "profile": profile.name, "added": record.name}));
    ctx.reporter.info(&format!(
        "Node {} added to profile \"{}\"",
        record.name, profile.name
    ));
    Ok(0)
}

pub async fn delete(ctx: &Context, args: NodeDeleteArgs) -> anyhow::Result<u8> {
    let name = ctx.profile_name()?.to_string();
    let _lock = ProfileLock::acquire(&ctx.home, &name)?;
    let mut profile = ctx.load_profile().await?;
    let record = cluster::pick_node(&profile, Some(&args.node))?.clone();
    if record.index == profile.control_plane().index {
        return Err(fail_with(
            &USAGE,
            format!("node {} is the profile's control plane", record.name),
            format!("Delete the whole profile instead: `minik delete -p {name}`."),
        ));
    }
    let (driver, live) = live_nodes(ctx, &profile).await?;
    cluster::nodes::delete_worker(&ctx.session(), &driver, &mut profile, &live, &record).await?;
    ctx.reporter
        .event(json!({"type": "result", "profile": profile.name, "deleted": record.name}));
    ctx.reporter.info(&format!(
        "Node {} deleted from profile \"{}\"",
        record.name, profile.name
    ));
    Ok(0)
}

pub async fn list(ctx: &Context) -> anyhow::Result<u8> {
    let profile = ctx.load_profile().await?;
    let (_driver, live) = live_nodes(ctx, &profile).await?;
    let rows: Vec<serde_json::Value> = profile
        .nodes
        .iter()
        .map(|n| {
            let info = live.iter().find(|l| l.name == n.name);
            json!({
                "name": n.name,
                "role": n.role,
                "state": state_of(&live, &n.name),
                "ip": info.and_then(|i| i.ip.clone()),
            })
        })
        .collect();
    if ctx.json() {
        crate::outln!("{}", json!({ "nodes": rows }));
    } else {
        for r in &rows {
            crate::outln!(
                "{}\t{}\t{}\t{}",
                r["name"].as_str().unwrap_or_default(),
                r["role"].as_str().unwrap_or_default(),
                r["state"].as_str().unwrap_or_default(),
                r["ip"].as_str().unwrap_or("-")
            );
        }
    }
    Ok(0)
}
