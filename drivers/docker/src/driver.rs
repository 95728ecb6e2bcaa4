//! [`DockerDriver`]: node containers on a Docker-API engine.

use crate::engine::{ContainerEngine, Flavor, connect_host, docker_host, message_of, status_of};
use crate::network::{Subnet, ensure_network, network_name};
use crate::runner::DockerRunner;
use crate::security::{Profile, SecurityMode, is_privilege_refusal};
use crate::state::*;
use crate::{labels_match, profile_filter};
use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum,
    ContainerSummaryStateEnum, EndpointIpamConfig, EndpointSettings, HostConfig, NetworkingConfig,
    PortBinding, RestartPolicy, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    ListVolumesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use futures_util::StreamExt;
use minik_driver_api::{
    CONTROL_PLANE_PORTS, ClusterRequest, DeleteReport, Driver, DriverError, EngineInfo, HostState,
    NodeInfo, NodeSpec, Observer, Role, labels,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Where a node's data lives: a named volume per node, so it survives stop/start and stays
/// off the outer overlayfs (containerd's snapshotter cannot nest on overlayfs).
const VAR_MOUNT: &str = "/var";
/// Node tmpfs mounts. systemd expects `/run` and `/tmp` to be tmpfs; `exec` because Docker's
/// default for `--tmpfs` is `noexec`, which a real host never has there.
const TMPFS: [(&str, &str); 2] = [
    ("/run", "rw,nosuid,nodev,exec,mode=755"),
    ("/tmp", "rw,nosuid,nodev,exec,mode=1777"),
];
/// systemd's "halt" signal: a graceful shutdown of the node's init.
const STOP_SIGNAL: &str = "SIGRTMIN+3";
/// How many times a node start is retried when its freshly picked API host port was taken by
/// someone else in between.
const PORT_ATTEMPTS: usize = 3;
/// Passes of [`Driver::delete_profile`] when a volume or network is still in use.
const DELETE_PASSES: usize = 4;

/// The docker driver: each node is a container on a per-profile bridge network.
///
/// Also drives other engines that speak the Docker API (podman's compatible socket): build it
/// with [`DockerDriver::with_engine`] and that engine's [`Flavor`].
///
/// Every container, volume and network carries the [`labels`] (created-by, profile, and for
/// nodes and volumes node, role and index), which is how [`Driver::delete_profile`],
/// [`Driver::list_nodes`] and [`Driver::list_profiles`] find them; nothing unlabelled is ever
/// touched.
///
/// # Node containers
/// - name = hostname = the node's name; TTY; env `container=<flavor>` and the cluster's env;
///   stop signal `SIGRTMIN+3` (systemd's halt); tmpfs `/run` and `/tmp`; a labelled volume
///   `<node>-var` at `/var`; `/lib/modules` read-only when the host has it.
/// - A static IP `x.y.z.(2+index)` on network `<profile>`, so addresses survive stop/start.
/// - Control planes publish 6443/tcp, 80/tcp and 443/tcp ([`CONTROL_PLANE_PORTS`]: the API
///   server and Ingress) on `127.0.0.1:<port>`, each port picked by binding
///   `127.0.0.1:0` first (as kind) so that the binding is recorded and stays the same across
///   stop/start (an empty host port lets the engine pick again on every start).
/// - Restart policy `unless-stopped` (docker): a node that was running when the engine or the
///   host restarted comes back by itself, while a node the user stopped (`minik stop`, which is
///   an engine stop) stays stopped across reboots. kind's `on-failure:1` only covers exits with
///   an error code and gives up after one restart; `no` would leave every cluster down after a
///   reboot until `minik start`. The cost: a node whose init keeps crashing restarts with the
///   engine's back-off, visible as [`HostState::Error`] ("restarting") in `list_nodes`.
/// - Security: see [`SecurityMode`]; `MINIK_DOCKER_SECURITY=privileged|capabilities|auto`
///   (default `auto`: try `--privileged`, fall back to an explicit capability set once the
///   engine refuses it, and remember that for every later node of this driver value).
#[derive(Debug, Clone)]
pub struct DockerDriver {
    engine: Arc<ContainerEngine>,
    /// The security profile `auto` settled on; held locked while the first node decides it, so
    /// nodes created in parallel wait instead of each failing the privileged start.
    decided: Arc<Mutex<Option<Profile>>>,
    /// Serializes network creation within this process (two nodes of one profile created in
    /// parallel must not create two networks).
    network_lock: Arc<Mutex<()>>,
    /// Set by [`DockerDriver::with_security_mode`]; else the flavor's environment variable rules.
    security_override: Option<SecurityMode>,
    /// Where `auto`'s answer is remembered per engine ID ([`DockerDriver::with_security_memory`]).
    security_memory: Option<std::path::PathBuf>,
}

/// Why creating and starting one container failed.
enum StartFailure {
    /// The engine refused `--privileged` (runc could not apply the capabilities).
    PrivilegeRefused(String),
    /// A picked host port was taken before the container started.
    PortTaken,
    Other(DriverError),
}

impl From<DriverError> for StartFailure {
    fn from(e: DriverError) -> Self {
        StartFailure::Other(e)
    }
}

impl StartFailure {
    /// The driver error of starting `node`; `port_taken` says what a taken host port means.
    fn into_driver_error(self, node: &str, port_taken: &str) -> DriverError {
        match self {
            StartFailure::Other(e) => e,
            StartFailure::PrivilegeRefused(m) => {
                DriverError::engine(format!("start node {node}"), m)
            }
            StartFailure::PortTaken => {
                DriverError::engine(format!("start node {node}"), port_taken)
            }
        }
    }
}

impl DockerDriver {
    /// Connects to the engine `DOCKER_HOST` names (`unix://` or `tcp://`), else
    /// `/var/run/docker.sock`. Sends no request ([`Driver::check`] tells whether the engine
    /// answers), but a `unix://` socket file that does not exist is already
    /// [`DriverError::EngineNotFound`] here.
    ///
    /// A missing socket is [`DriverError::EngineNotFound`] only when nothing says an engine
    /// should be there; it is [`DriverError::EngineUnreachable`] (installed, not running) when
    /// `DOCKER_HOST` names it explicitly or the `dockerd`/`docker` programs are installed.
    pub fn connect() -> Result<DockerDriver, DriverError> {
        let explicit = std::env::var("DOCKER_HOST").is_ok_and(|v| !v.trim().is_empty());
        DockerDriver::connect_to(&docker_host()).map_err(|e| match e {
            DriverError::EngineNotFound { engine, endpoint }
                if explicit || on_path("dockerd") || on_path("docker") =>
            {
                DriverError::EngineUnreachable {
                    engine,
                    detail: format!(
                        "nothing listens at {endpoint}: the socket does not exist{}",
                        if explicit {
                            " (DOCKER_HOST names it)"
                        } else {
                            ""
                        }
                    ),
                    endpoint,
                }
            }
            e => e,
        })
    }

    /// Connects to the Docker Engine at `host` (`unix:///path` or `tcp://host:port`).
    pub fn connect_to(host: &str) -> Result<DockerDriver, DriverError> {
        let flavor = Flavor::docker();
        let docker = connect_host(host, flavor.name)?;
        Ok(DockerDriver::with_engine(docker, host, flavor))
    }

    /// A driver over an already connected client, for any engine that speaks the Docker API.
    /// `endpoint` is the client's address, for messages and to check a unix socket exists.
    pub fn with_engine(
        docker: Docker,
        endpoint: impl Into<String>,
        flavor: Flavor,
    ) -> DockerDriver {
        DockerDriver::from_engine(Arc::new(ContainerEngine::new(docker, endpoint, flavor)))
    }

    /// A driver over a shared engine.
    pub fn from_engine(engine: Arc<ContainerEngine>) -> DockerDriver {
        DockerDriver {
            engine,
            decided: Arc::new(Mutex::new(None)),
            network_lock: Arc::new(Mutex::new(())),
            security_override: None,
            security_memory: None,
        }
    }

    /// Uses `mode` for nodes this driver creates, whatever `MINIK_DOCKER_SECURITY` says.
    pub fn with_security_mode(mut self, mode: SecurityMode) -> DockerDriver {
        self.security_override = Some(mode);
        self
    }

    /// Remembers in `file` what `auto` settled on, per engine ID, so a host whose engine refuses
    /// `--privileged` pays the refused attempt (about 1.3 s) once, not on every start. A file
    /// that cannot be read or written only costs that attempt again.
    pub fn with_security_memory(mut self, file: impl Into<std::path::PathBuf>) -> DockerDriver {
        self.security_memory = Some(file.into());
        self
    }

    /// The engine's ID (Docker's daemon ID; the endpoint where an engine reports none), the key
    /// of the security memory.
    async fn engine_key(&self) -> Option<String> {
        let docker = self.engine.ready().await.ok()?;
        let id = docker
            .info()
            .await
            .ok()
            .and_then(|i| i.id)
            .unwrap_or_default();
        Some(if id.is_empty() {
            format!("{} {}", self.engine.flavor().name, self.engine.endpoint())
        } else {
            format!("{} {id}", self.engine.flavor().name)
        })
    }

    async fn remembered_profile(&self) -> Option<Profile> {
        let file = self.security_memory.as_ref()?;
        let key = self.engine_key().await?;
        let text = std::fs::read_to_string(file).ok()?;
        let map: BTreeMap<String, String> = serde_json::from_str(&text).ok()?;
        match map.get(&key)?.as_str() {
            "privileged" => Some(Profile::Privileged),
            "capabilities" => Some(Profile::Capabilities),
            _ => None,
        }
    }

    async fn remember_profile(&self, profile: Profile) {
        let (Some(file), Some(key)) = (self.security_memory.as_ref(), self.engine_key().await)
        else {
            return;
        };
        let mut map: BTreeMap<String, String> = std::fs::read_to_string(file)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let value = match profile {
            Profile::Privileged => "privileged",
            Profile::Capabilities => "capabilities",
        };
        if map.get(&key).map(String::as_str) == Some(value) {
            return;
        }
        map.insert(key, value.to_string());
        let write = || -> std::io::Result<()> {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = file.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, serde_json::to_vec_pretty(&map).unwrap_or_default())?;
            std::fs::rename(&tmp, file)
        };
        if let Err(e) = write() {
            tracing::debug!(file = %file.display(), error = %e, "could not remember the security profile");
        }
    }

    /// Recreates a node container that was created `--privileged` on an engine that refuses it
    /// (a `start` killed between the create and the fallback leaves one): same configuration,
    /// name, address, ports and `/var` volume, with the capability set instead.
    async fn recreate_with_capabilities(
        &self,
        container: &ContainerInspectResponse,
        node: &str,
    ) -> Result<(), DriverError> {
        let broken = |what: &str| {
            DriverError::engine(
                format!("recreate node {node}"),
                format!("its {what} is unreadable"),
            )
        };
        let config = container
            .config
            .clone()
            .ok_or_else(|| broken("configuration"))?;
        let mut body: ContainerCreateBody = serde_json::to_value(config)
            .and_then(serde_json::from_value)
            .map_err(|_| broken("configuration"))?;
        let mut host = container
            .host_config
            .clone()
            .ok_or_else(|| broken("host configuration"))?;
        host.privileged = Some(false);
        Profile::Capabilities.apply(&mut host);
        body.host_config = Some(host);
        let endpoints = container
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|(net, e)| {
                let settings = EndpointSettings {
                    ipam_config: e.ipam_config,
                    aliases: e.aliases,
                    ..Default::default()
                };
                (net, settings)
            })
            .collect();
        body.networking_config = Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        });
        let docker = self.engine.ready().await?.clone();
        let engine = self.engine.clone();
        let name = node.to_string();
        self.engine
            .shielded(async move {
                remove_container(&docker, &name).await;
                create_and_start_once(&engine, &docker, &name, body, Profile::Capabilities).await
            })
            .await
            .map_err(|f| {
                f.into_driver_error(node, "its recorded host port is taken by another program")
            })?;
        *self.decided.lock().await = Some(Profile::Capabilities);
        self.remember_profile(Profile::Capabilities).await;
        Ok(())
    }

    /// Every minik node on this engine with its state, per profile label: one list call, for
    /// `profile list` (which would otherwise list and inspect per profile).
    pub async fn node_states(
        &self,
    ) -> Result<BTreeMap<String, Vec<(String, HostState)>>, DriverError> {
        let docker = self.engine.ready().await?;
        let containers = list_containers_tolerant(docker, &profile_filter(None))
            .await
            .map_err(|e| self.engine.error("list nodes", e))?;
        let mut by_profile: BTreeMap<String, Vec<(String, HostState)>> = BTreeMap::new();
        for c in containers {
            let Some(labels) = c.labels.as_ref() else {
                continue;
            };
            let Some(profile) = labels.get(labels::PROFILE) else {
                continue;
            };
            if !labels_match(Some(labels), profile) {
                continue;
            }
            let Some(node) = labels.get(labels::NODE).cloned().or_else(|| {
                c.names
                    .as_ref()?
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
            }) else {
                continue;
            };
            let state = match c.state {
                Some(ContainerSummaryStateEnum::RUNNING) => HostState::Running,
                Some(ContainerSummaryStateEnum::PAUSED) => HostState::Paused,
                Some(ContainerSummaryStateEnum::CREATED | ContainerSummaryStateEnum::EXITED) => {
                    HostState::Stopped
                }
                _ => HostState::Error,
            };
            by_profile
                .entry(profile.clone())
                .or_default()
                .push((node, state));
        }
        Ok(by_profile)
    }

    /// Starts a stopped node container after [`Self::repair_network`].
    async fn start_with_network(
        &self,
        container: &ContainerInspectResponse,
        node: &str,
    ) -> Result<(), bollard::errors::Error> {
        if let Err(e) = self.repair_network(container, node).await {
            return Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 500,
                message: e.to_string(),
            });
        }
        self.engine.docker().start_container(node, None).await
    }

    /// Before starting a stopped node: when its profile network is gone (`docker network rm`
    /// while the profile was stopped) or was recreated since, recreate it with the subnet the
    /// node's recorded address is in and reconnect the node with that address and its alias.
    async fn repair_network(
        &self,
        container: &ContainerInspectResponse,
        node: &str,
    ) -> Result<(), DriverError> {
        let Some(profile) = container_labels(container)
            .and_then(|l| l.get(labels::PROFILE))
            .cloned()
        else {
            return Ok(());
        };
        let net = network_name(&profile).to_string();
        let endpoint = container
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .and_then(|n| n.get(&net))
            .cloned();
        let docker = self.engine.ready().await?;
        let current = match docker.inspect_network(&net, None).await {
            Ok(n) => n.id,
            Err(e) if status_of(&e) == Some(404) => None,
            Err(e) => return Err(self.engine.error(format!("inspect network {net}"), e)),
        };
        let recorded_id = endpoint.as_ref().and_then(|e| e.network_id.clone());
        if current.is_some() && (recorded_id.is_none() || current == recorded_id) {
            return Ok(());
        }
        let ip: Option<Ipv4Addr> = endpoint
            .as_ref()
            .and_then(|e| e.ipam_config.as_ref())
            .and_then(|c| c.ipv4_address.as_deref())
            .and_then(|a| a.parse().ok());
        let Some(ip) = ip else {
            return Ok(());
        };
        let [a, b, c, _] = ip.octets();
        let subnet = Subnet::parse(&format!("{a}.{b}.{c}.0/24"));
        tracing::debug!(node, network = %net, ?subnet, "recreating the profile network");
        {
            let _guard = self.network_lock.lock().await;
            crate::network::ensure_network_in(&self.engine, &profile, subnet).await?;
        }
        let disconnect = bollard::models::NetworkDisconnectRequest {
            container: node.to_string(),
            force: Some(true),
        };
        // The old endpoint points at the removed network: drop it (an error only means there
        // was none to drop).
        let _ = docker.disconnect_network(&net, disconnect).await;
        let connect = bollard::models::NetworkConnectRequest {
            container: node.to_string(),
            endpoint_config: Some(EndpointSettings {
                ipam_config: Some(EndpointIpamConfig {
                    ipv4_address: Some(ip.to_string()),
                    ..Default::default()
                }),
                aliases: endpoint.and_then(|e| e.aliases),
                ..Default::default()
            }),
        };
        docker.connect_network(&net, connect).await.map_err(|e| {
            self.engine
                .error(format!("connect node {node} to network {net}"), e)
        })
    }

    /// Whether the security mode lets a refused privileged node fall back to capabilities.
    fn may_fall_back(&self) -> Result<bool, DriverError> {
        let mode = match self.security_override {
            Some(mode) => mode,
            None => self.engine.flavor().security_mode()?,
        };
        Ok(mode != SecurityMode::Privileged)
    }

    /// The engine this driver talks to.
    pub fn engine(&self) -> &Arc<ContainerEngine> {
        &self.engine
    }

    /// The name of node `node`'s data volume.
    pub fn volume_name(node: &str) -> String {
        format!("{node}-var")
    }

    async fn require_image(&self, image: &str) -> Result<(), DriverError> {
        if self.engine.image_exists(image).await? {
            Ok(())
        } else {
            Err(DriverError::ImageNotFound {
                engine: self.engine.flavor().name.to_string(),
                image: image.to_string(),
            })
        }
    }

    async fn ensure_volume(&self, profile: &str, node: &NodeSpec) -> Result<String, DriverError> {
        let docker = self.engine.ready().await?;
        let name = DockerDriver::volume_name(&node.name);
        match docker.inspect_volume(&name).await {
            Ok(v) if labels_match(Some(&v.labels), profile) => return Ok(name),
            Ok(_) => {
                return Err(DriverError::NameConflict {
                    kind: "volume".into(),
                    name,
                });
            }
            Err(e) if status_of(&e) == Some(404) => {}
            Err(e) => return Err(self.engine.error(format!("inspect volume {name}"), e)),
        }
        let request = VolumeCreateRequest {
            name: Some(name.clone()),
            labels: Some(node_labels(profile, node)),
            ..Default::default()
        };
        let client = docker.clone();
        self.engine
            .shielded(async move { client.create_volume(request).await })
            .await
            .map_err(|e| self.engine.error(format!("create volume {name}"), e))?;
        Ok(name)
    }

    /// The create request of a node, without security options (see [`Profile::apply`]).
    fn node_config(
        &self,
        cluster: &ClusterRequest,
        node: &NodeSpec,
        ip: Ipv4Addr,
        volume: &str,
        published: &BTreeMap<u16, u16>,
    ) -> ContainerCreateBody {
        let flavor = self.engine.flavor();
        let net = network_name(&cluster.profile).to_string();
        let mut env = vec![format!("container={}", flavor.container_env)];
        env.extend(cluster.env.iter().map(|(k, v)| format!("{k}={v}")));
        // Docker gets the volume as a mount carrying the node's labels: should the volume be
        // gone when the engine creates the container (a cleanup that ran while a killed
        // start's create was still in the engine), the engine makes it again *labelled*, so
        // `delete` finds it. podman's flavor needs it as a bind with mount options.
        let (mut binds, mounts) = if flavor.volume_as_mount {
            let mount = bollard::models::Mount {
                target: Some(VAR_MOUNT.to_string()),
                source: Some(volume.to_string()),
                typ: Some(bollard::models::MountType::VOLUME),
                volume_options: Some(bollard::models::MountVolumeOptions {
                    labels: Some(node_labels(&cluster.profile, node)),
                    ..Default::default()
                }),
                ..Default::default()
            };
            (Vec::new(), Some(vec![mount]))
        } else {
            (vec![format!("{volume}:{VAR_MOUNT}")], None)
        };
        // Only when this machine has it: a missing bind source is an error on some engines.
        if Path::new("/lib/modules").is_dir() {
            binds.push("/lib/modules:/lib/modules:ro".into());
        }
        let memory_bytes = cluster
            .memory_mib
            .map(|m| i64::try_from(m.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX));
        let port_bindings = (!published.is_empty()).then(|| {
            published
                .iter()
                .map(|(node_port, host_port)| {
                    (
                        format!("{node_port}/tcp"),
                        Some(vec![PortBinding {
                            host_ip: Some("127.0.0.1".into()),
                            host_port: Some(host_port.to_string()),
                        }]),
                    )
                })
                .collect::<HashMap<_, _>>()
        });
        let host_config = HostConfig {
            binds: Some(binds),
            mounts,
            tmpfs: Some(
                TMPFS
                    .iter()
                    .map(|(p, o)| (p.to_string(), o.to_string()))
                    .collect(),
            ),
            network_mode: Some(net.clone()),
            port_bindings,
            restart_policy: flavor.restart_policy.map(|name| RestartPolicy {
                name: Some(name),
                maximum_retry_count: None,
            }),
            nano_cpus: cluster.cpus.map(|c| (c * 1e9).round() as i64),
            memory: memory_bytes,
            // Equal to memory: no swap on top, as kubelet expects.
            memory_swap: memory_bytes,
            ulimits: (!flavor.ulimits.is_empty()).then(|| flavor.ulimits.clone()),
            init: Some(false),
            ..Default::default()
        };
        let endpoint = EndpointSettings {
            ipam_config: Some(EndpointIpamConfig {
                ipv4_address: Some(ip.to_string()),
                ..Default::default()
            }),
            aliases: Some(vec![node.name.clone()]),
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(cluster.image.clone()),
            hostname: Some(node.name.clone()),
            tty: Some(true),
            env: Some(env),
            labels: Some(node_labels(&cluster.profile, node)),
            stop_signal: Some(STOP_SIGNAL.into()),
            exposed_ports: (!published.is_empty())
                .then(|| published.keys().map(|p| format!("{p}/tcp")).collect()),
            host_config: Some(host_config),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(net, endpoint)])),
            }),
            ..Default::default()
        }
    }

    /// Creates and starts one node container with `profile`. On any failure the container of
    /// this attempt is removed again (its volume stays, labelled, for `delete_profile`).
    async fn create_and_start(
        &self,
        cluster: &ClusterRequest,
        node: &NodeSpec,
        ip: Ipv4Addr,
        volume: &str,
        profile: Profile,
    ) -> Result<(), StartFailure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let published: BTreeMap<u16, u16> = match node.role {
                Role::ControlPlane => CONTROL_PLANE_PORTS
                    .into_iter()
                    .zip(free_local_ports(CONTROL_PLANE_PORTS.len())?)
                    .collect(),
                Role::Worker => BTreeMap::new(),
            };
            let mut body = self.node_config(cluster, node, ip, volume, &published);
            if let Some(host) = body.host_config.as_mut() {
                profile.apply(host);
            }
            // Last, so the flavor sees (and may adjust) the security options too.
            if let Some(customize) = self.engine.flavor().customize_node {
                customize(&mut body);
            }
            match self.try_create_and_start(node, body, profile).await {
                Err(StartFailure::PortTaken) if attempt < PORT_ATTEMPTS => {
                    tracing::debug!(node = %node.name, ?published, "a picked host port was taken meanwhile, picking others");
                }
                Err(StartFailure::PortTaken) => {
                    return Err(StartFailure::Other(DriverError::engine(
                        format!("start node {}", node.name),
                        "a picked host port was taken by another program, three times",
                    )));
                }
                other => return other,
            }
        }
    }

    /// Creates and starts one container as one shielded engine call
    /// ([`ContainerEngine::shielded`]): an interrupted caller never leaves a container of this
    /// attempt behind that [`Driver::delete_profile`] would not wait for.
    async fn try_create_and_start(
        &self,
        node: &NodeSpec,
        body: ContainerCreateBody,
        profile: Profile,
    ) -> Result<(), StartFailure> {
        let docker = self.engine.ready().await?.clone();
        let engine = self.engine.clone();
        let name = node.name.clone();
        self.engine
            .shielded(
                async move { create_and_start_once(&engine, &docker, &name, body, profile).await },
            )
            .await
    }

    async fn inspect_node(&self, node: &str) -> Result<ContainerInspectResponse, DriverError> {
        let docker = self.engine.ready().await?;
        match tolerating_stopped(|| docker.inspect_container(node, None)).await {
            Ok(c) if is_minik_container(&c) => Ok(c),
            Ok(_) => Err(DriverError::NodeNotFound {
                node: node.to_string(),
            }),
            Err(e) if status_of(&e) == Some(404) => Err(DriverError::NodeNotFound {
                node: node.to_string(),
            }),
            Err(e) => Err(self.engine.error(format!("inspect node {node}"), e)),
        }
    }

    /// Maps an error of a lifecycle call on `node` (404 = the node vanished meanwhile).
    fn node_error(&self, op: &str, node: &str, e: bollard::errors::Error) -> DriverError {
        match status_of(&e) {
            // "network X not found" is a 404 too, of something other than the node.
            Some(404) if !message_of(&e).to_ascii_lowercase().contains("network") => {
                DriverError::NodeNotFound {
                    node: node.to_string(),
                }
            }
            _ => self.engine.error(format!("{op} node {node}"), e),
        }
    }

    /// The last lines of a node's output, for error messages about a node that died.
    pub async fn node_logs(&self, node: &str, lines: usize) -> Result<String, DriverError> {
        let docker = self.engine.ready().await?;
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut stream = docker.logs(node, Some(options));
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(log) => out.extend_from_slice(&log.into_bytes()),
                Err(e) => return Err(self.node_error("read logs of", node, e)),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Names of the profile's containers (any state), each with whether it is paused.
    async fn list_profile_containers(
        &self,
        profile: &str,
    ) -> Result<Vec<(String, bool)>, DriverError> {
        let docker = self.engine.ready().await?;
        let containers = list_containers_tolerant(docker, &profile_filter(Some(profile)))
            .await
            .map_err(|e| self.engine.error("list nodes", e))?;
        Ok(containers
            .into_iter()
            .filter(|c| labels_match(c.labels.as_ref(), profile))
            .filter_map(|c| {
                let paused = c.state == Some(ContainerSummaryStateEnum::PAUSED);
                let name = c
                    .names?
                    .into_iter()
                    .next()?
                    .trim_start_matches('/')
                    .to_string();
                Some((name, paused))
            })
            .collect())
    }
    /// One pass of [`Driver::delete_profile`]: containers, then volumes, then the network.
    /// Returns the first "in use" refusal (HTTP 409) instead of failing on it, for a retry.
    async fn delete_profile_pass(
        &self,
        profile: &str,
        report: &mut DeleteReport,
    ) -> Result<Option<DriverError>, DriverError> {
        let docker = self.engine.ready().await?;
        let filter = profile_filter(Some(profile));
        let mut busy = None;

        for (name, paused) in self.list_profile_containers(profile).await? {
            if paused {
                // Thaw first: removing a frozen container fails or hangs on some engines.
                let _ = docker.unpause_container(&name).await;
            }
            let options = RemoveContainerOptionsBuilder::default()
                .force(true)
                .v(true)
                .build();
            match docker.remove_container(&name, Some(options)).await {
                Ok(()) => report.nodes.push(name),
                Err(e) if status_of(&e) == Some(404) => {}
                // "removal of container X is already in progress": a killed delete's request
                // still runs in the engine.
                Err(e) if status_of(&e) == Some(409) => {
                    busy.get_or_insert(self.engine.error(format!("remove node {name}"), e));
                }
                Err(e) => return Err(self.engine.error(format!("remove node {name}"), e)),
            }
        }

        let options = ListVolumesOptionsBuilder::default()
            .filters(&filter)
            .build();
        let volumes = docker
            .list_volumes(Some(options))
            .await
            .map_err(|e| self.engine.error("list volumes", e))?;
        for volume in volumes.volumes.unwrap_or_default() {
            if !labels_match(Some(&volume.labels), profile) {
                continue;
            }
            match docker
                .remove_volume(
                    &volume.name,
                    None::<bollard::query_parameters::RemoveVolumeOptions>,
                )
                .await
            {
                Ok(()) => report.volumes.push(volume.name),
                Err(e) if status_of(&e) == Some(404) => {}
                Err(e) if status_of(&e) == Some(409) => {
                    busy.get_or_insert(
                        self.engine
                            .error(format!("remove volume {}", volume.name), e),
                    );
                }
                Err(e) => {
                    return Err(self
                        .engine
                        .error(format!("remove volume {}", volume.name), e));
                }
            }
        }

        let options = ListNetworksOptionsBuilder::default()
            .filters(&filter)
            .build();
        let networks = docker
            .list_networks(Some(options))
            .await
            .map_err(|e| self.engine.error("list networks", e))?;
        for network in networks {
            let (Some(id), Some(name)) = (network.id, network.name) else {
                continue;
            };
            if !labels_match(network.labels.as_ref(), profile) {
                continue;
            }
            match docker.remove_network(&id).await {
                Ok(()) => report.networks.push(name),
                Err(e) if status_of(&e) == Some(404) => {}
                // Docker answers 403 "has active endpoints", podman 409/500.
                Err(e) if matches!(status_of(&e), Some(403 | 409)) => {
                    busy.get_or_insert(self.engine.error(format!("remove network {name}"), e));
                }
                Err(e) => return Err(self.engine.error(format!("remove network {name}"), e)),
            }
        }
        Ok(busy)
    }
}

