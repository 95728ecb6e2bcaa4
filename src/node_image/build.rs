//! Building node images (and the qemu driver's VM base disks from them): the plan, the
//! Kubernetes files of its build context, and the engine builds. `minik node-image build` and
//! `minik start` (an image or VM disk that is missing) call these.

use crate::any_driver::AnyDriver;
use crate::cli::ContainerdSource;
use crate::k8s::release::{self, Arch, BinarySource, ProgressEvent};
use crate::k8s::version::KubernetesVersion;
use crate::session::Session;
use crate::ui::{Mode, Step};
use minik_driver_api::Driver;
use minik_driver_docker::DockerDriver;
use std::collections::HashMap;
use std::path::PathBuf;

crate::errors::layer_error!(
    /// Building a node image or a VM disk failed (reasons: `crate::errors`).
    BuildError,
    /// What went wrong building.
    BuildKind {
        /// The image or disk is missing and could not be built.
        Image,
        /// Nothing to build for this host.
        Usage,
        /// A bug: a task minik started failed.
        Bug,
    }
);

/// Environment variable naming another release mirror (tests, corporate mirrors).
pub const BASE_URL_ENV: &str = "MINIK_KUBERNETES_BASE_URL";

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildPlan {
    pub tag: String,
    /// `None` builds the container-runtime-only image.
    pub kubernetes: Option<KubernetesVersion>,
    /// Take the Kubernetes bundle from this directory instead of downloading it.
    pub kubernetes_from: Option<PathBuf>,
    pub base_image: String,
    /// Resolved: never `Auto`.
    pub containerd_source: ContainerdSource,
}

impl BuildPlan {
    /// A plan with minik's defaults for `kubernetes` (tag, base image, containerd source).
    pub fn new(
        kubernetes: Option<KubernetesVersion>,
        kubernetes_from: Option<PathBuf>,
    ) -> BuildPlan {
        let tag = tag_for(kubernetes.as_ref(), kubernetes_from.as_deref());
        let containerd_source = resolve_containerd(
            ContainerdSource::Auto,
            kubernetes.as_ref(),
            kubernetes_from.as_deref(),
        );
        BuildPlan {
            tag,
            kubernetes,
            kubernetes_from,
            base_image: "debian:trixie-slim".into(),
            containerd_source,
        }
    }

    pub fn build_args(&self) -> HashMap<String, String> {
        HashMap::from([
            (
                "KUBERNETES_VERSION".to_string(),
                version_label(self.kubernetes.as_ref()),
            ),
            (
                "CONTAINERD_SOURCE".to_string(),
                self.containerd_source.as_str().to_string(),
            ),
            ("BASE_IMAGE".to_string(), self.base_image.clone()),
        ])
    }
}

/// minik's tag for a node image of `kubernetes`, built from `kubernetes_from` when given.
pub fn tag_for(
    kubernetes: Option<&KubernetesVersion>,
    kubernetes_from: Option<&std::path::Path>,
) -> String {
    let label = version_label(kubernetes);
    match kubernetes_from {
        Some(dir) if kubernetes.is_some() => super::tag_from_dir(&label, dir),
        _ => super::default_tag(&label),
    }
}

/// `none` or the version string, as used in tags and the VERSION file.
pub fn version_label(v: Option<&KubernetesVersion>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "none".into())
}

/// `Auto` becomes the bundle's containerd when the `--kubernetes-from` directory brings one,
/// else Debian's containerd (1.7, works offline from registries) unless the Kubernetes version
/// needs containerd 2, which then comes from upstream releases.
pub fn resolve_containerd(
    source: ContainerdSource,
    kubernetes: Option<&KubernetesVersion>,
    kubernetes_from: Option<&std::path::Path>,
) -> ContainerdSource {
    match source {
        ContainerdSource::Auto if kubernetes_from.is_some_and(release::dir_has_containerd) => {
            ContainerdSource::Bundle
        }
        // Downloaded Kubernetes (online anyway): upstream's releases, which bring crictl too
        // (Debian has no cri-tools package, and pause and status need crictl).
        ContainerdSource::Auto if kubernetes.is_some() && kubernetes_from.is_none() => {
            ContainerdSource::Upstream
        }
        ContainerdSource::Auto if kubernetes.is_some_and(|v| v.requires_containerd_2()) => {
            ContainerdSource::Upstream
        }
        ContainerdSource::Auto => ContainerdSource::Debian,
        other => other,
    }
}

