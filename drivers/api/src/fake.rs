//! An in-file fake engine: a [`FakeDriver`] and a recording [`FakeRunner`].
//!
//! The state lives in one JSON file so that separate `minik` processes (CLI tests with the
//! hidden `--driver fake`) see the same "engine". Commands sent to a node are recorded in order,
//! which is how tests check what the cluster logic asked each node to do.
//!
//! Failure injection, for tests of error paths: `MINIK_FAKE_FAIL` holds comma-separated
//! `operation:node` pairs (`create_node:minik-m02`, `start_node:*`, `exec:minik:kubeadm`); a
//! matching call fails with an engine error. `MINIK_FAKE_UNREACHABLE=1` makes `check` fail as an
//! unreachable engine would.

use crate::{
    ClusterRequest, DeleteReport, Driver, DriverError, EngineInfo, ExecRequest, HostState,
    NodeInfo, NodeSpec, Observer, Role, Runner, StdinSource,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// One recorded command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub node: String,
    pub argv: Vec<String>,
    /// Bytes fed on stdin (lossy UTF-8), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
}

/// A scripted answer for commands whose argv starts with `prefix` (on `node`, or any node when
/// `node` is `*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub node: String,
    pub prefix: Vec<String>,
    pub exit_code: i64,
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FakeNode {
    profile: String,
    role: Role,
    index: u32,
    state: HostState,
    image: String,
    ip: String,
    /// Published node port → host port (control planes: [`crate::CONTROL_PLANE_PORTS`]).
    #[serde(default)]
    ports: BTreeMap<u16, u16>,
    files: BTreeMap<String, String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct FakeState {
    nodes: BTreeMap<String, FakeNode>,
    networks: BTreeMap<String, String>,
    volumes: BTreeMap<String, String>,
    log: Vec<Recorded>,
    responses: Vec<Response>,
    next_port: u16,
}

/// The fake engine's state file, shared by a [`FakeDriver`] and its runners.
#[derive(Debug, Clone)]
pub struct FakeEngine {
    path: PathBuf,
}

impl FakeEngine {
    /// An engine whose state lives in `path` (created on first write).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FakeEngine { path: path.into() }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> Result<T, DriverError> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(|e| DriverError::io("create fake engine dir", e))?;
        }
        let lock_path = self.path.with_extension("lock");
        let lock =
            File::create(&lock_path).map_err(|e| DriverError::io("open fake engine lock", e))?;
        lock.lock()
            .map_err(|e| DriverError::io("lock fake engine", e))?;
        let mut state: FakeState = match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| DriverError::engine("read fake engine state", e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FakeState {
                next_port: 40000,
                ..Default::default()
            },
            Err(e) => return Err(DriverError::io("read fake engine state", e)),
        };
        let out = f(&mut state);
        let tmp = self.path.with_extension("tmp");
        let mut file =
            File::create(&tmp).map_err(|e| DriverError::io("write fake engine state", e))?;
        file.write_all(&serde_json::to_vec_pretty(&state).expect("fake state serializes"))
            .map_err(|e| DriverError::io("write fake engine state", e))?;
        fs::rename(&tmp, &self.path).map_err(|e| DriverError::io("write fake engine state", e))?;
        Ok(out)
    }

    /// Every command run so far, in order.
    pub fn log(&self) -> Vec<Recorded> {
        self.with_state(|s| s.log.clone()).unwrap_or_default()
    }

    /// Adds a scripted answer; later additions win over earlier ones.
    pub fn respond(&self, response: Response) {
        let _ = self.with_state(|s| s.responses.push(response));
    }

    /// The contents of a file written into a node with `copy_to`.
    pub fn file(&self, node: &str, path: &str) -> Option<String> {
        self.with_state(|s| s.nodes.get(node).and_then(|n| n.files.get(path).cloned()))
            .ok()
            .flatten()
    }

    /// Names of all nodes, of any profile.
    pub fn node_names(&self) -> Vec<String> {
        self.with_state(|s| s.nodes.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Path of the state file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn injected_failure(op: &str, node: &str, argv: Option<&[String]>) -> Option<DriverError> {
    let spec = std::env::var("MINIK_FAKE_FAIL").ok()?;
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let mut parts = item.splitn(3, ':');
        let (o, n, cmd) = (parts.next()?, parts.next().unwrap_or("*"), parts.next());
        if o != op || (n != "*" && n != node) {
            continue;
        }
        if let (Some(cmd), Some(argv)) = (cmd, argv)
            && argv.first().map(String::as_str) != Some(cmd)
        {
            continue;
        }
        return Some(DriverError::engine(
            format!("{op} {node}"),
            "injected failure (MINIK_FAKE_FAIL)",
        ));
    }
    None
}

/// A driver over a [`FakeEngine`].
#[derive(Debug, Clone)]
pub struct FakeDriver {
    engine: FakeEngine,
}

impl FakeDriver {
    pub fn new(engine: FakeEngine) -> Self {
        FakeDriver { engine }
    }

    pub fn engine(&self) -> &FakeEngine {
        &self.engine
    }

    fn set_state(
        &self,
        node: &str,
        op: &str,
        to: HostState,
        allowed: &[HostState],
    ) -> Result<(), DriverError> {
        if let Some(err) = injected_failure(op, node, None) {
            return Err(err);
        }
        self.engine.with_state(|s| match s.nodes.get_mut(node) {
            None => Err(DriverError::NodeNotFound {
                node: node.to_string(),
            }),
            Some(n) if allowed.contains(&n.state) || n.state == to => {
                n.state = to;
                Ok(())
            }
            Some(n) => Err(DriverError::NodeNotRunning {
                node: node.to_string(),
                state: n.state.to_string(),
            }),
        })?
    }
}

impl Driver for FakeDriver {
    type Runner = FakeRunner;

    fn name(&self) -> &'static str {
        "fake"
    }

    async fn check(&self) -> Result<EngineInfo, DriverError> {
        if std::env::var_os("MINIK_FAKE_UNREACHABLE").is_some() {
            return Err(DriverError::EngineUnreachable {
                engine: "fake".into(),
                endpoint: self.engine.path.display().to_string(),
                detail: "MINIK_FAKE_UNREACHABLE is set".into(),
            });
        }
        Ok(EngineInfo {
            version: "fake 1.0".into(),
            api_version: None,
            cgroup_version: Some("2".into()),
        })
    }

    async fn prepare(&self, cluster: &ClusterRequest) -> Result<(), DriverError> {
        if let Some(err) = injected_failure("prepare", "*", None) {
            return Err(err);
        }
        self.engine.with_state(|s| {
            s.networks
                .insert(cluster.profile.clone(), cluster.profile.clone());
        })
    }

    async fn create_node(
        &self,
        cluster: &ClusterRequest,
        node: &NodeSpec,
        _observer: &dyn Observer,
    ) -> Result<(), DriverError> {
        if let Some(err) = injected_failure("create_node", &node.name, None) {
            // Like a real engine, a failed create may leave a volume behind for cleanup to find.
            let _ = self.engine.with_state(|s| {
                s.volumes
                    .insert(format!("{}-var", node.name), cluster.profile.clone());
            });
            return Err(err);
        }
        self.engine.with_state(|s| {
            if s.nodes.contains_key(&node.name) {
                return Err(DriverError::NameConflict {
                    kind: "node".into(),
                    name: node.name.clone(),
                });
            }
            let mut ports = BTreeMap::new();
            if node.role == Role::ControlPlane {
                for port in crate::CONTROL_PLANE_PORTS {
                    s.next_port += 1;
                    ports.insert(port, s.next_port);
                }
            }
            s.volumes
                .insert(format!("{}-var", node.name), cluster.profile.clone());
            s.nodes.insert(
                node.name.clone(),
                FakeNode {
                    profile: cluster.profile.clone(),
                    role: node.role,
                    index: node.index,
                    state: HostState::Running,
                    image: cluster.image.clone(),
                    ip: format!("192.168.49.{}", node.index + 2),
                    ports,
                    files: BTreeMap::new(),
                },
            );
            Ok(())
        })?
    }

    async fn start_node(&self, node: &str) -> Result<(), DriverError> {
        self.set_state(
            node,
            "start_node",
            HostState::Running,
            &[HostState::Stopped],
        )
    }

    async fn stop_node(&self, node: &str, _timeout: Duration) -> Result<(), DriverError> {
        self.set_state(
            node,
            "stop_node",
            HostState::Stopped,
            &[HostState::Running, HostState::Paused],
        )
    }

    async fn pause_node(&self, node: &str) -> Result<(), DriverError> {
        self.set_state(node, "pause_node", HostState::Paused, &[HostState::Running])
    }

    async fn unpause_node(&self, node: &str) -> Result<(), DriverError> {
        self.set_state(
            node,
            "unpause_node",
            HostState::Running,
            &[HostState::Paused],
        )
    }

    async fn delete_node(&self, node: &str) -> Result<DeleteReport, DriverError> {
        if let Some(err) = injected_failure("delete_node", node, None) {
            return Err(err);
        }
        self.engine.with_state(|s| {
            let mut report = DeleteReport::default();
            if s.nodes.remove(node).is_some() {
                report.nodes.push(node.to_string());
            }
            let volume = format!("{node}-var");
            if s.volumes.remove(&volume).is_some() {
                report.volumes.push(volume);
            }
            report
        })
    }

    async fn delete_profile(&self, profile: &str) -> Result<DeleteReport, DriverError> {
        self.engine.with_state(|s| {
            let mut report = DeleteReport::default();
            s.nodes.retain(|name, n| {
                let keep = n.profile != profile;
                if !keep {
                    report.nodes.push(name.clone());
                }
                keep
            });
            s.volumes.retain(|name, p| {
                let keep = p != profile;
                if !keep {
                    report.volumes.push(name.clone());
                }
                keep
            });
            s.networks.retain(|name, p| {
                let keep = p != profile;
                if !keep {
                    report.networks.push(name.clone());
                }
                keep
            });
            report
        })
    }

    async fn list_nodes(&self, profile: &str) -> Result<Vec<NodeInfo>, DriverError> {
        self.engine.with_state(|s| {
            let mut nodes: Vec<NodeInfo> = s
                .nodes
                .iter()
                .filter(|(_, n)| n.profile == profile)
                .map(|(name, n)| NodeInfo {
                    name: name.clone(),
                    role: n.role,
                    index: n.index,
                    state: n.state,
                    ip: (n.state != HostState::Stopped).then(|| n.ip.clone()),
                    api_port: n.ports.get(&crate::API_SERVER_PORT).copied(),
                    ports: n.ports.clone(),
                    detail: None,
                })
                .collect();
            nodes.sort_by_key(|n| n.index);
            nodes
        })
    }

    async fn list_profiles(&self) -> Result<Vec<String>, DriverError> {
        self.engine.with_state(|s| {
            let mut names: Vec<String> = s
                .nodes
                .values()
                .map(|n| n.profile.clone())
                .chain(s.volumes.values().cloned())
                .chain(s.networks.values().cloned())
                .collect();
            names.sort();
            names.dedup();
            names
        })
    }

    fn runner(&self, node: &str) -> FakeRunner {
        FakeRunner {
            engine: self.engine.clone(),
            node: node.to_string(),
        }
    }
}

