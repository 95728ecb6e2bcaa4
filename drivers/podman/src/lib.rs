//! minik's podman driver: node containers on podman, through its Docker-compatible API.
//!
//! All of the node lifecycle, exec, file copy, network and image code is the docker driver's
//! ([`minik_driver_docker::DockerDriver`] over bollard), pointed at podman's socket with a
//! podman [`Flavor`]. This crate holds only what differs:
//!
//! - **The socket** ([`socket`]): `CONTAINER_HOST`, a podman `DOCKER_HOST`, else the rootful or
//!   rootless default; on a default socket minik starts `podman system service --time=0` when
//!   nothing answers (podman has no daemon of its own).
//! - **ulimits** ([`limits`]): `nofile` and `nproc` set explicitly, within the hard limits of the
//!   service process, because podman's defaults can exceed them and runc then cannot start the
//!   container.
//! - **Node options** ([`flavor`]): `container=podman`; no restart policy (as kind: podman
//!   restarts nothing after a reboot without `podman-restart.service`, and `minik start` brings
//!   nodes back); no Docker bridge options on the profile network; the `/var` volume mounted
//!   `suid,exec,dev` (podman mounts volumes `nosuid,nodev` by default, which breaks nested
//!   containers); in the capability fallback, `unmask=ALL` (podman's compat API ignores the
//!   empty `MaskedPaths`/`ReadonlyPaths` that docker uses to leave `/proc/sys` writable) and,
//!   on cgroup v1 hosts, the host's `/sys/fs/cgroup` read-write (the compat API also ignores
//!   `CgroupnsMode`: see [`customize_node_for`]).
//! - **Image names** ([`image`]): nodes are created from the fully qualified name of the local
//!   image (`minik/node:1` → `localhost/minik/node:1`).
//! - **Identity**: [`Driver::check`] refuses an endpoint that answers as a Docker Engine.
//!
//! What podman's systemd mode (`--systemd=always`) would add is already in every node's create
//! request (tmpfs `/run` and `/tmp`, stop signal `SIGRTMIN+3`, `container=podman`, writable
//! cgroups in both security profiles); the compat API has no field for it, and the node's
//! entrypoint is not `/sbin/init`, so podman never turns it on by itself. Nodes boot to
//! `systemctl is-system-running` = `running` without it (tests/podman.rs checks).
//!
//! Security is the docker driver's [`SecurityMode`], read from `MINIK_PODMAN_SECURITY`
//! (`privileged`, `capabilities`, `auto`). Rootful podman grants `--privileged` from its own
//! bounding set, so it works even on hosts where Docker's `--privileged` is refused.

#![warn(missing_docs)]

pub mod image;
pub mod limits;
pub mod socket;

use bollard::models::{ContainerCreateBody, HostConfigCgroupnsModeEnum};
use minik_driver_api::{
    ClusterRequest, DeleteReport, Driver, DriverError, EngineInfo, NodeInfo, NodeSpec, Observer,
};
pub use minik_driver_docker::SecurityMode;
use minik_driver_docker::{ContainerEngine, DockerDriver, DockerRunner, Flavor, connect_host_at};
use std::time::Duration;

pub use limits::{HardLimits, LimitsSource};
pub use socket::{Endpoint, EndpointSource, Service};

/// The environment variable that picks the node security mode (see [`SecurityMode`]).
pub const SECURITY_ENV: &str = "MINIK_PODMAN_SECURITY";

/// The podman driver: a [`DockerDriver`] on podman's Docker-compatible socket with the podman
/// [`Flavor`], plus image-name qualification and an engine identity check.
#[derive(Debug, Clone)]
pub struct PodmanDriver {
    inner: DockerDriver,
    endpoint: Endpoint,
    limits: (HardLimits, LimitsSource),
    service: Service,
}

impl PodmanDriver {
    /// Connects to podman at the address the environment names (see [`socket`]). On a default
    /// socket that nothing answers, starts `podman system service` first and waits for it (a
    /// second or so, blocking). Sends no API request: [`Driver::check`] tells whether podman
    /// answers.
    ///
    /// Errors: no podman binary and no socket is [`DriverError::EngineNotFound`]; a service
    /// that cannot be started is [`DriverError::EngineUnreachable`]; a `unix://` socket the user
    /// named that does not exist is [`DriverError::EngineNotFound`].
    pub fn connect() -> Result<PodmanDriver, DriverError> {
        PodmanDriver::connect_to(socket::endpoint())
    }

