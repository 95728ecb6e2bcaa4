//! A new profile: choose the engine, make sure the node image is there, record the profile,
//! create and boot the nodes, run the Kubernetes [`super::steps::BOOTSTRAP`], wait, write the
//! kubeconfig, apply the addons. A failure or the first Ctrl-C removes everything it created
//! (unless `keep_on_failure`), so the next `start` begins from nothing.

use super::error::{ClusterError, ClusterKind};
use super::kubernetes;
use crate::any_driver::AnyDriver;
use crate::k8s::kubeconfig;
use crate::k8s::version::KubernetesVersion;
use crate::node_image::build::BuildPlan;
use crate::session::Session;
use crate::state::{KubernetesSpec, Profile};
use minik_driver_api::{Driver, NodeSpec};
use std::path::PathBuf;
use std::time::Duration;

/// The qemu driver's own settings (other drivers ignore them, with a warning).
#[derive(Debug, Clone, Copy, Default)]
pub struct QemuSettings {
    pub accel: Option<minik_driver_qemu::AccelChoice>,
    pub disk_mib: Option<u64>,
}

impl QemuSettings {
    fn is_set(&self) -> bool {
        self.accel.is_some() || self.disk_mib.is_some()
    }

    /// Hands the settings to the qemu driver; warns that they do nothing on the others.
    pub fn apply(&self, s: &Session<'_>, driver: &mut AnyDriver) {
        let AnyDriver::Qemu(qemu) = driver else {
            if self.is_set() {
                s.reporter.warn(&format!(
                    "--qemu-accel and --disk-size apply to the qemu driver only; ignored for {}",
                    driver.name()
                ));
            }
            return;
        };
        if let Some(accel) = self.accel {
            qemu.set_accel(accel);
        }
        if let Some(mib) = self.disk_mib {
            qemu.set_disk_size_mib(mib);
        }
    }
}

/// What the new profile is to be (flags already checked by the command).
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub name: String,
    /// `--driver`; `None` picks the first engine that answers.
    pub driver: Option<String>,
    /// `None` for a `--no-kubernetes` profile.
    pub kubernetes: Option<KubernetesVersion>,
    pub kubernetes_from: Option<PathBuf>,
    /// `--image`; `None` is minik's own node image (built when missing).
    pub image: Option<String>,
    pub cpus: Option<f64>,
    pub memory_mib: Option<u64>,
    pub nodes: u32,
    /// Addons enabled on top of the defaults.
    pub addons: Vec<String>,
    pub qemu: QemuSettings,
    pub wait: bool,
    pub wait_timeout: Duration,
    pub keep_on_failure: bool,
    /// Make the new context kubectl's current one.
    pub set_current_context: bool,
}

/// A profile that runs: its driver (connected), what was recorded, and its nodes as the
/// engine saw them at the end (read inside the operation, before its Ctrl-C scope ends).
pub struct Running {
    pub driver: AnyDriver,
    pub profile: Profile,
    pub live: Vec<minik_driver_api::NodeInfo>,
}