impl Driver for DockerDriver {
    type Runner = DockerRunner;

    fn name(&self) -> &'static str {
        self.engine.flavor().name
    }

    async fn check(&self) -> Result<EngineInfo, DriverError> {
        self.engine.check().await
    }

    async fn prepare(&self, cluster: &ClusterRequest) -> Result<(), DriverError> {
        let _guard = self.network_lock.lock().await;
        ensure_network(&self.engine, &cluster.profile)
            .await
            .map(|_| ())
    }

    async fn create_node(
        &self,
        cluster: &ClusterRequest,
        node: &NodeSpec,
        observer: &dyn Observer,
    ) -> Result<(), DriverError> {
        let mode = match self.security_override {
            Some(mode) => mode,
            None => self.engine.flavor().security_mode()?,
        };
        self.require_image(&cluster.image).await?;
        let subnet: Subnet = {
            let _guard = self.network_lock.lock().await;
            ensure_network(&self.engine, &cluster.profile).await?
        };
        let ip = subnet.node_ip(node.index).ok_or_else(|| {
            DriverError::engine(
                format!("create node {}", node.name),
                format!("index {} does not fit in {subnet}", node.index),
            )
        })?;
        let volume = self.ensure_volume(&cluster.profile, node).await?;
        let fixed = match mode {
            SecurityMode::Privileged => Some(Profile::Privileged),
            SecurityMode::Capabilities => Some(Profile::Capabilities),
            SecurityMode::Auto => None,
        };
        let into_error = |f: StartFailure| f.into_driver_error(&node.name, "host port taken");
        if let Some(profile) = fixed {
            return self
                .create_and_start(cluster, node, ip, &volume, profile)
                .await
                .map_err(into_error);
        }
        let mut decided = self.decided.lock().await;
        if decided.is_none() {
            *decided = self.remembered_profile().await;
        }
        if let Some(profile) = *decided {
            drop(decided);
            return self
                .create_and_start(cluster, node, ip, &volume, profile)
                .await
                .map_err(into_error);
        }
        // This node decides; the others wait on the lock.
        match self
            .create_and_start(cluster, node, ip, &volume, Profile::Privileged)
            .await
        {
            Ok(()) => {
                *decided = Some(Profile::Privileged);
                drop(decided);
                self.remember_profile(Profile::Privileged).await;
                Ok(())
            }
            Err(StartFailure::PrivilegeRefused(message)) => {
                *decided = Some(Profile::Capabilities);
                drop(decided);
                self.remember_profile(Profile::Capabilities).await;
                tracing::debug!(%message, "privileged node refused");
                observer.warn(&format!(
                    "the engine refused --privileged ({}); node containers run with an explicit capability set \
                     instead (set {}=capabilities to skip the attempt)",
                    short_refusal(&message),
                    self.engine.flavor().security_env,
                ));
                self.create_and_start(cluster, node, ip, &volume, Profile::Capabilities)
                    .await
                    .map_err(into_error)
            }
            Err(other) => Err(into_error(other)),
        }
    }

    async fn start_node(&self, node: &str) -> Result<(), DriverError> {
        let container = self.inspect_node(node).await?;
        let docker = self.engine.ready().await?;
        match state_of(&container) {
            Some(ContainerStateStatusEnum::RUNNING) if !is_paused(&container) => Ok(()),
            Some(ContainerStateStatusEnum::PAUSED | ContainerStateStatusEnum::RUNNING) => docker
                .unpause_container(node)
                .await
                .map_err(|e| self.node_error("unpause", node, e)),
            _ => match self.start_with_network(&container, node).await {
                Ok(()) => Ok(()),
                Err(e)
                    if is_privilege_refusal(&message_of(&e))
                        && container.host_config.as_ref().and_then(|h| h.privileged)
                            == Some(true)
                        && self.may_fall_back()? =>
                {
                    tracing::debug!(node, error = %message_of(&e), "recreating a privileged node the engine refuses");
                    self.recreate_with_capabilities(&container, node).await
                }
                Err(e) => Err(self.node_error("start", node, e)),
            },
        }
    }

    async fn stop_node(&self, node: &str, timeout: Duration) -> Result<(), DriverError> {
        let container = self.inspect_node(node).await?;
        let docker = self.engine.ready().await?;
        let state = state_of(&container);
        if is_paused(&container) {
            // A frozen init cannot handle the stop signal; thaw it so it shuts down cleanly.
            docker
                .unpause_container(node)
                .await
                .map_err(|e| self.node_error("unpause", node, e))?;
        } else if !matches!(
            state,
            Some(ContainerStateStatusEnum::RUNNING | ContainerStateStatusEnum::RESTARTING)
        ) {
            return Ok(());
        }
        let seconds = timeout.as_secs().min(i32::MAX as u64) as i32;
        let options = StopContainerOptionsBuilder::default().t(seconds).build();
        // The engine answers only after the container is gone: allow the whole grace period.
        let client = docker
            .clone()
            .with_timeout(timeout + Duration::from_secs(60));
        client
            .stop_container(node, Some(options))
            .await
            .map_err(|e| self.node_error("stop", node, e))
    }

    async fn pause_node(&self, node: &str) -> Result<(), DriverError> {
        let container = self.inspect_node(node).await?;
        if is_paused(&container) {
            return Ok(());
        }
        if state_of(&container) != Some(ContainerStateStatusEnum::RUNNING) {
            return Err(DriverError::NodeNotRunning {
                node: node.to_string(),
                state: host_state_of(&container).to_string(),
            });
        }
        let docker = self.engine.ready().await?;
        docker
            .pause_container(node)
            .await
            .map_err(|e| self.node_error("pause", node, e))
    }

    async fn unpause_node(&self, node: &str) -> Result<(), DriverError> {
        let container = self.inspect_node(node).await?;
        if is_paused(&container) {
            let docker = self.engine.ready().await?;
            return docker
                .unpause_container(node)
                .await
                .map_err(|e| self.node_error("unpause", node, e));
        }
        match state_of(&container) {
            Some(ContainerStateStatusEnum::RUNNING) => Ok(()),
            _ => Err(DriverError::NodeNotRunning {
                node: node.to_string(),
                state: host_state_of(&container).to_string(),
            }),
        }
    }

    async fn delete_node(&self, node: &str) -> Result<DeleteReport, DriverError> {
        // An interrupted create of this node must have finished before it is removed.
        self.engine.settled().await;
        let docker = self.engine.ready().await?;
        let mut report = DeleteReport::default();
        match self.inspect_node(node).await {
            Ok(c) => {
                if c.state.as_ref().and_then(|s| s.paused) == Some(true) {
                    // Thaw first: removing a frozen container fails or hangs on some engines.
                    let _ = docker.unpause_container(node).await;
                }
                let options = RemoveContainerOptionsBuilder::default()
                    .force(true)
                    .v(true)
                    .build();
                match docker.remove_container(node, Some(options)).await {
                    Ok(()) => report.nodes.push(node.to_string()),
                    Err(e) if status_of(&e) == Some(404) => {}
                    Err(e) => return Err(self.node_error("remove", node, e)),
                }
            }
            // Not there, or not minik's: a same-named foreign container is never touched.
            Err(DriverError::NodeNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let volume = Self::volume_name(node);
        match docker.inspect_volume(&volume).await {
            Ok(v)
                if v.labels
                    .get(minik_driver_api::labels::CREATED_BY)
                    .map(String::as_str)
                    == Some("true") =>
            {
                match docker
                    .remove_volume(
                        &volume,
                        None::<bollard::query_parameters::RemoveVolumeOptions>,
                    )
                    .await
                {
                    Ok(()) => report.volumes.push(volume),
                    Err(e) if status_of(&e) == Some(404) => {}
                    Err(e) => return Err(self.engine.error(format!("remove volume {volume}"), e)),
                }
            }
            _ => {}
        }
        Ok(report)
    }

    async fn delete_profile(&self, profile: &str) -> Result<DeleteReport, DriverError> {
        // What this process's interrupted calls are still making must exist before the
        // listing below, or it would outlive this delete.
        self.engine.settled().await;
        let mut report = DeleteReport::default();
        let mut pass = 1;
        loop {
            match self.delete_profile_pass(profile, &mut report).await? {
                None => break,
                // A volume or network still in use: a container some other process was making
                // for this profile appeared after the listing. Go again.
                Some(busy) if pass < DELETE_PASSES => {
                    tracing::debug!(%busy, pass, "still in use; deleting again");
                    tokio::time::sleep(Duration::from_millis(300 * pass as u64)).await;
                    pass += 1;
                }
                Some(busy) => return Err(busy),
            }
        }
        report.nodes.sort();
        report.nodes.dedup();
        report.volumes.sort();
        report.networks.sort();
        Ok(report)
    }

    async fn list_nodes(&self, profile: &str) -> Result<Vec<NodeInfo>, DriverError> {
        let names = self.list_profile_containers(profile).await?;
        let inspected =
            futures_util::future::join_all(names.iter().map(|(n, _)| self.inspect_node(n))).await;
        let mut nodes = Vec::new();
        for result in inspected {
            match result {
                Ok(container) => nodes.extend(node_info(&container, profile)),
                // Removed between the listing and the inspection: it no longer exists.
                Err(DriverError::NodeNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        nodes.sort_by(|a, b| a.index.cmp(&b.index).then_with(|| a.name.cmp(&b.name)));
        Ok(nodes)
    }

    async fn list_profiles(&self) -> Result<Vec<String>, DriverError> {
        let docker = self.engine.ready().await?;
        let filter = profile_filter(None);
        let containers = list_containers_tolerant(docker, &filter)
            .await
            .map_err(|e| self.engine.error("list nodes", e))?;
        let volumes = docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::default()
                    .filters(&filter)
                    .build(),
            ))
            .await
            .map_err(|e| self.engine.error("list volumes", e))?;
        let networks = docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::default()
                    .filters(&filter)
                    .build(),
            ))
            .await
            .map_err(|e| self.engine.error("list networks", e))?;
        let mut profiles = BTreeSet::new();
        let mut add = |labels: Option<&HashMap<String, String>>| {
            if let Some(p) = labels.and_then(|l| l.get(labels::PROFILE))
                && labels_match(labels, p)
            {
                profiles.insert(p.clone());
            }
        };
        containers.iter().for_each(|c| add(c.labels.as_ref()));
        volumes
            .volumes
            .iter()
            .flatten()
            .for_each(|v| add(Some(&v.labels)));
        networks.iter().for_each(|n| add(n.labels.as_ref()));
        Ok(profiles.into_iter().collect())
    }

    fn runner(&self, node: &str) -> DockerRunner {
        DockerRunner::new(self.engine.clone(), node)
    }
}

