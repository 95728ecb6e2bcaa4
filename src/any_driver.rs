//! Driver selection and the closed enums that dispatch to each driver (as youki's
//! `AnyCgroupManager`): no `dyn`, no async-trait, and futures stay `Send`.

use crate::state::Home;
use minik_driver_api::fake::{FakeDriver, FakeEngine, FakeRunner};
use minik_driver_api::{
    ClusterRequest, DeleteReport, Driver, DriverError, EngineInfo, ExecRequest, NodeInfo, NodeSpec,
    Observer, Runner,
};
use minik_driver_docker::{DockerDriver, DockerRunner};
use minik_driver_podman::PodmanDriver;
use minik_driver_qemu::{Layout, QemuDriver, QemuOptions, SshRunner};
use std::time::Duration;
use tokio::io::AsyncWrite;

crate::errors::layer_error!(
    /// Choosing or setting up a driver failed (reasons: `crate::errors`).
    ChoiceError,
    /// What went wrong choosing a driver.
    ChoiceKind {
        /// A driver name minik does not know.
        UnknownDriver,
        /// Some engine is installed, none answers.
        NoEngineAnswers,
        /// No engine is installed.
        NoEngineInstalled,
        /// A driver setting from the environment is invalid.
        BadSetting,
    }
);

/// A driver error with advice specific to the driver (podman's socket, qemu's packages); its
/// reason is the driver error's. Display: `message`, which is the driver error's own unless
/// the driver words it better.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AdvisedDriverError {
    pub error: DriverError,
    pub message: String,
    pub advice: String,
}

impl AdvisedDriverError {
    pub fn new(error: DriverError, advice: impl Into<String>) -> Self {
        AdvisedDriverError {
            message: error.to_string(),
            error,
            advice: advice.into(),
        }
    }
}

/// Drivers users can choose, in auto-detection order.
pub const DRIVERS: &[&str] = &["docker", "podman", "qemu"];

/// Any driver.
pub enum AnyDriver {
    Docker(DockerDriver),
    /// The docker driver on podman's Docker-compatible socket, with podman's quirks.
    Podman(PodmanDriver),
    /// Nodes as qemu VMs, reached over SSH.
    Qemu(QemuDriver),
    /// In-file fake engine for CLI tests (hidden `--driver fake`).
    Fake(FakeDriver),
}

/// Any driver's runner.
pub enum AnyRunner {
    /// Docker and podman nodes (both are reached through the Docker API's exec and archive).
    Docker(DockerRunner),
    /// qemu VMs, through the system `ssh`.
    Qemu(SshRunner),
    Fake(FakeRunner),
}

macro_rules! dispatch {
    ($self:ident, $d:ident => $e:expr) => {
        match $self {
            AnyDriver::Docker($d) => $e,
            AnyDriver::Podman($d) => $e,
            AnyDriver::Qemu($d) => $e,
            AnyDriver::Fake($d) => $e,
        }
    };
}

impl AnyDriver {
    /// Connects to the named driver's engine (without checking it answers; see `check`).
    pub fn connect(name: &str, home: &Home) -> anyhow::Result<AnyDriver> {
        match name {
            "docker" => Ok(AnyDriver::Docker(
                DockerDriver::connect()?.with_security_memory(home.engine_security_file()),
            )),
            "podman" => PodmanDriver::connect()
                .map(|d| d.with_security_memory(home.engine_security_file()))
                .map(AnyDriver::Podman)
                .map_err(podman_failure),
            "qemu" => Ok(AnyDriver::Qemu(qemu_driver(home)?)),
            "fake" => Ok(AnyDriver::Fake(FakeDriver::new(FakeEngine::new(
                home.fake_engine_file(),
            )))),
            other => Err(ChoiceError::new(
                ChoiceKind::UnknownDriver,
                format!("unknown driver {other:?}"),
            )
            .with_advice(format!("Use one of: {}.", DRIVERS.join(", ")))
            .into()),
        }
    }

