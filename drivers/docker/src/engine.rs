//! The connection to a Docker-API engine and the quirks of each engine that speaks that API.

use crate::security::SecurityMode;
use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ResourcesUlimits, RestartPolicyNameEnum, SystemInfoCgroupVersionEnum,
};
use minik_driver_api::{DriverError, EngineInfo};
use std::path::Path;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Where the Docker Engine listens when `DOCKER_HOST` is not set.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// How long [`ContainerEngine::check`] (and the first request of any other operation) waits for
/// the engine before reporting it unreachable. A local engine answers in milliseconds; this only
/// bounds the wait for a wrong `tcp://` address.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(8);

/// Per-request timeout of the client: generous, because image uploads and builds send their whole
/// body before the engine answers. Operations that wait longer (stop) raise it for their request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// What differs between engines that speak the Docker API: names for messages and the node
/// container options each one needs or refuses.
///
/// [`Flavor::docker`] is the Docker Engine; a podman driver builds its own value (container env
/// `podman`, explicit ulimits, no restart policy, no bridge options) and passes it to
/// [`crate::DockerDriver::with_engine`].
#[derive(Debug, Clone)]
pub struct Flavor {
    /// The driver's name as users type it (`docker`); also [`minik_driver_api::Driver::name`].
    pub name: &'static str,
    /// The engine's product name for [`EngineInfo::version`], e.g. `Docker Engine`.
    pub engine_name: &'static str,
    /// Value of the `container` environment variable in nodes; systemd reads it to know it runs
    /// in a container.
    pub container_env: &'static str,
    /// Restart policy of node containers; `None` leaves the engine's default (never restart).
    pub restart_policy: Option<RestartPolicyNameEnum>,
    /// Resource limits set explicitly on every node (podman's defaults can exceed the host's
    /// hard limits). Empty = the engine's defaults.
    pub ulimits: Vec<ResourcesUlimits>,
    /// Set the bridge driver options (IP masquerade, inter-container traffic, the default
    /// bridge's MTU) on profile networks. Docker honours them; podman rejects some.
    pub bridge_options: bool,
    /// Environment variable that overrides the node security mode (see [`SecurityMode`]).
    pub security_env: &'static str,
    /// Last-minute changes to every node's create request, made after the security options
    /// are in (e.g. podman's volume mount options and path unmasking).
    pub customize_node: Option<fn(&mut ContainerCreateBody)>,
    /// A Docker API version to speak without asking (`major, minor`); `None` negotiates with
    /// the engine's `/version` on first use. The client must be made for that version
    /// ([`connect_host_at`]).
    pub api_version: Option<(usize, usize)>,
    /// Give nodes their `/var` volume as a labelled mount (Docker) rather than a bind
    /// (podman, whose flavor adds bind options to it).
    pub volume_as_mount: bool,
    /// Commands given their input as bytes read all of it in the node, even when they stop
    /// reading early (`head -c 5`): the runner runs them under `sh`, which drains the rest
    /// after them. podman (conmon) can lose a command's output when it exits with input
    /// unread; Docker does not need it.
    pub drain_stdin: bool,
}

impl Flavor {
    /// The Docker Engine.
    pub fn docker() -> Flavor {
        Flavor {
            name: "docker",
            engine_name: "Docker Engine",
            container_env: "docker",
            restart_policy: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            ulimits: Vec::new(),
            bridge_options: true,
            security_env: "MINIK_DOCKER_SECURITY",
            customize_node: None,
            api_version: None,
            volume_as_mount: true,
            drain_stdin: false,
        }
    }

    /// The security mode from [`Flavor::security_env`], [`SecurityMode::Auto`] when unset.
    pub fn security_mode(&self) -> Result<SecurityMode, DriverError> {
        match std::env::var(self.security_env) {
            Ok(value) => SecurityMode::parse(&value).ok_or_else(|| {
                DriverError::engine(
                    format!("read {}", self.security_env),
                    format!("{value:?} is not one of privileged, capabilities, auto"),
                )
            }),
            Err(_) => Ok(SecurityMode::Auto),
        }
    }
}

/// The address `DOCKER_HOST` names, else [`DEFAULT_DOCKER_HOST`].
pub fn docker_host() -> String {
    docker_host_from(std::env::var("DOCKER_HOST").ok())
}

/// [`docker_host`] for a given `DOCKER_HOST` value (empty counts as unset, as for the docker CLI).
pub fn docker_host_from(value: Option<String>) -> String {
    match value {
        Some(v) if !v.trim().is_empty() => v.trim().to_string(),
        _ => DEFAULT_DOCKER_HOST.to_string(),
    }
}