/// Parses `--kubernetes-version` for node-image build: `none`, `stable`, or vX.Y.Z.
pub fn parse_version_arg(arg: &str) -> anyhow::Result<Option<KubernetesVersion>> {
    let arg = arg.trim();
    if arg == "none" {
        return Ok(None);
    }
    let v = KubernetesVersion::resolve(arg)?;
    v.check_supported()?;
    Ok(Some(v))
}

/// Gathers the Kubernetes bundle's build-context files (downloaded and verified, or validated
/// from a directory).
async fn kubernetes_files(
    s: &Session<'_>,
    plan: &BuildPlan,
) -> anyhow::Result<Vec<(String, Vec<u8>, u32)>> {
    let Some(version) = &plan.kubernetes else {
        return Ok(Vec::new());
    };
    let arch = Arch::host().ok_or_else(|| {
        BuildError::new(
            BuildKind::Usage,
            "this host's architecture has no Kubernetes release",
        )
    })?;
    let source = match &plan.kubernetes_from {
        Some(dir) => BinarySource::Dir {
            path: dir.clone(),
            version: Some(version.clone()),
            arch,
        },
        None => BinarySource::Download {
            version: version.clone(),
            arch,
        },
    };
    let title = match &plan.kubernetes_from {
        Some(dir) => format!(
            "Checking Kubernetes {version} binaries in {}",
            dir.display()
        ),
        None => format!("Fetching Kubernetes {version} binaries"),
    };
    let step = s.reporter.step("kubernetes-binaries", title);
    let base_url =
        std::env::var(BASE_URL_ENV).unwrap_or_else(|_| release::DEFAULT_BASE_URL.to_string());
    let reporter = &s.reporter;
    let progress = move |e: ProgressEvent<'_>| reporter.detail(&format!("{e:?}"));
    let result = async {
        let bundle = source
            .bundle(&base_url, &s.home.cache_dir(), &progress)
            .await?;
        for w in &bundle.warnings {
            reporter.warn(w);
        }
        let files = tokio::task::spawn_blocking(move || bundle.context_files())
            .await
            .map_err(|e| {
                BuildError::new(BuildKind::Bug, format!("reading the bundle panicked: {e}"))
            })??;
        anyhow::Ok(files)
    }
    .await;
    step.finish_with(result)
}

/// The output of an engine build (node image or VM disk), line by line: a line starting with
/// one of `marks` retitles the step (and is printed in plain mode), every line goes to the
/// debug log, and the last 20 are kept for the error's advice.
struct BuildLog<'a> {
    s: Session<'a>,
    title: &'a str,
    plain: bool,
    marks: &'a [&'a str],
    last: Vec<String>,
}

impl<'a> BuildLog<'a> {
    fn new(s: Session<'a>, title: &'a str, plain: bool, marks: &'a [&'a str]) -> Self {
        BuildLog {
            s,
            title,
            plain,
            marks,
            last: Vec::new(),
        }
    }

    fn line(&mut self, step: &mut Step<'_>, line: &str) {
        let line = line.trim_end();
        if self.marks.iter().any(|m| line.starts_with(m)) {
            if self.plain {
                self.s.reporter.info(&format!("  {line}"));
            }
            step.set_title(format!(
                "{} ({})",
                self.title,
                line.split(" : ").next().unwrap_or(line)
            ));
        }
        self.s.reporter.detail(line);
        self.last.push(line.to_string());
        if self.last.len() > 20 {
            self.last.remove(0);
        }
    }
}

/// Builds `plan` with the engine behind `docker`.
pub async fn build_plan(
    s: &Session<'_>,
    docker: &DockerDriver,
    plan: &BuildPlan,
) -> anyhow::Result<()> {
    let extra = kubernetes_files(s, plan).await?;
    let context = super::context_tar(&extra)?;
    drop(extra);
    let title = format!("Building node image {}", plan.tag);
    let mut step = s.reporter.step("build-image", title.clone());
    let plain = s.reporter.mode() == Mode::Plain;
    let mut log = BuildLog::new(*s, &title, plain, &["Step "]);
    let result = docker
        .build_image(context, &plan.tag, plan.build_args(), |line: &str| {
            log.line(&mut step, line)
        })
        .await;
    let last_lines = log.last;
    step.set_title(title);
    match result {
        Ok(()) => {
            step.done();
            Ok(())
        }
        Err(e) => {
            step.fail(&e.to_string());
            let msg = e.to_string();
            let advice = if msg.contains(&plan.base_image)
                || msg.contains("pull access")
                || msg.contains("manifest")
            {
                format!(
                    "The base image {} could not be found or pulled. Without registry access, create it locally (see tests/make-base-image.sh).",
                    plan.base_image
                )
            } else {
                format!("The build's last output:\n{}", last_lines.join("\n"))
            };
            Err(BuildError::new(
                BuildKind::Image,
                format!("building node image {} failed: {msg}", plan.tag),
            )
            .with_advice(advice)
            .into())
        }
    }
}

