//! `minik start`: create a profile, or bring a stopped one back keeping its data.

use super::Context;
use crate::any_driver::AnyDriver;
use crate::cli::{StartArgs, parse_memory_mib};
use crate::cluster::kubernetes;
use crate::cluster::{self, request_for};
use crate::errors::{DRV_IMAGE, GUEST_PROFILE_ORPHANED, USAGE, fail, fail_with};
use crate::k8s::kubeconfig;
use crate::k8s::version::KubernetesVersion;
use crate::node_image::build::BuildPlan;
use crate::state::{KubernetesSpec, Profile, ProfileLoad, ProfileLock};
use minik_driver_api::{Driver, NodeSpec, Runner};
use serde_json::json;

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

async fn create(
    ctx: &Context,
    args: &StartArgs,
    name: &str,
    memory_mib: Option<u64>,
) -> anyhow::Result<u8> {
    let kubernetes = if args.no_kubernetes {
        None
    } else {
        let v = KubernetesVersion::resolve(args.kubernetes_version.as_deref().unwrap_or("stable"))?;
        v.check_supported()?;
        Some(v)
    };
    // The first SIGINT/SIGTERM is this function's to handle: it removes what it created.
    let _scope = crate::interrupt::Scope::enter(format!(
        "Run `minik delete -p {name}` to remove what this start created."
    ));
    let reporter = &ctx.reporter;
    let step = reporter.step("engine", "Checking the container engine");
    let (mut driver, info) = step.finish_with(
        crate::interrupt::or_cancelled(
            AnyDriver::choose(args.driver.as_deref(), &ctx.home),
            "checking the engine",
        )
        .await,
    )?;
    qemu_flags(ctx, &mut driver, args)?;
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

    let mut build = BuildPlan::new(kubernetes.clone(), args.kubernetes_from.clone());
    let image = match &args.image {
        Some(image) => image.clone(),
        None => build.tag.clone(),
    };
    build.tag = image.clone();
    // Nothing of the profile exists yet: an interruption here needs no cleanup.
    crate::interrupt::or_cancelled(
        ensure_image(ctx, &driver, &build, args.image.is_none()),
        "preparing the node image",
    )
    .await?;

    let profile = Profile {
        schema: crate::state::PROFILE_SCHEMA,
        name: name.to_string(),
        driver: driver.name().to_string(),
        image,
        cpus: args.cpus,
        memory_mib,
        nodes: Profile::node_records(name, args.nodes.unwrap_or(1)),
        kubernetes: kubernetes.as_ref().map(|v| KubernetesSpec {
            version: v.to_string(),
        }),
        // Addons: the defaults plus --addons, recorded explicitly.
        addons: if kubernetes.is_some() {
            crate::addons::profile::initial_state(&args.addons)?
        } else {
            Default::default()
        },
        addon_images: Default::default(),
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    profile.save(&ctx.home)?;
    let request = request_for(&profile);
    let nodes: Vec<NodeSpec> = profile.nodes.iter().map(NodeSpec::from).collect();

    let work = async {
        cluster::provision(&driver, &request, &nodes, reporter, args.wait_timeout).await?;
        if let Some(version) = &kubernetes {
            let plan = kubernetes::plan_for(&driver, &profile, version.clone(), true).await?;
            let config = kubernetes::bootstrap(&driver, &plan, reporter).await?;
            if args.wait {
                kubernetes::wait_ready(&driver, &plan, &config, reporter, args.wait_timeout)
                    .await?;
            }
            write_kubeconfig(ctx, config, !args.keep_context).await?;
            // Addons: apply the enabled ones (warnings only, never a failed start).
            crate::addons::profile::apply_enabled(
                &ctx.reporter,
                &driver,
                &profile,
                args.wait,
                args.wait_timeout,
            )
            .await;
        }
        anyhow::Ok(())
    };
    let result = crate::interrupt::or_cancelled(work, "creating the profile").await;
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
            let (_, unexported) = kubeconfig::remove_profile_everywhere(name).await;
            match (cleaned, removed, unexported) {
                (Ok(_), Ok(_), Ok(_)) => step.done(),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
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

/// Merges the profile's kubeconfig entries into the user's kubeconfig file.
async fn write_kubeconfig(
    ctx: &Context,
    config: kube::config::Kubeconfig,
    set_current: bool,
) -> anyhow::Result<()> {
    let step = ctx
        .reporter
        .step("kubeconfig-write", "Updating the kubeconfig");
    let r = tokio::task::spawn_blocking(move || {
        let path = kubeconfig::target_path_from_env()?;
        kubeconfig::merge_into(
            &path,
            &config,
            set_current,
            kubeconfig::DEFAULT_LOCK_TIMEOUT,
        )?;
        anyhow::Ok(path)
    })
    .await
    .map_err(|e| {
        fail(
            &crate::errors::INTERNAL,
            format!("kubeconfig writer panicked: {e}"),
        )
    })?;
    let path = step.finish_with(r)?;
    ctx.reporter
        .info(&format!("kubectl context written to {}", path.display()));
    Ok(())
}

async fn restart(ctx: &Context, args: &StartArgs, mut profile: Profile) -> anyhow::Result<u8> {
    let reporter = &ctx.reporter;
    // Addons: `--addons` on an existing profile enables them too.
    if !args.addons.is_empty() && profile.kubernetes.is_none() {
        return Err(fail(
            &crate::errors::GUEST_UNSUPPORTED,
            format!(
                "profile \"{}\" runs without Kubernetes: --addons does not apply",
                profile.name
            ),
        ));
    }
    if !args.addons.is_empty() {
        for name in crate::addons::with_requirements(&args.addons)? {
            profile.addons.insert(name, true);
        }
        profile.save(&ctx.home)?;
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
        reporter.warn(&format!(
            "profile \"{}\" exists: ignoring {} (delete and recreate it to change them)",
            profile.name,
            ignored.join(", ")
        ));
    }
    let step = reporter.step("engine", "Checking the container engine");
    let mut driver = AnyDriver::connect(&profile.driver, &ctx.home)?;
    qemu_flags(ctx, &mut driver, args)?;
    step.finish_with(driver.check_explained().await)?;
    let nodes: Vec<NodeSpec> = profile.nodes.iter().map(NodeSpec::from).collect();
    let request = request_for(&profile);
    let live = driver.list_nodes(&profile.name).await?;
    if profile
        .nodes
        .iter()
        .any(|n| !live.iter().any(|l| l.name == n.name))
    {
        // Nodes to recreate need the image (existing nodes keep the one they were made from).
        let version = match &profile.kubernetes {
            Some(k) => Some(KubernetesVersion::resolve(&k.version)?),
            None => None,
        };
        let mut plan = BuildPlan::new(version, args.kubernetes_from.clone());
        let is_default = plan.tag == profile.image;
        plan.tag = profile.image.clone();
        ensure_image(ctx, &driver, &plan, is_default).await?;
    }
    cluster::start_existing(&driver, &request, &nodes, reporter, args.wait_timeout).await?;
    if let Some(spec) = &profile.kubernetes {
        // A restart never reruns kubeadm: node addresses and the API port are stable, so the
        // kubelet brings the static pods back by itself. Check the addresses really held.
        let version = KubernetesVersion::resolve(&spec.version)?;
        let plan = kubernetes::plan_for(&driver, &profile, version, false).await?;
        check_addresses(&driver, &plan).await?;
        // A cluster paused with `minik pause` comes back whole: resume its containers and
        // its kubelet.
        // A node that kept running through an interrupted `minik stop` (killed after it
        // stopped the kubelet, before the engine stopped the node) gets its kubelet back too:
        // `systemctl start` is a no-op where it already runs.
        for node in &plan.nodes {
            let runner = driver.runner(&node.name);
            if !cluster::pause::read_marker(&runner).await?.is_empty() {
                cluster::pause::unpause_node(&runner, true).await?;
            } else {
                cluster::pause::start_kubelet(&runner).await?;
            }
        }
        let cp = driver.runner(&plan.control_plane().name);
        let admin = cp.read_file(kubernetes::ADMIN_CONF).await?;
        let config = kubeconfig::export(
            &String::from_utf8_lossy(&admin),
            &profile.name,
            &kubeconfig::local_server(plan.api_port),
        )?;
        if args.wait {
            kubernetes::wait_ready(&driver, &plan, &config, reporter, args.wait_timeout).await?;
        }
        write_kubeconfig(ctx, config, !args.keep_context).await?;
        // Re-apply the enabled addons after every restart (objects deleted by hand come
        // back), without waiting for their pods: they restart with the node, and the wait
        // above already covered the nodes and CoreDNS (minikube's default wait is the same).
        crate::addons::profile::apply_enabled(
            &ctx.reporter,
            &driver,
            &profile,
            false,
            args.wait_timeout,
        )
        .await;
    }
    finish(ctx, &driver, &profile, "started").await
}

/// Makes sure the node image is in the engine: builds minik's own image when it is missing,
/// refuses a missing user-supplied one.
async fn ensure_image(
    ctx: &Context,
    driver: &AnyDriver,
    plan: &BuildPlan,
    is_default: bool,
) -> anyhow::Result<()> {
    if let AnyDriver::Qemu(qemu) = driver {
        return crate::node_image::build::ensure_vm_disk(&ctx.session(), qemu, plan, is_default)
            .await;
    }
    let Some(docker) = driver.as_container_engine() else {
        return Ok(());
    };
    let image = &plan.tag;
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
    crate::node_image::build::build_plan(&ctx.session(), docker, plan).await
}

/// Fails when a node's address differs from the one its kubeadm configuration was written
/// for (certificates and kubeconfigs name it): the cluster cannot come back as it was.
async fn check_addresses(driver: &AnyDriver, plan: &kubernetes::Plan) -> anyhow::Result<()> {
    for node in &plan.nodes {
        let runner = driver.runner(&node.name);
        let config = match runner
            .read_file(crate::k8s::kubeadm::KUBEADM_CONFIG_PATH)
            .await
        {
            Ok(c) => String::from_utf8_lossy(&c).into_owned(),
            Err(_) => continue,
        };
        if !names_address(&config, &node.ip) {
            return Err(fail_with(
                &crate::errors::K8S_BOOTSTRAP,
                format!(
                    "node {} came back with address {}, not the one its certificates were made for",
                    node.name, node.ip
                ),
                format!(
                    "Recreate the profile: `minik delete -p {0} && minik start -p {0}`.",
                    plan.profile
                ),
            ));
        }
    }
    Ok(())
}

/// Whether a kubeadm configuration names `ip` as a whole address (`192.168.49.2` is not named
/// by a config for `192.168.49.20`, nor by `10.192.168.49.2`).
fn names_address(config: &str, ip: &str) -> bool {
    config
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .any(|token| token == ip)
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

// --- qemu driver hooks --------------------------------------------------------------------

/// Hands `--qemu-accel` and `--disk-size` to the qemu driver; warns that they do nothing on
/// other drivers.
fn qemu_flags(ctx: &Context, driver: &mut AnyDriver, args: &StartArgs) -> anyhow::Result<()> {
    let disk_mib = match &args.disk_size {
        None => None,
        Some(s) => Some(
            parse_memory_mib(s)
                .map_err(|e| fail(&USAGE, format!("--disk-size: {}", e.replace("memory ", ""))))?,
        ),
    };
    let AnyDriver::Qemu(qemu) = driver else {
        if args.qemu_accel.is_some() || disk_mib.is_some() {
            ctx.reporter.warn(&format!(
                "--qemu-accel and --disk-size apply to the qemu driver only; ignored for {}",
                driver.name()
            ));
        }
        return Ok(());
    };
    if let Some(accel) = args.qemu_accel {
        let choice = minik_driver_qemu::AccelChoice::parse(accel.as_str())
            .unwrap_or(minik_driver_qemu::AccelChoice::Auto);
        qemu.set_accel(choice);
    }
    if let Some(mib) = disk_mib {
        if mib < MIN_DISK_MIB {
            return Err(fail_with(
                &USAGE,
                format!(
                    "--disk-size {} is too small",
                    args.disk_size.as_deref().unwrap_or_default()
                ),
                "Give each node at least 2g (the node's own files take about 1g).",
            ));
        }
        qemu.set_disk_size_mib(mib);
    }
    Ok(())
}

/// Least disk per VM node: the base system plus room for images.
const MIN_DISK_MIB: u64 = 2048;

#[cfg(test)]
mod tests {
    use super::{names_address, parse_mem_total_mib};

    #[test]
    fn host_memory_comes_from_mem_total() {
        let meminfo = "MemTotal:       24683664 kB\nMemFree:         1000 kB\n";
        assert_eq!(parse_mem_total_mib(meminfo), Some(24105));
        assert_eq!(parse_mem_total_mib("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn address_check_matches_whole_addresses_only() {
        let config = "localAPIEndpoint:\n  advertiseAddress: 192.168.49.20\ncontrolPlaneEndpoint: 192.168.49.20:6443\n  - name: node-ip\n    value: \"192.168.49.20\"\n";
        assert!(names_address(config, "192.168.49.20"));
        assert!(!names_address(config, "192.168.49.2"), "a prefix of .20");
        assert!(!names_address(config, "168.49.20"), "a suffix");
        assert!(names_address(
            "controlPlaneEndpoint: 10.0.0.3:6443",
            "10.0.0.3"
        ));
        assert!(!names_address("", "10.0.0.3"));
    }
}