    /// Picks the driver for a new profile: the requested one, else the first engine that
    /// answers (docker, then podman, then qemu: containers start faster than VMs).
    pub async fn choose(
        requested: Option<&str>,
        home: &Home,
    ) -> anyhow::Result<(AnyDriver, EngineInfo)> {
        if let Some(name) = requested {
            let driver = AnyDriver::connect(name, home)?;
            let info = driver.check_explained().await?;
            return Ok((driver, info));
        }
        let mut problems = Vec::new();
        // Whether some engine is installed but does not answer (exit code NOT_RUNNING rather
        // than NOT_FOUND).
        let mut installed = false;
        for name in DRIVERS {
            let driver = match AnyDriver::connect(name, home) {
                Ok(driver) => driver,
                Err(e) => {
                    installed |= is_unreachable(&e);
                    problems.push(format!("{name}: {e:#}"));
                    continue;
                }
            };
            match driver.check().await {
                // A DOCKER_HOST that points at podman's socket: that engine is the podman
                // driver's (the docker driver's options, e.g. its ulimits, do not suit it).
                Ok(_) if driver.is_podman_behind_docker().await => problems.push(format!(
                    "docker: {} is podman's socket, not a Docker Engine",
                    minik_driver_docker::docker_host()
                )),
                Ok(info) => return Ok((driver, info)),
                Err(e) => {
                    installed |= matches!(e, DriverError::EngineUnreachable { .. });
                    problems.push(format!("{name}: {e}"));
                }
            }
        }
        let (kind, verb) = if installed {
            (ChoiceKind::NoEngineAnswers, "no engine answers")
        } else {
            (
                ChoiceKind::NoEngineInstalled,
                "no container engine or qemu found",
            )
        };
        Err(ChoiceError::new(kind, format!("{verb} ({})", problems.join("; ")))
            .with_advice(
                "Start Docker Engine (`sudo systemctl start docker`) or podman's API (`sudo systemctl start podman.socket`), \
                 install one of them or qemu, or pick a driver with --driver.",
            )
            .into())
    }

    /// [`Driver::check`], with the driver's own advice on a missing or stopped engine (podman's
    /// differs from the generic docker-flavoured one).
    pub async fn check_explained(&self) -> anyhow::Result<EngineInfo> {
        match self {
            AnyDriver::Podman(d) => d.check().await.map_err(podman_failure),
            AnyDriver::Qemu(d) => d.check().await.map_err(qemu_failure),
            d => Ok(d.check().await?),
        }
    }

    /// Whether this is the docker driver talking to podman (DOCKER_HOST names its socket).
    async fn is_podman_behind_docker(&self) -> bool {
        match self {
            AnyDriver::Docker(d) => minik_driver_podman::is_podman(d.engine())
                .await
                .unwrap_or(false),
            _ => false,
        }
    }

    /// Drivers whose engines answer, for commands that must look everywhere (delete --all,
    /// delete of a profile whose file is gone).
    pub async fn reachable(home: &Home) -> Vec<AnyDriver> {
        let mut found = Vec::new();
        for name in DRIVERS {
            if let Ok(d) = AnyDriver::connect(name, home)
                && d.check().await.is_ok()
            {
                found.push(d);
            }
        }
        if home.fake_engine_file().exists() {
            found.push(AnyDriver::Fake(FakeDriver::new(FakeEngine::new(
                home.fake_engine_file(),
            ))));
        }
        found
    }

    /// The Docker-API driver underneath (docker itself, or podman through its compatible
    /// API), for what goes through that API alike on both engines: image builds, existence
    /// checks, exports. `None` for drivers without a container engine.
    pub fn as_container_engine(&self) -> Option<&DockerDriver> {
        match self {
            AnyDriver::Docker(d) => Some(d),
            AnyDriver::Podman(d) => Some(d.docker()),
            AnyDriver::Qemu(_) | AnyDriver::Fake(_) => None,
        }
    }
}

/// A podman driver error as a failure with podman's advice (install it, or start its API at
/// the socket this environment selects).
fn podman_failure(e: DriverError) -> anyhow::Error {
    match minik_driver_podman::advice(&e) {
        Some(advice) => AdvisedDriverError::new(e, advice).into(),
        None => e.into(),
    }
}

/// The qemu driver over MINIK_HOME, with the options the environment sets
/// (`MINIK_QEMU_ACCEL`, `MINIK_QEMU_SYSTEM`, `MINIK_QEMU_IMG`); `start` adds its flags.
pub(crate) fn qemu_driver(home: &Home) -> anyhow::Result<QemuDriver> {
    let options = QemuOptions::from_env().map_err(|e| {
        ChoiceError::new(ChoiceKind::BadSetting, e.to_string()).with_advice(format!(
            "Set {} to auto, kvm, hvf or tcg, or unset it.",
            minik_driver_qemu::ACCEL_ENV
        ))
    })?;
    let layout = Layout::new(home.profiles_dir(), home.vm_disk_cache_dir());
    Ok(QemuDriver::new(layout, options))
}

/// A qemu driver error with advice on installing what is missing.
fn qemu_failure(e: DriverError) -> anyhow::Error {
    let DriverError::EngineNotFound { endpoint, .. } = &e else {
        return e.into();
    };
    AdvisedDriverError {
        message: format!(
            "the qemu driver needs {endpoint}, which is not installed (or not on PATH)"
        ),
        error: e,
        advice: "Install qemu and OpenSSH's client: `apt-get install qemu-system-x86 qemu-utils openssh-client` \
             (Debian/Ubuntu; qemu-system-arm on Arm), `dnf install qemu-kvm qemu-img openssh-clients`, \
             `brew install qemu`; or point MINIK_QEMU_SYSTEM / MINIK_QEMU_IMG at the binaries."
            .into(),
    }
    .into()
}