/// Records every command and answers from scripted [`Response`]s (else exit 0, no output).
///
/// Built-in answers make a fake node look booted: `systemctl is-system-running` prints
/// `running`, `systemctl is-active ...` prints `active`.
#[derive(Debug, Clone)]
pub struct FakeRunner {
    engine: FakeEngine,
    node: String,
}

impl FakeRunner {
    /// A runner for `node` that records into `engine` whether or not the node exists.
    pub fn new(engine: FakeEngine, node: impl Into<String>) -> Self {
        FakeRunner {
            engine,
            node: node.into(),
        }
    }
}

/// Where the fake `kubeadm init` writes its admin kubeconfig (kubeadm's path).
pub const FAKE_ADMIN_CONF_PATH: &str = "/etc/kubernetes/admin.conf";

/// The admin kubeconfig the fake `kubeadm init` writes: kubeadm's names, the node's address,
/// placeholder credentials.
pub fn fake_admin_conf(ip: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubernetes\n  cluster:\n    server: https://{ip}:6443\n    certificate-authority-data: ZmFrZS1jYQ==\nusers:\n- name: kubernetes-admin\n  user:\n    client-certificate-data: ZmFrZS1jZXJ0\n    client-key-data: ZmFrZS1rZXk=\ncontexts:\n- name: kubernetes-admin@kubernetes\n  context:\n    cluster: kubernetes\n    user: kubernetes-admin\ncurrent-context: kubernetes-admin@kubernetes\n"
    )
}