    /// Connects to podman at `endpoint` (see [`PodmanDriver::connect`]).
    pub fn connect_to(endpoint: Endpoint) -> Result<PodmanDriver, DriverError> {
        let service = match endpoint.socket_path() {
            Some(path) if endpoint.is_default() => socket::ensure_service(path)?,
            _ => Service::Answering,
        };
        if let Service::Started { pid, log } = &service {
            tracing::info!(
                "started podman's API service: `{}` (pid {pid}, log {})",
                endpoint.service_command(),
                log.display()
            );
        }
        let limits = limits::host_limits(endpoint.socket_path());
        tracing::debug!(endpoint = %endpoint.host, ?limits, ?service, "podman endpoint");
        let (major_version, minor_version) = PODMAN_API_VERSION;
        let version = bollard::ClientVersion {
            major_version,
            minor_version,
        };
        let client = connect_host_at(&endpoint.host, "podman", &version)?;
        let inner =
            DockerDriver::with_engine(client, endpoint.host.clone(), flavor(limits.0.ulimits()));
        Ok(PodmanDriver {
            inner,
            endpoint,
            limits,
            service,
        })
    }

    /// Connects only when something already listens on podman's socket: never starts the
    /// service (for `profile list`, which must not pay for a podman nobody uses).
    pub fn connect_if_listening() -> Option<PodmanDriver> {
        let endpoint = socket::endpoint();
        if let Some(path) = endpoint.socket_path()
            && !socket::socket_answers(path)
        {
            return None;
        }
        PodmanDriver::connect_to(endpoint).ok()
    }

    /// Uses `mode` for nodes this driver creates, whatever `MINIK_PODMAN_SECURITY` says.
    pub fn with_security_mode(mut self, mode: SecurityMode) -> PodmanDriver {
        self.inner = self.inner.with_security_mode(mode);
        self
    }

    /// Remembers what the `auto` security mode settled on (see
    /// [`DockerDriver::with_security_memory`]).
    pub fn with_security_memory(mut self, file: impl Into<std::path::PathBuf>) -> PodmanDriver {
        self.inner = self.inner.with_security_memory(file);
        self
    }

    /// The docker driver underneath: image builds, image export and anything else that goes
    /// through the Docker API the same way on both engines.
    pub fn docker(&self) -> &DockerDriver {
        &self.inner
    }

    /// Where podman is reached and why.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The hard limits node ulimits were capped at, and whose they are.
    pub fn host_limits(&self) -> (HardLimits, LimitsSource) {
        self.limits
    }

    /// Whether the API service was already answering or minik started it.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The fully qualified name of local image `image` (see [`image`]); `image` itself when it
    /// is qualified already or not present (creating the node then reports it missing).
    pub async fn qualified_image(&self, image: &str) -> Result<String, DriverError> {
        if image::has_domain(image) {
            return Ok(image.to_string());
        }
        let docker = self.inner.engine().ready().await?;
        Ok(match docker.inspect_image(image).await {
            Ok(found) => {
                image::pick_qualified(image, found.repo_tags.as_deref().unwrap_or_default())
                    .unwrap_or_else(|| image.to_string())
            }
            Err(_) => image.to_string(),
        })
    }

    /// `e` with advice appended to an unreachable engine's detail.
    fn explain(&self, e: DriverError) -> DriverError {
        match e {
            DriverError::EngineUnreachable {
                engine,
                endpoint,
                detail,
            } => DriverError::EngineUnreachable {
                detail: format!("{detail}. {}", self.endpoint.start_advice()),
                engine,
                endpoint,
            },
            e => e,
        }
    }
}

/// The Docker API version podman's compatible API implements (4.x and 5.x alike). Spoken
/// without negotiation: podman's `/version` takes over a second (it asks conmon and the OCI
/// runtime for theirs), which `profile list` and `status` would pay on every run.
pub const PODMAN_API_VERSION: (usize, usize) = (1, 41);

/// The podman [`Flavor`] with node ulimits `ulimits` (see [`HardLimits::ulimits`]).
pub fn flavor(ulimits: Vec<bollard::models::ResourcesUlimits>) -> Flavor {
    Flavor {
        name: "podman",
        engine_name: "Podman Engine",
        container_env: "podman",
        restart_policy: None,
        ulimits,
        bridge_options: false,
        security_env: SECURITY_ENV,
        customize_node: Some(customize_node),
        api_version: Some(PODMAN_API_VERSION),
        volume_as_mount: false,
        drain_stdin: true,
    }
}

/// podman-only node options, applied after the security profile (see the crate docs).
pub fn customize_node(body: &mut ContainerCreateBody) {
    customize_node_for(body, host_has_cgroup_v1());
}