// --- qemu driver hooks --------------------------------------------------------------------

/// The container engine that builds VM disks: `requested`, else docker, else podman.
pub async fn vm_build_engine(
    s: &Session<'_>,
    requested: Option<&str>,
) -> anyhow::Result<(AnyDriver, minik_driver_api::EngineInfo)> {
    if requested.is_some() {
        return AnyDriver::choose(requested, s.home).await;
    }
    let mut problems = Vec::new();
    for name in ["docker", "podman"] {
        match AnyDriver::connect(name, s.home) {
            Ok(d) => match d.check().await {
                Ok(info) => return Ok((d, info)),
                Err(e) => problems.push(format!("{name}: {e}")),
            },
            Err(e) => problems.push(format!("{name}: {e:#}")),
        }
    }
    Err(BuildError::new(
        BuildKind::Image,
        format!(
            "building a VM disk needs a container engine, and none answers ({})",
            problems.join("; ")
        ),
    )
    .with_advice(
        "Start docker or podman, or build the disk on a machine that has one \
         (`minik node-image build --vm`) and copy MINIK_HOME/cache/vm/ here.",
    )
    .into())
}

/// Builds the VM base disk of node image `tag` (in `docker`'s engine) for the qemu driver,
/// holding a lock so parallel starts build it once.
pub async fn build_vm_disk(
    s: &Session<'_>,
    qemu: &minik_driver_qemu::QemuDriver,
    docker: &DockerDriver,
    tag: &str,
    force: bool,
) -> anyhow::Result<()> {
    let qemu_img = qemu.qemu_img();
    if minik_driver_qemu::find_program(&qemu_img.to_string_lossy()).is_none() {
        return Err(BuildError::new(
            BuildKind::Image,
            format!(
                "building a VM disk needs {}, which is not installed",
                qemu_img.display()
            ),
        )
        .with_advice("Install qemu-utils (Debian/Ubuntu), qemu-img (Fedora) or qemu (Homebrew).")
        .into());
    }
    let cache = qemu.layout().disk_cache_dir().to_path_buf();
    std::fs::create_dir_all(&cache)?;
    let lock = std::fs::File::create(cache.join(".build.lock"))?;
    let lock = tokio::task::spawn_blocking(move || lock.lock().map(|_| lock))
        .await
        .map_err(|e| BuildError::new(BuildKind::Bug, format!("lock task failed: {e}")))??;
    if !force && qemu.base_disk(tag).is_complete() {
        // Another minik built it while this one waited for the lock.
        return Ok(());
    }
    let title = format!("Building the VM disk for {tag}");
    let mut step = s.reporter.step("build-vm-disk", title.clone());
    let plain = s.reporter.mode() == Mode::Plain;
    let mut log = BuildLog::new(*s, &title, plain, &["Step ", "Copying ", "Converting "]);
    let result = qemu
        .build_base_disk(docker, tag, |line: &str| log.line(&mut step, line))
        .await;
    let last_lines = log.last;
    drop(lock);
    step.set_title(title);
    match result {
        Ok(disk) => {
            step.done();
            s.reporter
                .info(&format!("VM disk ready in {}", disk.dir().display()));
            Ok(())
        }
        Err(e) => {
            step.fail(&e.to_string());
            Err(BuildError::new(
                BuildKind::Image,
                format!("building the VM disk for {tag} failed: {e}"),
            )
            .with_advice(format!(
                "The build's last output:\n{}",
                last_lines.join("\n")
            ))
            .into())
        }
    }
}

