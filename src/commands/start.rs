//! `minik start`: create a profile, or bring a stopped one back keeping its data.

use super::Context;
use crate::cli::{StartArgs, parse_memory_mib};
use crate::cluster;
use crate::drivers::AnyDriver;
use crate::errors::{
    DRV_IMAGE, GUEST_PROFILE_ORPHANED, GUEST_UNSUPPORTED, INTERRUPTED, USAGE, fail, fail_with,
};
use crate::state::{Profile, ProfileLoad, ProfileLock};
use minik_driver_api::{ClusterRequest, Driver, NodeSpec};
use serde_json::json;
use std::collections::BTreeMap;

/// Most nodes one profile may have.
const MAX_NODES: u32 = 20;
/// Least memory per node that systemd + containerd run in.
const MIN_MEMORY_MIB: u64 = 256;

pub async fn run(ctx: &Context, args: StartArgs) -> anyhow::Result<u8> {
    let name = ctx.profile_name()?.to_string();
    let memory_mib = validate(&args)?;
    let _lock = ProfileLock::acquire(&ctx.home, &name)?;
    match Profile::load(&ctx.home, &name)? {
        ProfileLoad::Found(profile) => restart(ctx, &args, profile).await,
        ProfileLoad::Missing => create(ctx, &args, &name, memory_mib).await,
    }
}

/// Checks flags before anything is touched; returns the memory in MiB.
fn validate(args: &StartArgs) -> anyhow::Result<Option<u64>> {
    if let Some(n) = args.nodes
        && (n == 0 || n > MAX_NODES)
    {
        return Err(fail_with(
            &USAGE,
            format!("--nodes {n} is out of range"),
            format!("A profile has 1 to {MAX_NODES} nodes: one control plane plus workers."),
        ));
    }
    if let Some(cpus) = args.cpus {
        let host = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as f64;
        if cpus.is_nan() || cpus <= 0.0 || !cpus.is_finite() {
            return Err(fail(
                &USAGE,
                format!("--cpus {cpus} must be a positive number"),
            ));
        }
        if cpus > host {
            return Err(fail_with(
                &USAGE,
                format!("--cpus {cpus} is more than the {host} CPUs of this host"),
                format!("Use at most --cpus {host}."),
            ));
        }
    }
    let memory = match &args.memory {
        None => None,
        Some(m) => {
            let mib = parse_memory_mib(m).map_err(|e| fail(&USAGE, e))?;
            if mib < MIN_MEMORY_MIB {
                return Err(fail_with(
                    &USAGE,
                    format!("--memory {m} is less than the {MIN_MEMORY_MIB} MiB a node needs"),
                    "Give each node at least 256m (Kubernetes needs about 1800m).",
                ));
            }
            Some(mib)
        }
    };
    if let Some(v) = &args.kubernetes_version
        && args.no_kubernetes
    {
        return Err(fail(
            &USAGE,
            format!("--kubernetes-version {v} contradicts --no-kubernetes"),
        ));
    }
    Ok(memory)
}

fn request_for(profile: &Profile) -> ClusterRequest {
    ClusterRequest {
        profile: profile.name.clone(),
        image: profile.image.clone(),
        cpus: profile.cpus,
        memory_mib: profile.memory_mib,
        env: BTreeMap::new(),
    }
}

async fn create(
    ctx: &Context,
    args: &StartArgs,
    name: &str,
    memory_mib: Option<u64>,
) -> anyhow::Result<u8> {
    if !args.no_kubernetes {
        return Err(fail_with(
            &GUEST_UNSUPPORTED,
            "this build of minik cannot bootstrap Kubernetes yet",
            "Start a container-runtime sandbox with `minik start --no-kubernetes`.",
        ));
    }
    let reporter = &ctx.reporter;
    let step = reporter.step("engine", "Checking the container engine");
    let (driver, info) =
        step.finish_with(AnyDriver::choose(args.driver.as_deref(), &ctx.home).await)?;
    reporter.info(&format!(
        "Using the {} driver ({})",
        driver.name(),
        info.version
    ));

    if driver.list_profiles().await?.iter().any(|p| p == name) {
        return Err(fail_with(
            &GUEST_PROFILE_ORPHANED,
            format!(
                "{} resources labelled with profile \"{name}\" exist, but the profile has no profile file",
                driver.name()
            ),
            format!("Run `minik delete -p {name}` to remove them, then start again."),
        ));
    }

    let default_image = crate::node_image::default_tag("none");
    let image = args.image.clone().unwrap_or_else(|| default_image.clone());
    ensure_image(ctx, &driver, &image, image == default_image).await?;

    let profile = Profile {
        schema: crate::state::PROFILE_SCHEMA,
        name: name.to_string(),
        driver: driver.name().to_string(),
        image,
        cpus: args.cpus,
        memory_mib,
        nodes: Profile::node_records(name, args.nodes.unwrap_or(1)),
        kubernetes: None,
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    profile.save(&ctx.home)?;
    let request = request_for(&profile);
    let nodes: Vec<NodeSpec> = profile.nodes.iter().map(NodeSpec::from).collect();

    let work = cluster::provision(&driver, &request, &nodes, reporter, args.wait_timeout);
    let result = tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => Err(fail(&INTERRUPTED, "interrupted while creating the profile")),
    };
    if let Err(err) = result {
        if args.keep_on_failure {
            reporter.warn(&format!(
                "start failed; keeping what was created (--keep-on-failure): inspect with `minik ssh -p {name}`, remove with `minik delete -p {name}`"
            ));
        } else {
            let step = reporter.step("cleanup", "Removing what this start created");
            let cleaned = driver
                .delete_profile(name)
                .await
                .map_err(anyhow::Error::from);
            let removed = Profile::remove_dir(&ctx.home, name);
            match (cleaned, removed) {
                (Ok(_), Ok(_)) => step.done(),
                (Err(e), _) | (_, Err(e)) => {
                    step.fail(&format!("{e:#}"));
                    reporter.warn(&format!(
                        "cleanup failed: {e:#}; run `minik delete -p {name}`"
                    ));
                }
            }
        }
        return Err(err);
    }
    finish(ctx, &driver, &profile, "created").await
}