/// One create + start of a node container; the container of a failed start is removed again
/// (so a retry can reuse the name).
async fn create_and_start_once(
    engine: &ContainerEngine,
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
    profile: Profile,
) -> Result<(), StartFailure> {
    let image = body.image.clone().unwrap_or_default();
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    let mut created = docker
        .create_container(Some(options.clone()), body.clone())
        .await;
    if let Err(e) = &created
        && is_name_taken(e)
        && left_by_earlier_attempt(docker, name, &body).await
    {
        // A container of this very node from an attempt that was killed (its engine call
        // finished after the process was gone): of no use, its data is in the volume.
        tracing::debug!(
            container = name,
            "replacing the container an interrupted attempt left"
        );
        remove_container(docker, name).await;
        created = docker.create_container(Some(options), body).await;
    }
    if let Err(e) = created {
        return Err(StartFailure::Other(match status_of(&e) {
            _ if is_name_taken(&e) => DriverError::NameConflict {
                kind: "container".into(),
                name: name.to_string(),
            },
            // 404 is also a vanished network; only a missing image is ImageNotFound.
            Some(404) if message_of(&e).to_ascii_lowercase().contains("image") => {
                DriverError::ImageNotFound {
                    engine: engine.flavor().name.to_string(),
                    image,
                }
            }
            _ => engine.error(format!("create node {name}"), e),
        }));
    }
    let Err(e) = docker.start_container(name, None).await else {
        return Ok(());
    };
    let message = message_of(&e);
    remove_container(docker, name).await;
    if profile == Profile::Privileged && is_privilege_refusal(&message) {
        Err(StartFailure::PrivilegeRefused(message))
    } else if message.contains("port is already allocated")
        || message.contains("address already in use")
    {
        Err(StartFailure::PortTaken)
    } else {
        Err(StartFailure::Other(
            engine.error(format!("start node {name}"), e),
        ))
    }
}

