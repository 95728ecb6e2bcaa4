//! Plain data shared by every driver: what to create, and what exists.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Label keys put on every resource minik creates. Values are the profile, node and role.
pub mod labels {
    /// Marks a resource as created by minik (value `true`).
    pub const CREATED_BY: &str = "io.minik.created-by";
    /// The profile a resource belongs to.
    pub const PROFILE: &str = "io.minik.profile";
    /// The node a resource belongs to (absent on profile-wide resources such as networks).
    pub const NODE: &str = "io.minik.node";
    /// `control-plane` or `worker`.
    pub const ROLE: &str = "io.minik.role";
    /// The node's index within the profile (0 is the first control plane).
    pub const INDEX: &str = "io.minik.index";
}

/// A node's role in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    ControlPlane,
    Worker,
}

impl Role {
    /// The label / display value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ControlPlane => "control-plane",
            Role::Worker => "worker",
        }
    }

    /// Parses a label value.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "control-plane" => Some(Role::ControlPlane),
            "worker" => Some(Role::Worker),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Container / VM name and hostname, e.g. `minik` or `minik-m02`.
    pub name: String,
    pub role: Role,
    /// 0-based position; the driver derives stable addresses from it.
    pub index: u32,
}

/// Everything a driver needs to create a profile's nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRequest {
    pub profile: String,
    /// Node image (containers) or base disk name (VMs).
    pub image: String,
    /// CPUs per node; `None` = no limit.
    pub cpus: Option<f64>,
    /// Memory per node in MiB; `None` = no limit.
    pub memory_mib: Option<u64>,
    /// Extra environment for the node's init (e.g. proxy settings).
    pub env: BTreeMap<String, String>,
}

/// The live state of a node's host (container or VM), as minikube names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostState {
    Running,
    Paused,
    Stopped,
    /// Being created or started.
    Starting,
    /// Exists but is unusable (dead, restarting in a loop, killed VM).
    Error,
    Nonexistent,
}

impl HostState {
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Running => "Running",
            HostState::Paused => "Paused",
            HostState::Stopped => "Stopped",
            HostState::Starting => "Starting",
            HostState::Error => "Error",
            HostState::Nonexistent => "Nonexistent",
        }
    }
}

impl fmt::Display for HostState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a driver knows about an existing node, read live from the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    pub role: Role,
    pub index: u32,
    pub state: HostState,
    /// The node's address on the profile network, when running.
    pub ip: Option<String>,
    /// Host port that forwards to the node's API server port (6443), if published.
    pub api_port: Option<u16>,
    /// Every published node port (node port → host port on 127.0.0.1), the API server's
    /// included; empty for workers.
    #[serde(default)]
    pub ports: BTreeMap<u16, u16>,
    /// Engine-specific detail for humans (e.g. "exited (137)").
    pub detail: Option<String>,
}

/// Facts about the engine a driver talks to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// e.g. "Docker Engine 20.10.24".
    pub version: String,
    /// API version in use, if the engine has one.
    pub api_version: Option<String>,
    /// `1` or `2`.
    pub cgroup_version: Option<String>,
}

/// What [`crate::Driver::delete_profile`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteReport {
    pub nodes: Vec<String>,
    pub volumes: Vec<String>,
    pub networks: Vec<String>,
    pub files: Vec<String>,
}

impl DeleteReport {
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
            && self.volumes.is_empty()
            && self.networks.is_empty()
            && self.files.is_empty()
    }
}

/// The port the Kubernetes API server listens on inside a control-plane node.
pub const API_SERVER_PORT: u16 = 6443;

/// The node's HTTP port: the ingress addon's controller binds host ports 80 and 443 on the
/// control plane.
pub const HTTP_PORT: u16 = 80;
/// The node's HTTPS port (see [`HTTP_PORT`]).
pub const HTTPS_PORT: u16 = 443;

/// The node ports every control plane publishes on the host's `127.0.0.1`, each at a free
/// host port picked at creation and kept for the node's life: the API server, and HTTP and
/// HTTPS for Ingress (so it is reachable where the node network is not routable from the
/// host, as on Docker Desktop).
pub const CONTROL_PLANE_PORTS: [u16; 3] = [API_SERVER_PORT, HTTP_PORT, HTTPS_PORT];
// Drivers rely on the API server coming first.
const _: () = assert!(CONTROL_PLANE_PORTS[0] == API_SERVER_PORT);