/// Whether `e` says an engine is installed but does not answer.
fn is_unreachable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<DriverError>(),
            Some(DriverError::EngineUnreachable { .. })
        ) || c
            .downcast_ref::<AdvisedDriverError>()
            .is_some_and(|a| matches!(a.error, DriverError::EngineUnreachable { .. }))
            || c.downcast_ref::<ChoiceError>()
                .is_some_and(|f| f.kind == ChoiceKind::NoEngineAnswers)
    })
}

impl Driver for AnyDriver {
    type Runner = AnyRunner;

    fn name(&self) -> &'static str {
        dispatch!(self, d => d.name())
    }
    fn emulated(&self, profile: &str) -> bool {
        dispatch!(self, d => d.emulated(profile))
    }
    async fn check(&self) -> Result<EngineInfo, DriverError> {
        dispatch!(self, d => d.check().await)
    }
    async fn prepare(&self, cluster: &ClusterRequest) -> Result<(), DriverError> {
        dispatch!(self, d => d.prepare(cluster).await)
    }
    async fn create_node(
        &self,
        cluster: &ClusterRequest,
        node: &NodeSpec,
        observer: &dyn Observer,
    ) -> Result<(), DriverError> {
        dispatch!(self, d => d.create_node(cluster, node, observer).await)
    }
    async fn start_node(&self, node: &str) -> Result<(), DriverError> {
        dispatch!(self, d => d.start_node(node).await)
    }
    async fn stop_node(&self, node: &str, timeout: Duration) -> Result<(), DriverError> {
        dispatch!(self, d => d.stop_node(node, timeout).await)
    }
    async fn pause_node(&self, node: &str) -> Result<(), DriverError> {
        dispatch!(self, d => d.pause_node(node).await)
    }
    async fn unpause_node(&self, node: &str) -> Result<(), DriverError> {
        dispatch!(self, d => d.unpause_node(node).await)
    }
    async fn delete_node(&self, node: &str) -> Result<DeleteReport, DriverError> {
        dispatch!(self, d => d.delete_node(node).await)
    }
    async fn delete_profile(&self, profile: &str) -> Result<DeleteReport, DriverError> {
        dispatch!(self, d => d.delete_profile(profile).await)
    }
    async fn list_nodes(&self, profile: &str) -> Result<Vec<NodeInfo>, DriverError> {
        dispatch!(self, d => d.list_nodes(profile).await)
    }
    async fn list_profiles(&self) -> Result<Vec<String>, DriverError> {
        dispatch!(self, d => d.list_profiles().await)
    }
    fn runner(&self, node: &str) -> AnyRunner {
        match self {
            AnyDriver::Docker(d) => AnyRunner::Docker(d.runner(node)),
            AnyDriver::Podman(d) => AnyRunner::Docker(d.runner(node)),
            AnyDriver::Qemu(d) => AnyRunner::Qemu(d.runner(node)),
            AnyDriver::Fake(d) => AnyRunner::Fake(d.runner(node)),
        }
    }
}

impl Runner for AnyRunner {
    fn node(&self) -> &str {
        match self {
            AnyRunner::Docker(r) => r.node(),
            AnyRunner::Qemu(r) => r.node(),
            AnyRunner::Fake(r) => r.node(),
        }
    }
    async fn exec_streaming<'a>(
        &'a self,
        request: ExecRequest,
        stdout: &'a mut (dyn AsyncWrite + Send + Unpin),
        stderr: &'a mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<i64, DriverError> {
        {
            match self {
                AnyRunner::Docker(r) => r.exec_streaming(request, stdout, stderr).await,
                AnyRunner::Qemu(r) => r.exec_streaming(request, stdout, stderr).await,
                AnyRunner::Fake(r) => r.exec_streaming(request, stdout, stderr).await,
            }
        }
    }
    async fn copy_to(&self, path: &str, contents: &[u8], mode: u32) -> Result<(), DriverError> {
        match self {
            AnyRunner::Docker(r) => r.copy_to(path, contents, mode).await,
            AnyRunner::Qemu(r) => r.copy_to(path, contents, mode).await,
            AnyRunner::Fake(r) => r.copy_to(path, contents, mode).await,
        }
    }
    async fn read_file(&self, path: &str) -> Result<Vec<u8>, DriverError> {
        match self {
            AnyRunner::Docker(r) => r.read_file(path).await,
            AnyRunner::Qemu(r) => r.read_file(path).await,
            AnyRunner::Fake(r) => r.read_file(path).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_is_a_driver_and_keeps_its_files_in_the_profile() {
        assert_eq!(DRIVERS, ["docker", "podman", "qemu"]);
        let home = Home::at("/h");
        let layout = Layout::new(home.profiles_dir(), home.vm_disk_cache_dir());
        assert_eq!(layout.profile("p").dir(), home.qemu_profile_dir("p"));
        let d = QemuDriver::new(layout, QemuOptions::default());
        assert!(
            d.base_disk("img")
                .dir()
                .starts_with(home.vm_disk_cache_dir())
        );
    }
}