/// Whether a create was refused because the name is taken: Docker answers 409, podman 500
/// with "is already in use".
fn is_name_taken(e: &bollard::errors::Error) -> bool {
    status_of(e) == Some(409) || message_of(e).contains("is already in use")
}

/// Whether container `name` is minik's for the same profile and node as `body` would make.
async fn left_by_earlier_attempt(docker: &Docker, name: &str, body: &ContainerCreateBody) -> bool {
    // An engine that is still creating the container holds its name before it shows it:
    // wait a little for it to appear.
    let mut tries = 0;
    let existing = loop {
        match docker.inspect_container(name, None).await {
            Ok(c) => break c,
            Err(e) if status_of(&e) == Some(404) && tries < 20 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(_) => return false,
        }
    };
    let want = body.labels.as_ref();
    let have = container_labels(&existing);
    let same = |key: &str| {
        let w = want.and_then(|l| l.get(key));
        w.is_some() && w == have.and_then(|l| l.get(key))
    };
    is_minik_container(&existing) && same(labels::PROFILE) && same(labels::NODE)
}

/// Force-removes a container and its anonymous volumes; failures are only logged (this is
/// cleanup on an error path).
async fn remove_container(docker: &Docker, name: &str) {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    if let Err(e) = docker.remove_container(name, Some(options)).await
        && status_of(&e) != Some(404)
    {
        tracing::warn!(container = name, error = %e, "could not remove the container of a failed attempt");
    }
}