/// Whether this machine mounts cgroup v1 hierarchies (no unified `cgroup.controllers` at the
/// top of `/sys/fs/cgroup`). Read locally: right for the local socket minik normally uses.
pub fn host_has_cgroup_v1() -> bool {
    !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// [`customize_node`] for a host with (`cgroup_v1`) or without cgroup v1.
///
/// - `/var`: mounted `suid,exec,dev` (podman's volume default is `nosuid,nodev`).
/// - Without `--privileged` (the capability fallback):
///   - `unmask=ALL`, so `/proc/sys` is writable (the compat API ignores docker's empty
///     `MaskedPaths`/`ReadonlyPaths`);
///   - on cgroup v1, the host's `/sys/fs/cgroup` mounted read-write in the host cgroup namespace:
///     podman's compat API ignores `CgroupnsMode` and uses its v1 default, the host namespace,
///     where the hierarchies podman mounts are read-only and cannot be remounted, so nested
///     containers could not create cgroups. (On cgroup v2 podman's default is a private
///     namespace, which the node's entrypoint makes writable itself.)
pub fn customize_node_for(body: &mut ContainerCreateBody, cgroup_v1: bool) {
    let Some(host) = body.host_config.as_mut() else {
        return;
    };
    for bind in host.binds.iter_mut().flatten() {
        let parts: Vec<&str> = bind.split(':').collect();
        if let [volume, "/var"] = parts[..] {
            *bind = format!("{volume}:/var:suid,exec,dev");
        }
    }
    if host.privileged == Some(true) {
        return;
    }
    host.security_opt
        .get_or_insert_with(Vec::new)
        .push("unmask=ALL".to_string());
    if cgroup_v1 {
        host.cgroupns_mode = Some(HostConfigCgroupnsModeEnum::HOST);
        let binds = host.binds.get_or_insert_with(Vec::new);
        if !binds.iter().any(|b| b.starts_with("/sys/fs/cgroup:")) {
            binds.push(CGROUP_BIND.to_string());
        }
    }
}

/// The host's cgroup hierarchies, writable (capability fallback on cgroup v1 hosts).
const CGROUP_BIND: &str = "/sys/fs/cgroup:/sys/fs/cgroup:rw";

/// Whether the engine behind `engine` is podman (its version lists a "Podman Engine"
/// component). A Docker Engine is not.
pub async fn is_podman(engine: &ContainerEngine) -> Result<bool, DriverError> {
    let docker = engine.ready().await?;
    let version = docker
        .version()
        .await
        .map_err(|e| engine.error("read the engine version", e))?;
    Ok(version
        .components
        .unwrap_or_default()
        .iter()
        .any(|c| c.name.to_ascii_lowercase().contains("podman")))
}

/// Advice for a podman driver error, for the CLI's `Advice:` line: how to install podman or
/// start its API at the endpoint this environment selects. `None` for other errors.
pub fn advice(err: &DriverError) -> Option<String> {
    let endpoint = socket::endpoint();
    match err {
        DriverError::EngineNotFound { .. } if socket::podman_binary().is_none() => Some(
            "Install podman (e.g. `sudo apt-get install podman`, `sudo dnf install podman`), or choose another driver with --driver."
                .to_string(),
        ),
        DriverError::EngineNotFound { .. } | DriverError::EngineUnreachable { .. } => {
            Some(endpoint.start_advice())
        }
        _ => None,
    }
}

impl Driver for PodmanDriver {
    type Runner = DockerRunner;

    fn name(&self) -> &'static str {
        "podman"
    }

    async fn check(&self) -> Result<EngineInfo, DriverError> {
        // podman's /version is slow (it asks conmon and runc for theirs): both requests at once.
        let (info, podman) = tokio::join!(self.inner.check(), is_podman(self.inner.engine()));
        let info = info.map_err(|e| self.explain(e))?;
        if !podman? {
            let server = info.version.trim_start_matches("Podman Engine ");
            return Err(DriverError::EngineUnreachable {
                engine: "podman".into(),
                endpoint: self.endpoint.host.clone(),
                detail: format!(
                    "the engine there is not podman (server {server}, no Podman Engine component; a Docker Engine?){}",
                    self.endpoint
                        .variable()
                        .map(|v| format!(": {v} points at it; use --driver docker for that engine"))
                        .unwrap_or_default()
                ),
            });
        }
        Ok(info)
    }

    async fn prepare(&self, cluster: &ClusterRequest) -> Result<(), DriverError> {
        self.inner.prepare(cluster).await
    }

    async fn create_node(
        &self,
        cluster: &ClusterRequest,
        node: &NodeSpec,
        observer: &dyn Observer,
    ) -> Result<(), DriverError> {
        let image = self.qualified_image(&cluster.image).await?;
        if image == cluster.image {
            return self.inner.create_node(cluster, node, observer).await;
        }
        let cluster = ClusterRequest {
            image,
            ..cluster.clone()
        };
        self.inner.create_node(&cluster, node, observer).await
    }

    async fn start_node(&self, node: &str) -> Result<(), DriverError> {
        self.inner.start_node(node).await
    }

    async fn stop_node(&self, node: &str, timeout: Duration) -> Result<(), DriverError> {
        self.inner.stop_node(node, timeout).await
    }

    async fn pause_node(&self, node: &str) -> Result<(), DriverError> {
        self.inner.pause_node(node).await
    }

    async fn unpause_node(&self, node: &str) -> Result<(), DriverError> {
        self.inner.unpause_node(node).await
    }

    async fn delete_node(&self, node: &str) -> Result<DeleteReport, DriverError> {
        self.inner.delete_node(node).await
    }

    async fn delete_profile(&self, profile: &str) -> Result<DeleteReport, DriverError> {
        self.inner.delete_profile(profile).await
    }

    async fn list_nodes(&self, profile: &str) -> Result<Vec<NodeInfo>, DriverError> {
        self.inner.list_nodes(profile).await
    }

    async fn list_profiles(&self) -> Result<Vec<String>, DriverError> {
        self.inner.list_profiles().await
    }

    fn runner(&self, node: &str) -> DockerRunner {
        self.inner.runner(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::HostConfig;

    fn body(privileged: bool) -> ContainerCreateBody {
        ContainerCreateBody {
            host_config: Some(HostConfig {
                binds: Some(vec![
                    "p-var:/var".into(),
                    "/lib/modules:/lib/modules:ro".into(),
                    "/sys/fs/cgroup:/sys/fs/cgroup:rw".into(),
                ]),
                privileged: Some(privileged),
                security_opt: Some(vec!["seccomp=unconfined".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn var_volume_is_suid_exec_dev() {
        let mut b = body(true);
        customize_node_for(&mut b, true);
        let host = b.host_config.unwrap();
        assert_eq!(
            host.binds.unwrap(),
            [
                "p-var:/var:suid,exec,dev",
                "/lib/modules:/lib/modules:ro",
                "/sys/fs/cgroup:/sys/fs/cgroup:rw"
            ]
        );
        assert_eq!(
            host.security_opt.unwrap(),
            ["seccomp=unconfined"],
            "privileged: nothing to unmask"
        );
    }

    #[test]
    fn capabilities_unmask_paths_and_share_v1_cgroups() {
        let mut b = body(false);
        b.host_config
            .as_mut()
            .unwrap()
            .binds
            .as_mut()
            .unwrap()
            .pop();
        b.host_config.as_mut().unwrap().cgroupns_mode = Some(HostConfigCgroupnsModeEnum::PRIVATE);
        customize_node_for(&mut b, true);
        let host = b.host_config.unwrap();
        assert_eq!(
            host.security_opt.unwrap(),
            ["seccomp=unconfined", "unmask=ALL"]
        );
        assert_eq!(host.cgroupns_mode, Some(HostConfigCgroupnsModeEnum::HOST));
        assert_eq!(
            host.binds.unwrap().last().map(String::as_str),
            Some(CGROUP_BIND)
        );
        // cgroup v2: podman's private namespace, nothing bound.
        let mut b = body(false);
        b.host_config
            .as_mut()
            .unwrap()
            .binds
            .as_mut()
            .unwrap()
            .pop();
        customize_node_for(&mut b, false);
        let host = b.host_config.unwrap();
        assert_eq!(host.binds.unwrap().len(), 2);
        assert_eq!(host.cgroupns_mode, None);
        // A bind already there is not doubled.
        let mut b = body(false);
        customize_node_for(&mut b, true);
        assert_eq!(b.host_config.unwrap().binds.unwrap().len(), 3);
    }

    #[test]
    fn flavor_is_podman() {
        let f = flavor(
            HardLimits {
                nofile: Some(20000),
                nproc: None,
            }
            .ulimits(),
        );
        assert_eq!(
            (f.name, f.container_env, f.security_env),
            ("podman", "podman", "MINIK_PODMAN_SECURITY")
        );
        assert!(f.restart_policy.is_none());
        assert!(!f.bridge_options);
        assert_eq!(f.ulimits[0].hard, Some(20000));
    }

    #[test]
    fn missing_socket_is_not_found() {
        let endpoint = Endpoint {
            host: "unix:///nonexistent/podman.sock".into(),
            source: EndpointSource::ContainerHost,
        };
        let err = PodmanDriver::connect_to(endpoint).unwrap_err();
        assert!(matches!(err, DriverError::EngineNotFound { .. }), "{err}");
        assert!(advice(&err).is_some());
    }
}