fn builtin_response(argv: &[String]) -> (i64, String) {
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["systemctl", "is-system-running", ..] => (0, "running\n".into()),
        ["systemctl", "is-active", ..] => (0, "active\n".into()),
        ["stat", "-fc", "%T", "/sys/fs/cgroup"] => (0, "cgroup2fs\n".into()),
        _ => (0, String::new()),
    }
}

impl Runner for FakeRunner {
    fn node(&self) -> &str {
        &self.node
    }

    async fn exec_streaming<'a>(
        &'a self,
        request: ExecRequest,
        stdout: &'a mut (dyn AsyncWrite + Send + Unpin),
        stderr: &'a mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<i64, DriverError> {
        {
            let stdin = match request.stdin {
                StdinSource::None => None,
                StdinSource::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                StdinSource::Stream(mut r) => {
                    let mut buf = Vec::new();
                    r.read_to_end(&mut buf)
                        .await
                        .map_err(|e| DriverError::io("read stdin", e))?;
                    Some(format!("<{} bytes>", buf.len()))
                }
            };
            let argv = request.argv;
            let node = self.node.clone();
            let failure = injected_failure("exec", &node, Some(&argv));
            let (code, out, err) = self.engine.with_state(|s| {
                match s.nodes.get(&node) {
                    Some(n) if n.state != HostState::Running => {
                        return Err(DriverError::NodeNotRunning {
                            node: node.clone(),
                            state: n.state.to_string(),
                        });
                    }
                    _ => {}
                }
                s.log.push(Recorded {
                    node: node.clone(),
                    argv: argv.clone(),
                    stdin,
                });
                let scripted = s.responses.iter().rev().find(|r| {
                    (r.node == "*" || r.node == node)
                        && argv.len() >= r.prefix.len()
                        && argv.iter().zip(&r.prefix).all(|(a, p)| a == p)
                });
                Ok(match scripted {
                    Some(r) => (r.exit_code, r.stdout.clone(), r.stderr.clone()),
                    None => {
                        // Like kubeadm, a successful init leaves an admin kubeconfig behind.
                        if argv.len() > 1
                            && argv[0] == "kubeadm"
                            && argv[1] == "init"
                            && let Some(n) = s.nodes.get_mut(&node)
                        {
                            n.files
                                .insert(FAKE_ADMIN_CONF_PATH.into(), fake_admin_conf(&n.ip));
                        }
                        let (c, o) = builtin_response(&argv);
                        (c, o, String::new())
                    }
                })
            })??;
            if let Some(err) = failure {
                return Err(err);
            }
            stdout
                .write_all(out.as_bytes())
                .await
                .map_err(|e| DriverError::io("write stdout", e))?;
            stderr
                .write_all(err.as_bytes())
                .await
                .map_err(|e| DriverError::io("write stderr", e))?;
            Ok(code)
        }
    }

    async fn copy_to(&self, path: &str, contents: &[u8], mode: u32) -> Result<(), DriverError> {
        let node = self.node.clone();
        self.engine.with_state(|s| {
            s.log.push(Recorded {
                node: node.clone(),
                argv: vec!["<copy>".into(), path.to_string(), format!("{mode:o}")],
                stdin: None,
            });
            if let Some(n) = s.nodes.get_mut(&node) {
                n.files.insert(
                    path.to_string(),
                    String::from_utf8_lossy(contents).into_owned(),
                );
            }
        })
    }

    async fn read_file(&self, path: &str) -> Result<Vec<u8>, DriverError> {
        let node = self.node.clone();
        self.engine
            .with_state(|s| s.nodes.get(&node).and_then(|n| n.files.get(path).cloned()))?
            .map(String::into_bytes)
            .ok_or_else(|| DriverError::Exec {
                node,
                detail: format!("{path}: no such file"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(profile: &str) -> ClusterRequest {
        ClusterRequest {
            profile: profile.into(),
            image: "img".into(),
            cpus: None,
            memory_mib: None,
            env: BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn lifecycle_and_recording() {
        let dir = tempfile_dir();
        let driver = FakeDriver::new(FakeEngine::new(dir.join("engine.json")));
        let req = request("p");
        driver.prepare(&req).await.unwrap();
        let spec = NodeSpec {
            name: "p".into(),
            role: Role::ControlPlane,
            index: 0,
        };
        driver
            .create_node(&req, &spec, &crate::NullObserver)
            .await
            .unwrap();
        assert!(matches!(
            driver.create_node(&req, &spec, &crate::NullObserver).await,
            Err(DriverError::NameConflict { .. })
        ));
        let runner = driver.runner("p");
        let out = runner
            .run(&["systemctl", "is-active", "containerd"])
            .await
            .unwrap();
        assert_eq!(out.stdout_str(), "active\n");
        driver.pause_node("p").await.unwrap();
        assert!(
            runner.run(&["true"]).await.is_err(),
            "paused node refuses exec"
        );
        driver.unpause_node("p").await.unwrap();
        driver.stop_node("p", Duration::from_secs(1)).await.unwrap();
        assert_eq!(
            driver.list_nodes("p").await.unwrap()[0].state,
            HostState::Stopped
        );
        let report = driver.delete_profile("p").await.unwrap();
        assert_eq!(report.nodes, vec!["p".to_string()]);
        assert_eq!(report.volumes, vec!["p-var".to_string()]);
        assert!(driver.list_profiles().await.unwrap().is_empty());
        assert_eq!(driver.engine().log().len(), 1);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "minik-fake-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }
}