async fn restart(ctx: &Context, args: &StartArgs, profile: Profile) -> anyhow::Result<u8> {
    let reporter = &ctx.reporter;
    if let Some(d) = &args.driver
        && d != &profile.driver
    {
        return Err(fail_with(
            &USAGE,
            format!(
                "profile \"{}\" uses the {} driver, not {d}",
                profile.name, profile.driver
            ),
            format!(
                "Drop --driver, or delete the profile first with `minik delete -p {}`.",
                profile.name
            ),
        ));
    }
    let ignored: Vec<&str> = [
        (
            args.nodes
                .is_some_and(|n| n as usize != profile.nodes.len()),
            "--nodes",
        ),
        (args.cpus.is_some() && args.cpus != profile.cpus, "--cpus"),
        (args.memory.is_some(), "--memory"),
        (
            args.image.as_ref().is_some_and(|i| i != &profile.image),
            "--image",
        ),
        (
            args.no_kubernetes != profile.kubernetes.is_none(),
            "--no-kubernetes",
        ),
    ]
    .into_iter()
    .filter_map(|(differs, flag)| differs.then_some(flag))
    .collect();
    if !ignored.is_empty() {
        reporter.warn(&format!(
            "profile \"{}\" exists: ignoring {} (delete and recreate it to change them)",
            profile.name,
            ignored.join(", ")
        ));
    }
    let step = reporter.step("engine", "Checking the container engine");
    let driver = AnyDriver::connect(&profile.driver, &ctx.home)?;
    step.finish_with(driver.check().await.map_err(anyhow::Error::from))?;
    let nodes: Vec<NodeSpec> = profile.nodes.iter().map(NodeSpec::from).collect();
    let request = request_for(&profile);
    if !driver.list_nodes(&profile.name).await?.is_empty() || profile.image.is_empty() {
        // Existing nodes keep the image they were created from.
    } else {
        ensure_image(
            ctx,
            &driver,
            &profile.image,
            profile.image == crate::node_image::default_tag("none"),
        )
        .await?;
    }
    cluster::start_existing(&driver, &request, &nodes, reporter, args.wait_timeout).await?;
    finish(ctx, &driver, &profile, "started").await
}

/// Makes sure the node image is in the engine: builds minik's own image when it is missing,
/// refuses a missing user-supplied one.
async fn ensure_image(
    ctx: &Context,
    driver: &AnyDriver,
    image: &str,
    is_default: bool,
) -> anyhow::Result<()> {
    let Some(docker) = driver.as_docker() else {
        return Ok(());
    };
    if docker.image_exists(image).await? {
        return Ok(());
    }
    if !is_default {
        return Err(fail_with(
            &DRV_IMAGE,
            format!("node image {image} is not present in {}", driver.name()),
            "Build or load it first, or drop --image to use minik's own node image.",
        ));
    }
    ctx.reporter.info(&format!(
        "Node image {image} is missing: building it (first start only)"
    ));
    super::node_image::build_default(ctx, docker, image).await
}

async fn finish(
    ctx: &Context,
    driver: &AnyDriver,
    profile: &Profile,
    verb: &str,
) -> anyhow::Result<u8> {
    let live = driver.list_nodes(&profile.name).await?;
    if ctx.json() {
        ctx.reporter.event(json!({
            "type": "result",
            "profile": profile.name,
            "driver": profile.driver,
            "kubernetes": profile.kubernetes.as_ref().map(|k| k.version.clone()),
            "nodes": live,
        }));
    } else {
        let what = if profile.kubernetes.is_none() {
            " (no Kubernetes)"
        } else {
            ""
        };
        ctx.reporter.info(&format!(
            "Profile \"{}\" {verb}: {} node(s) running{what}. Try `minik ssh -p {} -- ctr version`.",
            profile.name,
            live.len(),
            profile.name
        ));
    }
    Ok(0)
}
