//! Driver selection and the closed enums that dispatch to each driver (as youki's
//! `AnyCgroupManager`): no `dyn`, no async-trait, and futures stay `Send`.

use crate::errors::{DRV_UNKNOWN, PROVIDER_NOT_FOUND, fail_with};
use crate::state::Home;
use minik_driver_api::fake::{FakeDriver, FakeEngine, FakeRunner};
use minik_driver_api::{
    ClusterRequest, DeleteReport, Driver, DriverError, EngineInfo, ExecRequest, NodeInfo, NodeSpec,
    Observer, Runner,
};
use minik_driver_docker::{DockerDriver, DockerRunner};
use std::time::Duration;
use tokio::io::AsyncWrite;

/// Drivers users can choose, in auto-detection order.
pub const DRIVERS: &[&str] = &["docker"];
/// Drivers that are planned but not built yet; named so the error can say so.
pub const PLANNED_DRIVERS: &[&str] = &["podman", "qemu"];

/// Any driver.
pub enum AnyDriver {
    Docker(DockerDriver),
    /// In-file fake engine for CLI tests (hidden `--driver fake`).
    Fake(FakeDriver),
}

/// Any driver's runner.
pub enum AnyRunner {
    Docker(DockerRunner),
    Fake(FakeRunner),
}

macro_rules! dispatch {
    ($self:ident, $d:ident => $e:expr) => {
        match $self {
            AnyDriver::Docker($d) => $e,
            AnyDriver::Fake($d) => $e,
        }
    };
}

impl AnyDriver {
    /// Connects to the named driver's engine (without checking it answers; see `check`).
    pub fn connect(name: &str, home: &Home) -> anyhow::Result<AnyDriver> {
        match name {
            "docker" => Ok(AnyDriver::Docker(DockerDriver::connect()?)),
            "fake" => Ok(AnyDriver::Fake(FakeDriver::new(FakeEngine::new(
                home.fake_engine_file(),
            )))),
            other if PLANNED_DRIVERS.contains(&other) => Err(fail_with(
                &DRV_UNKNOWN,
                format!("driver {other:?} is not available in this version of minik"),
                format!("Use one of: {}.", DRIVERS.join(", ")),
            )),
            other => Err(fail_with(
                &DRV_UNKNOWN,
                format!("unknown driver {other:?}"),
                format!("Use one of: {}.", DRIVERS.join(", ")),
            )),
        }
    }

    /// Picks the driver for a new profile: the requested one, else the first engine that
    /// answers (docker, then podman, then qemu).
    pub async fn choose(
        requested: Option<&str>,
        home: &Home,
    ) -> anyhow::Result<(AnyDriver, EngineInfo)> {
        if let Some(name) = requested {
            let driver = AnyDriver::connect(name, home)?;
            let info = driver.check().await?;
            return Ok((driver, info));
        }
        let mut problems = Vec::new();
        for name in DRIVERS {
            match AnyDriver::connect(name, home) {
                Ok(driver) => match driver.check().await {
                    Ok(info) => return Ok((driver, info)),
                    Err(e) => problems.push(format!("{name}: {e}")),
                },
                Err(e) => problems.push(format!("{name}: {e:#}")),
            }
        }
        Err(fail_with(
            &PROVIDER_NOT_FOUND,
            format!("no usable engine found ({})", problems.join("; ")),
            "Install and start Docker Engine (or podman, or qemu), or pick one with --driver.",
        ))
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

    /// The docker driver, when this is one (image builds need the engine's build API).
    pub fn as_docker(&self) -> Option<&DockerDriver> {
        match self {
            AnyDriver::Docker(d) => Some(d),
            AnyDriver::Fake(_) => None,
        }
    }
}

impl Driver for AnyDriver {
    type Runner = AnyRunner;

    fn name(&self) -> &'static str {
        dispatch!(self, d => d.name())
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
            AnyDriver::Fake(d) => AnyRunner::Fake(d.runner(node)),
        }
    }
}

impl Runner for AnyRunner {
    fn node(&self) -> &str {
        match self {
            AnyRunner::Docker(r) => r.node(),
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
                AnyRunner::Fake(r) => r.exec_streaming(request, stdout, stderr).await,
            }
        }
    }
    async fn copy_to(&self, path: &str, contents: &[u8], mode: u32) -> Result<(), DriverError> {
        match self {
            AnyRunner::Docker(r) => r.copy_to(path, contents, mode).await,
            AnyRunner::Fake(r) => r.copy_to(path, contents, mode).await,
        }
    }
    async fn read_file(&self, path: &str) -> Result<Vec<u8>, DriverError> {
        match self {
            AnyRunner::Docker(r) => r.read_file(path).await,
            AnyRunner::Fake(r) => r.read_file(path).await,
        }
    }
}
