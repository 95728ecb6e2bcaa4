//! `minik node add|delete|list`: grow or shrink a profile by workers.

use super::{Context, live_nodes, state_of};
use crate::cli::{NodeAddArgs, NodeDeleteArgs};
use crate::cluster::request_for;
use crate::cluster::{self, kubernetes};
use crate::errors::{GUEST_NOT_RUNNING, GUEST_UNSUPPORTED, USAGE, fail_with};
use crate::k8s::version::KubernetesVersion;
use crate::state::{NodeRecord, ProfileLock};
use minik_driver_api::{Driver, HostState, NodeSpec, Role, Runner};
use serde_json::json;

/// The name of the node with `index` in `profile` (`P`, `P-m02`, ...).
fn node_name(profile: &str, index: u32) -> String {
    if index == 0 {
        profile.to_string()
    } else {
        format!("{profile}-m{:02}", index + 1)
    }
}

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
    // The first SIGINT/SIGTERM is this function's: it removes the node it was adding.
    let _scope = crate::interrupt::Scope::enter(format!(
        "Run `minik start -p {name}`: it removes a node that an interrupted `node add` left."
    ));
    let (driver, live) = live_nodes(ctx, &profile).await?;
    let recorded: Vec<&str> = profile.nodes.iter().map(|n| n.name.as_str()).collect();
    cluster::remove_unrecorded(&driver, &profile.name, &recorded, &live, &ctx.reporter).await?;
    for n in &profile.nodes {
        let state = state_of(&live, &n.name);
        if state != HostState::Running {
            return Err(fail_with(
                &GUEST_NOT_RUNNING,
                format!(
                    "node {} is {state}: nodes are added to a running profile",
                    n.name
                ),
                format!("Start it first with `minik start -p {name}`."),
            ));
        }
    }
    let index = profile.nodes.iter().map(|n| n.index).max().unwrap_or(0) + 1;
    let record = NodeRecord {
        name: node_name(&name, index),
        role: Role::Worker,
        index,
    };
    let spec = NodeSpec::from(&record);
    let request = request_for(&profile);
    let reporter = &ctx.reporter;

    let work = async {
        let step = reporter.step("create-nodes", format!("Creating node {}", record.name));
        step.finish_with(
            driver
                .create_node(&request, &spec, reporter)
                .await
                .map_err(anyhow::Error::from),
        )?;
        cluster::wait_all_booted(
            &driver,
            std::iter::once(record.name.as_str()),
            reporter,
            args.wait_timeout,
            cluster::Stopped::Fails,
        )
        .await?;
        if let Some(k) = &profile.kubernetes {
            let mut grown = profile.clone();
            grown.nodes.push(record.clone());
            let version = KubernetesVersion::resolve(&k.version)?;
            let mut plan = kubernetes::plan_for(&driver, &grown, version, false).await?;
            let cp = driver.runner(&plan.control_plane().name);
            plan.token = kubernetes::create_token(&cp).await?;
            let new = plan
                .nodes
                .iter()
                .find(|n| n.name == record.name)
                .cloned()
                .expect("planned");
            let step = reporter.step("network", "Configuring the pod network");
            let r = async {
                for node in &plan.nodes {
                    kubernetes::configure_network(&driver.runner(&node.name), &plan, node).await?;
                }
                anyhow::Ok(())
            }
            .await;
            step.finish_with(r)?;
            let step = reporter.step("kubeadm-join", format!("Joining {}", record.name));
            let runner = driver.runner(&record.name);
            let r = async {
                kubernetes::write_kubeadm_config(&runner, &plan, &new).await?;
                kubernetes::join(&runner).await
            }
            .await;
            step.finish_with(r)?;
            if args.wait {
                let admin = cp.read_file(kubernetes::ADMIN_CONF).await?;
                let config = crate::k8s::kubeconfig::export(
                    &String::from_utf8_lossy(&admin),
                    &profile.name,
                    &crate::k8s::kubeconfig::local_server(plan.api_port),
                )?;
                kubernetes::wait_ready(&driver, &plan, &config, reporter, args.wait_timeout)
                    .await?;
            }
        }
        anyhow::Ok(())
    };
    if let Err(err) = crate::interrupt::or_cancelled(work, "adding the node").await {
        if args.keep_on_failure {
            reporter.warn(&format!(
                "keeping node {} (--keep-on-failure); remove it with `minik node delete {}`",
                record.name, record.name
            ));
        } else {
            let step = reporter.step("cleanup", format!("Removing node {}", record.name));
            match driver.delete_node(&record.name).await {
                Ok(_) => step.done(),
                Err(e) => {
                    step.fail(&e.to_string());
                    reporter.warn(&format!(
                        "cleanup failed: {e}; `minik start -p {name}` removes the node"
                    ));
                }
            }
        }
        return Err(err);
    }
    profile.nodes.push(record.clone());
    profile.save(&ctx.home)?;
    reporter.event(json!({"type": "result", "profile": profile.name, "added": record.name}));
    reporter.info(&format!(
        "Node {} added to profile \"{}\"",
        record.name, profile.name
    ));
    Ok(0)
}

pub async fn delete(ctx: &Context, args: NodeDeleteArgs) -> anyhow::Result<u8> {
    let name = ctx.profile_name()?.to_string();
    let _lock = ProfileLock::acquire(&ctx.home, &name)?;
    let mut profile = ctx.load_profile().await?;
    let known: Vec<String> = profile.nodes.iter().map(|n| n.name.clone()).collect();
    let record = profile
        .find_node(&args.node)
        .ok_or_else(|| cluster::unknown_node(&name, &args.node, &known))?
        .clone();
    if record.index == profile.control_plane().index {
        return Err(fail_with(
            &USAGE,
            format!("node {} is the profile's control plane", record.name),
            format!("Delete the whole profile instead: `minik delete -p {name}`."),
        ));
    }
    let (driver, live) = live_nodes(ctx, &profile).await?;
    let reporter = &ctx.reporter;
    if let Some(k) = &profile.kubernetes {
        let cp_state = state_of(&live, &profile.control_plane().name);
        if cp_state == HostState::Running {
            let mut shrunk = profile.clone();
            shrunk.nodes.retain(|n| n.name != record.name);
            let version = KubernetesVersion::resolve(&k.version)?;
            let plan = kubernetes::plan_for(&driver, &shrunk, version, false).await?;
            let departing = kubernetes::PlannedNode {
                name: record.name.clone(),
                role: record.role,
                index: record.index,
                ip: String::new(),
            };
            let step = reporter.step(
                "drain",
                format!("Removing {} from the cluster", record.name),
            );
            step.finish_with(kubernetes::remove_node(&driver, &plan, &departing, reporter).await)?;
        } else {
            reporter.warn(&format!(
                "the control plane is {cp_state}: node {} is removed without draining it",
                record.name
            ));
        }
    }
    let step = reporter.step("delete-node", format!("Deleting node {}", record.name));
    step.finish_with(
        driver
            .delete_node(&record.name)
            .await
            .map_err(anyhow::Error::from),
    )?;
    profile.nodes.retain(|n| n.name != record.name);
    profile.save(&ctx.home)?;
    reporter.event(json!({"type": "result", "profile": profile.name, "deleted": record.name}));
    reporter.info(&format!(
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
