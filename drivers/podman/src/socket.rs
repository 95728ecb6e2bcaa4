//! Where podman's Docker-compatible API listens, and starting that API service when nothing
//! listens on the default socket.
//!
//! Rules, first match wins:
//! 1. `CONTAINER_HOST` (podman's own variable): `unix:///path` or `tcp://host:port`.
//! 2. `DOCKER_HOST`, only when it names a podman socket (its value contains `podman`, as in the
//!    usual `unix://$XDG_RUNTIME_DIR/podman/podman.sock`). A `DOCKER_HOST` that points at a
//!    Docker Engine belongs to the docker driver.
//! 3. Rootful (effective uid 0): `unix:///run/podman/podman.sock`.
//! 4. Rootless: `unix://$XDG_RUNTIME_DIR/podman/podman.sock` (`/run/user/<uid>/...` when the
//!    variable is unset).
//!
//! Only for 3 and 4 (the sockets `podman.socket` would serve) does minik start the service
//! itself when nothing answers: `podman system service --time=0 unix://PATH`, in its own process
//! group, logging to `<tmp>/minik-podman-service-<uid>.log`. It keeps running after minik exits,
//! like an engine started with `systemctl start podman.socket` (a finite `--time` would let the
//! service exit under a long `minik ssh` session, whose hijacked connection podman does not
//! count as activity). An address the user set is theirs: minik reports it unreachable instead.

use minik_driver_api::DriverError;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The rootful default socket.
pub const ROOTFUL_SOCKET: &str = "/run/podman/podman.sock";

/// How long a service minik started may take to answer on its socket.
pub const SERVICE_START_TIMEOUT: Duration = Duration::from_secs(15);

/// Where an [`Endpoint`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointSource {
    /// `CONTAINER_HOST`.
    ContainerHost,
    /// `DOCKER_HOST` naming a podman socket.
    DockerHost,
    /// The rootful default, [`ROOTFUL_SOCKET`].
    Rootful,
    /// The rootless default under `XDG_RUNTIME_DIR`.
    Rootless,
}

/// The address of podman's API and why minik uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix:///path` or `tcp://host:port`.
    pub host: String,
    /// Which rule chose it.
    pub source: EndpointSource,
}

impl Endpoint {
    /// The socket file, for `unix://` addresses.
    pub fn socket_path(&self) -> Option<&Path> {
        self.host.strip_prefix("unix://").map(Path::new)
    }

    /// Whether this is a default socket, which minik may start the service on.
    pub fn is_default(&self) -> bool {
        matches!(
            self.source,
            EndpointSource::Rootful | EndpointSource::Rootless
        )
    }

    /// The command that serves this endpoint, for advice.
    pub fn service_command(&self) -> String {
        format!("podman system service --time=0 {}", self.host)
    }

    /// What to do when nothing answers here, for advice.
    pub fn start_advice(&self) -> String {
        match self.source {
            EndpointSource::Rootful => format!(
                "Start podman's API: `sudo systemctl enable --now podman.socket`, or `sudo {} &`.",
                self.service_command()
            ),
            EndpointSource::Rootless => format!(
                "Start podman's API: `systemctl --user enable --now podman.socket`, or `{} &`.",
                self.service_command()
            ),
            EndpointSource::ContainerHost | EndpointSource::DockerHost => format!(
                "Start the podman service that {} names (`{} &`), or unset {} to use the default socket.",
                self.variable().unwrap_or("the variable"),
                self.service_command(),
                self.variable().unwrap_or("it"),
            ),
        }
    }

    /// The environment variable that chose this endpoint, if one did.
    pub fn variable(&self) -> Option<&'static str> {
        match self.source {
            EndpointSource::ContainerHost => Some("CONTAINER_HOST"),
            EndpointSource::DockerHost => Some("DOCKER_HOST"),
            _ => None,
        }
    }
}

/// The endpoint for this process's environment and user (see the module docs).
pub fn endpoint() -> Endpoint {
    endpoint_from(
        |name| std::env::var(name).ok(),
        nix::unistd::geteuid().as_raw(),
    )
}