/// Whether an executable named `program` is on `PATH`.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            dir.join(program)
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Labels of a node's container and volume.
fn node_labels(profile: &str, node: &NodeSpec) -> HashMap<String, String> {
    HashMap::from([
        (labels::CREATED_BY.to_string(), "true".to_string()),
        (labels::PROFILE.to_string(), profile.to_string()),
        (labels::NODE.to_string(), node.name.clone()),
        (labels::ROLE.to_string(), node.role.as_str().to_string()),
        (labels::INDEX.to_string(), node.index.to_string()),
    ])
}

/// A free TCP port on 127.0.0.1 right now (the listener is closed again at once).
/// Lists every container (any state) matching `filters` (see [`tolerating_stopped`]).
async fn list_containers_tolerant(
    docker: &bollard::Docker,
    filters: &HashMap<String, Vec<String>>,
) -> Result<Vec<bollard::models::ContainerSummary>, bollard::errors::Error> {
    tolerating_stopped(|| {
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(filters)
            .build();
        docker.list_containers(Some(options))
    })
    .await
}

/// Runs an engine call that reads container states again while the answer holds podman's
/// `stopped`. podman 4's Docker-compatible API reports a container that has stopped but whose
/// cleanup has not run yet with that state (podman issues 5336 and 28359), which is not in the
/// Docker API's list of states, so bollard cannot read the answer (bollard issue 293). The
/// state lasts until conmon's cleanup, well under a second, so the call is repeated for up to
/// ten seconds before the error is reported.
async fn tolerating_stopped<T, F, Fut>(mut call: F) -> Result<T, bollard::errors::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, bollard::errors::Error>>,
{
    const ATTEMPTS: u32 = 40;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match call().await {
            Err(e) if attempt < ATTEMPTS && is_unknown_state(&e) => {
                tracing::debug!(error = %e, "a container is in podman's transient `stopped` state; asking again");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => return other,
        }
    }
}