/// Creates the profile. The caller holds the profile lock and knows no profile file exists.
pub async fn create(s: &Session<'_>, req: &CreateRequest) -> anyhow::Result<Running> {
    let name = req.name.as_str();
    // The first SIGINT/SIGTERM is this function's to handle: it removes what it created.
    let _scope = crate::interrupt::Scope::enter(format!(
        "Run `minik delete -p {name}` to remove what this start created."
    ));
    let reporter = s.reporter;
    let step = reporter.step("engine", "Checking the container engine");
    let (mut driver, info) = step.finish_with(
        crate::interrupt::or_cancelled(
            AnyDriver::choose(req.driver.as_deref(), s.home),
            "checking the engine",
        )
        .await,
    )?;
    req.qemu.apply(s, &mut driver);
    reporter.info(&format!(
        "Using the {} driver ({})",
        driver.name(),
        info.version
    ));

    if driver.list_profiles().await?.iter().any(|p| p == name) {
        return Err(ClusterError::new(ClusterKind::Orphaned, format!(
                "{} resources labelled with profile \"{name}\" exist, but the profile has no profile file",
                driver.name()
            )).with_advice(format!("Run `minik delete -p {name}` to remove them, then start again.")).into());
    }

    let mut build = BuildPlan::new(req.kubernetes.clone(), req.kubernetes_from.clone());
    if let Some(image) = &req.image {
        build.tag = image.clone();
    }
    // Nothing of the profile exists yet: an interruption here needs no cleanup.
    crate::interrupt::or_cancelled(
        crate::node_image::build::ensure(s, &driver, &build, req.image.is_none()),
        "preparing the node image",
    )
    .await?;

    let profile = Profile {
        schema: crate::state::PROFILE_SCHEMA,
        name: name.to_string(),
        driver: driver.name().to_string(),
        image: build.tag.clone(),
        cpus: req.cpus,
        memory_mib: req.memory_mib,
        nodes: Profile::node_records(name, req.nodes),
        kubernetes: req.kubernetes.as_ref().map(|v| KubernetesSpec {
            version: v.to_string(),
        }),
        // The default addons plus the requested ones, recorded explicitly.
        addons: if req.kubernetes.is_some() {
            crate::addons::profile::initial_state(&req.addons)?
        } else {
            Default::default()
        },
        addon_images: Default::default(),
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    profile.save(s.home)?;

    let work = async {
        let nodes: Vec<NodeSpec> = profile.nodes.iter().map(NodeSpec::from).collect();
        super::provision(
            &driver,
            &super::request_for(&profile),
            &nodes,
            reporter,
            req.wait_timeout,
        )
        .await?;
        if let Some(version) = &req.kubernetes {
            let plan = kubernetes::plan_for(&driver, &profile, version.clone(), true).await?;
            let config = super::steps::bootstrap(&driver, &plan, reporter).await?;
            if req.wait {
                kubernetes::wait_ready(&driver, &plan, &config, reporter, req.wait_timeout).await?;
            }
            write_kubeconfig(s, config, req.set_current_context).await?;
            // Warnings only, never a failed start.
            crate::addons::profile::apply_enabled(
                reporter,
                &driver,
                &profile,
                req.wait,
                req.wait_timeout,
            )
            .await;
        }
        anyhow::Ok(())
    };
    if let Err(err) = crate::interrupt::or_cancelled(work, "creating the profile").await {
        if req.keep_on_failure {
            reporter.warn(&format!(
                "start failed; keeping what was created (--keep-on-failure): inspect with `minik ssh -p {name}`, remove with `minik delete -p {name}`"
            ));
        } else {
            clean_up(s, &driver, name).await;
        }
        return Err(err);
    }
    let live = driver.list_nodes(&profile.name).await?;
    Ok(Running {
        driver,
        profile,
        live,
    })
}

/// Removes what a failed create made: the engine's resources, the profile directory, the
/// kubeconfig entries. A failure here is a warning (the create's own error is what the user
/// sees); `minik delete` finishes the job.
async fn clean_up(s: &Session<'_>, driver: &AnyDriver, name: &str) {
    let step = s
        .reporter
        .step("cleanup", "Removing what this start created");
    let cleaned = driver
        .delete_profile(name)
        .await
        .map_err(anyhow::Error::from);
    let removed = Profile::remove_dir(s.home, name);
    let (_, unexported) = kubeconfig::remove_profile_everywhere(name).await;
    match (cleaned, removed, unexported) {
        (Ok(_), Ok(_), Ok(_)) => step.done(),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            step.fail(&format!("{e:#}"));
            s.reporter.warn(&format!(
                "cleanup failed: {e:#}; run `minik delete -p {name}`"
            ));
        }
    }
}

/// Merges the profile's kubeconfig entries into the user's kubeconfig file (`$KUBECONFIG` or
/// `~/.kube/config`).
pub async fn write_kubeconfig(
    s: &Session<'_>,
    config: kube::config::Kubeconfig,
    set_current: bool,
) -> anyhow::Result<()> {
    let step = s
        .reporter
        .step("kubeconfig-write", "Updating the kubeconfig");
    let path = step.finish_with(kubeconfig::merge_into_target(config, set_current).await)?;
    s.reporter
        .info(&format!("kubectl context written to {}", path.display()));
    Ok(())
}