/// qemu driver, at `start`: makes sure the VM base disk of `plan.tag` exists; when it is
/// missing, builds it with docker or podman, building minik's own node image first if needed.
pub async fn ensure_vm_disk(
    s: &Session<'_>,
    qemu: &minik_driver_qemu::QemuDriver,
    plan: &BuildPlan,
    is_default: bool,
) -> anyhow::Result<()> {
    if qemu.base_disk(&plan.tag).is_complete() {
        return Ok(());
    }
    let (engine, _) = vm_build_engine(s, None).await.map_err(|e| {
        BuildError::new(
            BuildKind::Image,
            format!("there is no VM disk for {} yet: {e:#}", plan.tag),
        )
        .with_advice(
            "Start docker or podman so minik can build it, or build it elsewhere with \
             `minik node-image build --vm` and copy MINIK_HOME/cache/vm/ here.",
        )
    })?;
    let Some(docker) = engine.as_container_engine() else {
        return Err(BuildError::new(
            BuildKind::Bug,
            "the VM disk build engine is not a container engine",
        )
        .into());
    };
    if !docker.image_exists(&plan.tag).await? {
        if !is_default {
            return Err(BuildError::new(
                BuildKind::Image,
                format!(
                    "node image {} is not present in {} and there is no VM disk for it",
                    plan.tag,
                    engine.name()
                ),
            )
            .with_advice("Build or load it first, or drop --image to use minik's own node image.")
            .into());
        }
        s.reporter.info(&format!(
            "Node image {} is missing: building it (first start only)",
            plan.tag
        ));
        build_plan(s, docker, plan).await?;
    }
    if qemu.base_disk(&plan.tag).is_complete() {
        return Ok(());
    }
    s.reporter.info(&format!(
        "VM disk for {} is missing: building it (first start only)",
        plan.tag
    ));
    build_vm_disk(s, qemu, docker, &plan.tag, false).await
}

/// `minik start`: makes sure the node image `plan.tag` is in the engine (or, on qemu, that its
/// VM base disk exists). minik's own image (`is_default`) is built when missing; a missing
/// user-supplied one (`--image`) is refused.
pub async fn ensure(
    s: &Session<'_>,
    driver: &AnyDriver,
    plan: &BuildPlan,
    is_default: bool,
) -> anyhow::Result<()> {
    if let AnyDriver::Qemu(qemu) = driver {
        return ensure_vm_disk(s, qemu, plan, is_default).await;
    }
    let Some(docker) = driver.as_container_engine() else {
        return Ok(());
    };
    let image = &plan.tag;
    if docker.image_exists(image).await? {
        return Ok(());
    }
    if !is_default {
        return Err(BuildError::new(
            BuildKind::Image,
            format!("node image {image} is not present in {}", driver.name()),
        )
        .with_advice("Build or load it first, or drop --image to use minik's own node image.")
        .into());
    }
    s.reporter.info(&format!(
        "Node image {image} is missing: building it (first start only)"
    ));
    build_plan(s, docker, plan).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ContainerdSource;

    #[test]
    fn containerd_source_follows_the_kubernetes_version() {
        let old: KubernetesVersion = "v1.35.0".parse().unwrap();
        let new: KubernetesVersion = "v1.37.1".parse().unwrap();
        assert_eq!(
            resolve_containerd(ContainerdSource::Auto, None, None),
            ContainerdSource::Debian
        );
        // Downloaded Kubernetes of any version: upstream's containerd, runc and crictl.
        assert_eq!(
            resolve_containerd(ContainerdSource::Auto, Some(&old), None),
            ContainerdSource::Upstream
        );
        assert_eq!(
            resolve_containerd(ContainerdSource::Auto, Some(&new), None),
            ContainerdSource::Upstream
        );
        assert_eq!(
            resolve_containerd(ContainerdSource::Debian, Some(&new), None),
            ContainerdSource::Debian
        );
        // A directory without containerd: Debian's (offline) unless the version needs 2.x.
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            resolve_containerd(ContainerdSource::Auto, Some(&old), Some(dir.path())),
            ContainerdSource::Debian
        );
        // A directory that brings containerd wins over both.
        assert_eq!(
            resolve_containerd(ContainerdSource::Auto, Some(&new), Some(dir.path())),
            ContainerdSource::Upstream
        );
        std::fs::write(dir.path().join("containerd"), "x").unwrap();
        for v in [&old, &new] {
            assert_eq!(
                resolve_containerd(ContainerdSource::Auto, Some(v), Some(dir.path())),
                ContainerdSource::Bundle
            );
        }
        assert_eq!(
            resolve_containerd(ContainerdSource::Debian, Some(&new), Some(dir.path())),
            ContainerdSource::Debian
        );
        let plan = BuildPlan::new(Some(new), None);
        assert!(
            plan.tag.starts_with("localhost/minik/node:v1.37.1-"),
            "{}",
            plan.tag
        );
        assert_eq!(plan.build_args()["CONTAINERD_SOURCE"], "upstream");
        assert_eq!(plan.build_args()["KUBERNETES_VERSION"], "v1.37.1");
    }

    #[test]
    fn version_argument() {
        assert_eq!(parse_version_arg("none").unwrap(), None);
        assert!(parse_version_arg("stable").unwrap().is_some());
        assert!(
            parse_version_arg("v1.2.3").is_err(),
            "unsupported versions are refused"
        );
        assert!(parse_version_arg("banana").is_err());
    }
}