/// A bollard client for `host` (`unix://PATH`, `tcp://HOST:PORT` or `http://HOST:PORT`). Sends
/// nothing: a dead engine shows up in [`ContainerEngine::check`]. A `unix://` socket file that
/// does not exist is [`DriverError::EngineNotFound`] already here (the client needs it).
pub fn connect_host(host: &str, engine: &str) -> Result<Docker, DriverError> {
    connect_host_at(host, engine, bollard::API_DEFAULT_VERSION)
}

/// [`connect_host`] speaking API `version` (see [`Flavor::api_version`]).
pub fn connect_host_at(
    host: &str,
    engine: &str,
    version: &bollard::ClientVersion,
) -> Result<Docker, DriverError> {
    let timeout = REQUEST_TIMEOUT.as_secs();
    let docker = if host.starts_with("unix://") {
        Docker::connect_with_unix(host, timeout, version)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, timeout, version)
    } else {
        return Err(DriverError::EngineUnreachable {
            engine: engine.to_string(),
            endpoint: host.to_string(),
            detail: "unsupported address scheme (use unix:// or tcp://)".into(),
        });
    };
    docker.map_err(|e| match e {
        BollardError::SocketNotFoundError(_) => DriverError::EngineNotFound {
            engine: engine.to_string(),
            endpoint: host.to_string(),
        },
        e => DriverError::EngineUnreachable {
            engine: engine.to_string(),
            endpoint: host.to_string(),
            detail: e.to_string(),
        },
    })
}

/// A Docker-API engine: the bollard client, the address it talks to and the engine's quirks.
/// Shared (behind an `Arc`) by a driver and all its runners.
#[derive(Debug)]
pub struct ContainerEngine {
    docker: Docker,
    endpoint: String,
    flavor: Flavor,
    negotiated: OnceCell<()>,
    /// How many [`ContainerEngine::shielded`] calls are still running.
    in_flight: tokio::sync::watch::Sender<usize>,
}

/// Counts one shielded call while it runs (decrements when the task ends, however it ends).
struct InFlight(tokio::sync::watch::Sender<usize>);