/// Whether the engine's answer could not be read because of a state outside the Docker API's
/// enumeration (podman's transient `stopped`).
fn is_unknown_state(e: &bollard::errors::Error) -> bool {
    is_unknown_state_message(&e.to_string())
}

fn is_unknown_state_message(message: &str) -> bool {
    message.contains("unknown variant `stopped`")
}

fn free_local_ports(n: usize) -> Result<Vec<u16>, DriverError> {
    // All listeners are held until every port is known, so the ports differ.
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DriverError::io("pick free host ports to publish", e))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DriverError::io("pick free host ports to publish", e))
}

/// The useful tail of runc's refusal ("unable to apply caps: operation not permitted").
fn short_refusal(message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    let tail = lower
        .find("unable to apply caps")
        .map(|i| &message[i..])
        .unwrap_or(message);
    tail.trim_end_matches(": unknown").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerConfig, ContainerState, NetworkSettings};

    fn container(status: ContainerStateStatusEnum, paused: bool) -> ContainerInspectResponse {
        let node = NodeSpec {
            name: "p-m02".into(),
            role: Role::Worker,
            index: 1,
        };
        ContainerInspectResponse {
            name: Some("/p-m02".into()),
            state: Some(ContainerState {
                status: Some(status),
                paused: Some(paused),
                exit_code: Some(137),
                ..Default::default()
            }),
            config: Some(ContainerConfig {
                labels: Some(node_labels("p", &node)),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                port_bindings: Some(HashMap::from([(
                    "6443/tcp".to_string(),
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some("41234".into()),
                    }]),
                )])),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                networks: Some(HashMap::from([(
                    "p".to_string(),
                    EndpointSettings {
                        ip_address: Some("192.168.49.3".into()),
                        ..Default::default()
                    },
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn maps_states() {
        let cases = [
            (ContainerStateStatusEnum::RUNNING, false, HostState::Running),
            (ContainerStateStatusEnum::RUNNING, true, HostState::Paused),
            (ContainerStateStatusEnum::PAUSED, true, HostState::Paused),
            (ContainerStateStatusEnum::EXITED, false, HostState::Stopped),
            (ContainerStateStatusEnum::CREATED, false, HostState::Stopped),
            (
                ContainerStateStatusEnum::RESTARTING,
                false,
                HostState::Error,
            ),
            (ContainerStateStatusEnum::DEAD, false, HostState::Error),
        ];
        for (status, paused, want) in cases {
            let info = node_info(&container(status, paused), "p").unwrap();
            assert_eq!(info.state, want, "{status:?} paused={paused}");
        }
        let info = node_info(&container(ContainerStateStatusEnum::EXITED, false), "p").unwrap();
        assert_eq!(info.detail.as_deref(), Some("exited (137)"));
        assert_eq!(
            (info.name.as_str(), info.role, info.index),
            ("p-m02", Role::Worker, 1)
        );
        assert_eq!(info.api_port, Some(41234));
        assert_eq!(info.ports, BTreeMap::from([(6443, 41234)]));
        assert_eq!(info.ip.as_deref(), Some("192.168.49.3"));
        assert!(
            node_info(
                &container(ContainerStateStatusEnum::RUNNING, false),
                "other"
            )
            .is_none()
        );
    }

    #[test]
    fn shortens_runc_refusal() {
        let m = "failed to create shim task: OCI runtime create failed: runc create failed: unable to start \
                 container process: unable to apply caps: operation not permitted: unknown";
        assert_eq!(
            short_refusal(m),
            "unable to apply caps: operation not permitted"
        );
    }

    #[test]
    fn picks_distinct_ports() {
        let ports = free_local_ports(3).unwrap();
        assert_eq!(ports.len(), 3);
        assert!(ports.iter().all(|p| *p > 0));
        assert_eq!(ports.iter().collect::<BTreeSet<_>>().len(), 3, "{ports:?}");
    }

    #[test]
    fn podmans_transient_stopped_state_is_recognised() {
        // What bollard said to podman 4.3's listing in CI.
        assert!(is_unknown_state_message(
            "Failed to deserialize JSON: unknown variant `stopped`, expected one of ``, \
             `created`, `running`, `paused`, `restarting`, `exited`, `removing`, `dead`, \
             `stopping` at line 1 column 491"
        ));
        assert!(!is_unknown_state_message(
            "Failed to deserialize JSON: expected value at line 1 column 1"
        ));
    }
}
