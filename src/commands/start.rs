//! `minik start`: create a profile, or bring a stopped one back keeping its data.

use super::Context;
use crate::cli::{QemuAccel, StartArgs, parse_memory_mib};
use crate::cluster::{
    self,
    create::{CreateRequest, QemuSettings, Running},
    restart::RestartRequest,
};
use crate::errors::{GUEST_UNSUPPORTED, USAGE, fail, fail_with};
use crate::k8s::version::KubernetesVersion;
use crate::state::{Profile, ProfileLoad, ProfileLock};
use serde_json::json;

/// Most nodes one profile may have.
const MAX_NODES: u32 = 20;
/// Least memory per node that systemd + containerd run in.
const MIN_MEMORY_MIB: u64 = 256;

pub async fn run(ctx: &Context, args: StartArgs) -> anyhow::Result<u8> {
    let name = ctx.profile_name()?.to_string();
    let memory_mib = validate(&args)?;
    let qemu = qemu_settings(&args)?;
    let _lock = ProfileLock::acquire(&ctx.home, &name)?;
    let (running, verb) = match Profile::load(&ctx.home, &name)? {
        ProfileLoad::Found(profile) => {
            check_existing(ctx, &args, &profile)?;
            let req = RestartRequest {
                addons: args.addons.clone(),
                kubernetes_from: args.kubernetes_from.clone(),
                qemu,
                wait: args.wait,
                wait_timeout: args.wait_timeout,
                set_current_context: !args.keep_context,
            };
            let running = cluster::restart::restart(&ctx.session(), profile, &req).await?;
            (running, "started")
        }
        ProfileLoad::Missing => {
            let kubernetes = if args.no_kubernetes {
                None
            } else {
                let v = KubernetesVersion::resolve(
                    args.kubernetes_version.as_deref().unwrap_or("stable"),
                )?;
                v.check_supported()?;
                Some(v)
            };
            let req = CreateRequest {
                name,
                driver: args.driver.clone(),
                kubernetes,
                kubernetes_from: args.kubernetes_from.clone(),
                image: args.image.clone(),
                cpus: args.cpus,
                memory_mib,
                nodes: args.nodes.unwrap_or(1),
                addons: args.addons.clone(),
                qemu,
                wait: args.wait,
                wait_timeout: args.wait_timeout,
                keep_on_failure: args.keep_on_failure,
                set_current_context: !args.keep_context,
            };
            (
                cluster::create::create(&ctx.session(), &req).await?,
                "created",
            )
        }
    };
    report(ctx, &running, verb)
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
            if let Some(host) = host_memory_mib()
                && mib > host
            {
                return Err(fail_with(
                    &USAGE,
                    format!("--memory {m} is more than the {host} MiB of memory of this host"),
                    format!("Use at most --memory {host}m."),
                ));
            }
            Some(mib)
        }
    };
    // Addons: `--addons` names must exist and need Kubernetes.
    crate::addons::profile::validate_names(&args.addons)?;
    if !args.addons.is_empty() && args.no_kubernetes {
        return Err(fail(
            &USAGE,
            "--addons needs Kubernetes: it contradicts --no-kubernetes",
        ));
    }
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

/// The host's memory in MiB (`MemTotal` of /proc/meminfo); `None` where that is unreadable.
fn host_memory_mib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_total_mib(&meminfo)
}

fn parse_mem_total_mib(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// Refuses what an existing profile cannot take; warns about the flags it ignores (they are
/// fixed when a profile is created).
fn check_existing(ctx: &Context, args: &StartArgs, profile: &Profile) -> anyhow::Result<()> {
    if !args.addons.is_empty() && profile.kubernetes.is_none() {
        return Err(fail(
            &GUEST_UNSUPPORTED,
            format!(
                "profile \"{}\" runs without Kubernetes: --addons does not apply",
                profile.name
            ),
        ));
    }
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
            args.no_kubernetes && profile.kubernetes.is_some(),
            "--no-kubernetes",
        ),
        (
            args.kubernetes_version.as_ref().is_some_and(|v| {
                let asked = KubernetesVersion::resolve(v).map(|v| v.to_string()).ok();
                profile.kubernetes.as_ref().map(|k| k.version.clone()) != asked
            }),
            "--kubernetes-version",
        ),
    ]
    .into_iter()
    .filter_map(|(differs, flag)| differs.then_some(flag))
    .collect();
    if !ignored.is_empty() {
        ctx.reporter.warn(&format!(
            "profile \"{}\" exists: ignoring {} (delete and recreate it to change them)",
            profile.name,
            ignored.join(", ")
        ));
    }
    Ok(())
}

/// The result line (text) or event (JSON) of a profile that runs.
fn report(ctx: &Context, running: &Running, verb: &str) -> anyhow::Result<u8> {
    let Running { profile, live, .. } = running;
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

/// `--qemu-accel` and `--disk-size` (checked on every driver, used by qemu only).
fn qemu_settings(args: &StartArgs) -> anyhow::Result<QemuSettings> {
    let disk_mib = match &args.disk_size {
        None => None,
        Some(s) => {
            let mib = parse_memory_mib(s)
                .map_err(|e| fail(&USAGE, format!("--disk-size: {}", e.replace("memory ", ""))))?;
            if mib < MIN_DISK_MIB {
                return Err(fail_with(
                    &USAGE,
                    format!("--disk-size {s} is too small"),
                    "Give each node at least 2g (the node's own files take about 1g).",
                ));
            }
            Some(mib)
        }
    };
    Ok(QemuSettings {
        accel: args.qemu_accel.map(QemuAccel::choice),
        disk_mib,
    })
}

/// Least disk per VM node: the base system plus room for images.
const MIN_DISK_MIB: u64 = 2048;

#[cfg(test)]
mod tests {
    use super::parse_mem_total_mib;

    #[test]
    fn host_memory_comes_from_mem_total() {
        let meminfo = "MemTotal:       24683664 kB\nMemFree:         1000 kB\n";
        assert_eq!(parse_mem_total_mib(meminfo), Some(24105));
        assert_eq!(parse_mem_total_mib("MemFree: 1 kB\n"), None);
    }
}