impl InFlight {
    fn enter(counter: &tokio::sync::watch::Sender<usize>) -> InFlight {
        counter.send_modify(|n| *n += 1);
        InFlight(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl ContainerEngine {
    /// Wraps a connected client. `endpoint` is the address for messages (`unix:///...`); a
    /// `unix://` endpoint also tells [`Self::check`] which socket file must exist.
    pub fn new(docker: Docker, endpoint: impl Into<String>, flavor: Flavor) -> ContainerEngine {
        ContainerEngine {
            docker,
            endpoint: endpoint.into(),
            flavor,
            negotiated: OnceCell::new(),
            in_flight: tokio::sync::watch::channel(0).0,
        }
    }

    /// Runs an engine call that creates or removes something to its end even when the caller
    /// is dropped (an interrupted `start`): the engine finishes a request whose client went
    /// away anyway, so a caller that stopped waiting would clean up before the engine is done
    /// and miss what it makes after. [`Self::settled`] waits for every such call.
    pub async fn shielded<T, F>(&self, call: F) -> T
    where
        T: Send + 'static,
        F: std::future::Future<Output = T> + Send + 'static,
    {
        let guard = InFlight::enter(&self.in_flight);
        let task = tokio::spawn(async move {
            let _guard = guard;
            call.await
        });
        match task.await {
            Ok(v) => v,
            // Never aborted, so only a panic of the call itself ends up here.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Resolves once no [`Self::shielded`] call of this engine value runs: what the engine
    /// holds then is all that this process's calls will ever make.
    pub async fn settled(&self) {
        let mut rx = self.in_flight.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// The bollard client (before version negotiation; prefer [`Self::ready`]).
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The engine's address as given.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The engine's quirks.
    pub fn flavor(&self) -> &Flavor {
        &self.flavor
    }

    /// Whether the engine runs on this machine (a unix socket), so host paths such as
    /// `/lib/modules` and free host ports can be checked here.
    pub fn is_local(&self) -> bool {
        self.endpoint.starts_with("unix://")
    }

    fn socket_path(&self) -> Option<&str> {
        self.endpoint.strip_prefix("unix://")
    }

    /// The client, after agreeing on an API version with the engine (once per engine value).
    pub async fn ready(&self) -> Result<&Docker, DriverError> {
        self.negotiated
            .get_or_try_init(|| async {
                if let Some(path) = self.socket_path()
                    && !Path::new(path).exists()
                {
                    return Err(DriverError::EngineNotFound {
                        engine: self.flavor.name.to_string(),
                        endpoint: self.endpoint.clone(),
                    });
                }
                if self.flavor.api_version.is_some() {
                    return Ok(());
                }
                // The negotiated version lives in state shared by all clones of the client.
                match tokio::time::timeout(CONNECT_TIMEOUT, self.docker.clone().negotiate_version())
                    .await
                {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(self.unreachable(e.to_string())),
                    Err(_) => Err(self
                        .unreachable(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()))),
                }
            })
            .await?;
        Ok(&self.docker)
    }

    /// Checks that the engine answers and reports its version, API version and cgroup version.
    pub async fn check(&self) -> Result<EngineInfo, DriverError> {
        let docker = self.ready().await?;
        let probe = async { tokio::join!(docker.version(), docker.info()) };
        let (version, info) = match tokio::time::timeout(CONNECT_TIMEOUT, probe).await {
            Ok(answers) => answers,
            Err(_) => {
                return Err(
                    self.unreachable(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()))
                );
            }
        };
        let version = version.map_err(|e| self.unreachable(e.to_string()))?;
        let cgroup_version = match info {
            Ok(info) => match info.cgroup_version {
                Some(SystemInfoCgroupVersionEnum::_1) => Some("1".to_string()),
                Some(SystemInfoCgroupVersionEnum::_2) => Some("2".to_string()),
                _ => None,
            },
            // An engine whose info does not fit Docker's schema (a compatible engine) is still
            // usable; only the cgroup version stays unknown.
            Err(e @ BollardError::JsonDataError { .. }) => {
                tracing::debug!(error = %e, "engine info not understood");
                None
            }
            Err(e) => return Err(self.unreachable(e.to_string())),
        };
        Ok(EngineInfo {
            version: format!(
                "{} {}",
                self.flavor.engine_name,
                version.version.unwrap_or_else(|| "(unknown)".into())
            ),
            api_version: version.api_version,
            cgroup_version,
        })
    }

    /// An [`DriverError::EngineUnreachable`] for this engine.
    pub fn unreachable(&self, detail: impl Into<String>) -> DriverError {
        DriverError::EngineUnreachable {
            engine: self.flavor.name.to_string(),
            endpoint: self.endpoint.clone(),
            detail: detail.into(),
        }
    }

    /// Maps a client error of operation `op` to a driver error. Callers handle the statuses that
    /// mean something for their operation (404, 409) before falling back to this.
    pub fn error(&self, op: impl Into<String>, e: BollardError) -> DriverError {
        match e {
            BollardError::SocketNotFoundError(_) => DriverError::EngineNotFound {
                engine: self.flavor.name.to_string(),
                endpoint: self.endpoint.clone(),
            },
            BollardError::DockerResponseServerError { message, .. } => {
                DriverError::engine(op, message)
            }
            BollardError::RequestTimeoutError => DriverError::Timeout {
                what: op.into(),
                seconds: self.docker.timeout().as_secs(),
            },
            e @ (BollardError::HyperResponseError { .. }
            | BollardError::HyperLegacyError { .. }
            | BollardError::HttpClientError { .. }
            | BollardError::IOError { .. }) => self.unreachable(format!("{}: {e}", op.into())),
            e => DriverError::engine(op, e),
        }
    }
}

/// The HTTP status of an engine refusal, if `e` is one.
pub(crate) fn status_of(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The engine's message of a refusal, else the error's text.
pub(crate) fn message_of(e: &BollardError) -> String {
    match e {
        BollardError::DockerResponseServerError { message, .. } => message.clone(),
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_defaults_and_overrides() {
        assert_eq!(docker_host_from(None), DEFAULT_DOCKER_HOST);
        assert_eq!(docker_host_from(Some("  ".into())), DEFAULT_DOCKER_HOST);
        assert_eq!(
            docker_host_from(Some("tcp://10.0.0.1:2375".into())),
            "tcp://10.0.0.1:2375"
        );
        assert_eq!(
            docker_host_from(Some("unix:///run/x.sock".into())),
            "unix:///run/x.sock"
        );
    }

    #[test]
    fn missing_socket_is_not_found() {
        let err = connect_host("unix:///nonexistent/docker.sock", "docker").unwrap_err();
        assert!(matches!(err, DriverError::EngineNotFound { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "docker is not installed or its socket unix:///nonexistent/docker.sock does not exist"
        );
    }

    #[test]
    fn unsupported_scheme_is_unreachable() {
        let err = connect_host("ssh://somewhere", "docker").unwrap_err();
        assert!(
            matches!(err, DriverError::EngineUnreachable { .. }),
            "{err}"
        );
    }
}