/// [`endpoint`] for a given environment lookup and effective uid.
pub fn endpoint_from(env: impl Fn(&str) -> Option<String>, euid: u32) -> Endpoint {
    let set = |name: &str| {
        env(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if let Some(host) = set("CONTAINER_HOST") {
        return Endpoint {
            host,
            source: EndpointSource::ContainerHost,
        };
    }
    if let Some(host) = set("DOCKER_HOST").filter(|h| h.contains("podman")) {
        return Endpoint {
            host,
            source: EndpointSource::DockerHost,
        };
    }
    if euid == 0 {
        return Endpoint {
            host: format!("unix://{ROOTFUL_SOCKET}"),
            source: EndpointSource::Rootful,
        };
    }
    let runtime_dir = set("XDG_RUNTIME_DIR").unwrap_or_else(|| format!("/run/user/{euid}"));
    Endpoint {
        host: format!(
            "unix://{}/podman/podman.sock",
            runtime_dir.trim_end_matches('/')
        ),
        source: EndpointSource::Rootless,
    }
}

/// What [`ensure_service`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    /// Something already accepts connections on the socket.
    Answering,
    /// minik started `podman system service`; it now answers.
    Started {
        /// The service's process id.
        pid: u32,
        /// Where its output goes.
        log: PathBuf,
    },
}

/// Whether something accepts connections on `socket` (a stale socket file does not).
pub fn socket_answers(socket: &Path) -> bool {
    UnixStream::connect(socket).is_ok()
}

/// The `podman` executable on `PATH`.
pub fn podman_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("podman"))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Makes sure podman's API answers on `socket`: returns at once when it does, else starts
/// `podman system service --time=0 unix://SOCKET` in the background and waits (at most
/// [`SERVICE_START_TIMEOUT`]) until it accepts connections.
///
/// Blocking (it polls the socket); the wait only happens when the service is started. A lock
/// file keeps two minik processes from starting two services on one socket.
///
/// Errors: no `podman` on `PATH` is [`DriverError::EngineNotFound`]; a service that exits or
/// does not answer in time is [`DriverError::EngineUnreachable`] with the end of its log.
pub fn ensure_service(socket: &Path) -> Result<Service, DriverError> {
    if socket_answers(socket) {
        return Ok(Service::Answering);
    }
    let endpoint = format!("unix://{}", socket.display());
    let Some(podman) = podman_binary() else {
        return Err(DriverError::EngineNotFound {
            engine: "podman".into(),
            endpoint,
        });
    };
    let unreachable = |detail: String| DriverError::EngineUnreachable {
        engine: "podman".into(),
        endpoint: endpoint.clone(),
        detail,
    };
    let uid = nix::unistd::geteuid().as_raw();
    let lock_path = std::env::temp_dir().join(format!("minik-podman-service-{uid}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| DriverError::io(format!("open {}", lock_path.display()), e))?;
    lock.lock()
        .map_err(|e| DriverError::io(format!("lock {}", lock_path.display()), e))?;
    // Another minik may have started it while this one waited for the lock.
    if socket_answers(socket) {
        return Ok(Service::Answering);
    }
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            unreachable(format!(
                "nothing listens there and minik cannot create {} to start the service: {e}",
                dir.display()
            ))
        })?;
    }
    let log = std::env::temp_dir().join(format!("minik-podman-service-{uid}.log"));
    let log_file =
        File::create(&log).map_err(|e| DriverError::io(format!("create {}", log.display()), e))?;
    let log_err = log_file
        .try_clone()
        .map_err(|e| DriverError::io(format!("open {}", log.display()), e))?;
    tracing::debug!(socket = %socket.display(), podman = %podman.display(), "starting podman's API service");
    let mut child = Command::new(&podman)
        .args(["system", "service", "--time=0", &endpoint])
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        // Its own process group: a Ctrl-C meant for minik must not stop the engine.
        .process_group(0)
        // It outlives minik: a working directory that is deleted later (a CI checkout, a
        // temporary directory) would break every container it starts afterwards ("write
        // child: broken pipe"), so it runs from the root.
        .current_dir("/")
        .spawn()
        .map_err(|e| unreachable(format!("cannot run {}: {e}", podman.display())))?;
    let pid = child.id();
    let started = Instant::now();
    loop {
        if socket_answers(socket) {
            tracing::debug!(pid, elapsed = ?started.elapsed(), "podman's API service answers");
            return Ok(Service::Started { pid, log });
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(unreachable(format!(
                "nothing listened, and `podman system service` exited ({status}): {}",
                log_tail(&log)
            )));
        }
        if started.elapsed() > SERVICE_START_TIMEOUT {
            return Err(unreachable(format!(
                "nothing listened, and the `podman system service` minik started (pid {pid}) did not answer within {}s: {}",
                SERVICE_START_TIMEOUT.as_secs(),
                log_tail(&log)
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last non-empty line of a log file, for error messages.
fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    let _ = File::open(path).and_then(|mut f| f.read_to_string(&mut text));
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| format!("no output (log: {})", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(vars: &[(&str, &str)], euid: u32) -> Endpoint {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        endpoint_from(|k| vars.get(k).cloned(), euid)
    }

    #[test]
    fn defaults_by_user() {
        let root = resolve(&[], 0);
        assert_eq!(root.host, "unix:///run/podman/podman.sock");
        assert_eq!(root.source, EndpointSource::Rootful);
        assert!(root.is_default());
        let user = resolve(&[("XDG_RUNTIME_DIR", "/run/user/1000/")], 1000);
        assert_eq!(user.host, "unix:///run/user/1000/podman/podman.sock");
        assert_eq!(user.source, EndpointSource::Rootless);
        assert_eq!(
            resolve(&[], 1001).host,
            "unix:///run/user/1001/podman/podman.sock"
        );
        assert_eq!(root.socket_path(), Some(Path::new(ROOTFUL_SOCKET)));
    }

    #[test]
    fn variables_override() {
        let e = resolve(
            &[
                ("CONTAINER_HOST", "unix:///x.sock"),
                ("DOCKER_HOST", "unix:///podman.sock"),
            ],
            0,
        );
        assert_eq!(
            (e.host.as_str(), e.source),
            ("unix:///x.sock", EndpointSource::ContainerHost)
        );
        assert!(!e.is_default());
        let e = resolve(
            &[("DOCKER_HOST", "unix:///run/user/1/podman/podman.sock")],
            1,
        );
        assert_eq!(e.source, EndpointSource::DockerHost);
        assert_eq!(e.variable(), Some("DOCKER_HOST"));
        // A DOCKER_HOST for the Docker Engine is not podman's.
        let e = resolve(
            &[
                ("DOCKER_HOST", "unix:///var/run/docker.sock"),
                ("CONTAINER_HOST", " "),
            ],
            0,
        );
        assert_eq!(e.source, EndpointSource::Rootful);
        assert!(
            e.start_advice().contains("podman.socket"),
            "{}",
            e.start_advice()
        );
    }

    #[test]
    fn dead_socket_does_not_answer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        assert!(!socket_answers(&path));
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(socket_answers(&path));
        drop(listener);
        // The file stays, nobody accepts: stale.
        assert!(path.exists());
        assert!(!socket_answers(&path));
    }
}
