//! Where the qemu driver keeps its files, and the small JSON records it keeps there.
//!
//! Everything that belongs to a profile lives under `MINIK_HOME/profiles/NAME/qemu/`, so deleting
//! that directory (after stopping the VMs) removes all of it, and a profile whose `profile.json`
//! is gone is still found by its `qemu/settings.json`:
//!
//! ```text
//! profiles/NAME/qemu/
//!   settings.json            created-by marker, image, accelerator, disk size, private segment
//!   id_ed25519, .pub         the profile's SSH key pair (root's authorized key in every node)
//!   base/                    the base disk, kernel and initrd, hard-linked from the cache
//!   nodes/NODE/
//!     node.json              the node's role, index, sizes, host ports, MACs, address
//!     disk.qcow2             qcow2 overlay on ../../base/disk.qcow2 (the node's own data)
//!     qmp.sock  qemu.pid  serial.log
//!     ssh_host_ed25519_key   the node's SSH host key (handed to the VM through fw_cfg)
//!     known_hosts            its public half, pinned for `ssh -o HostKeyAlias=NODE`
//! ```
//!
//! Base disks are built once per node image and VM recipe into `MINIK_HOME/cache/vm/NAME/`
//! ([`crate::disk`]).

use minik_driver_api::{DriverError, Role};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The `created_by` value of every record minik writes (the VM equivalent of the
/// `io.minik.created-by` label).
pub const CREATED_BY: &str = "minik";

/// The driver's two roots: the profiles directory and the base disk cache.
#[derive(Debug, Clone)]
pub struct Layout {
    profiles: PathBuf,
    disks: PathBuf,
}

impl Layout {
    /// `profiles` is `MINIK_HOME/profiles`, `disks` the base disk cache (`MINIK_HOME/cache/vm`).
    pub fn new(profiles: impl Into<PathBuf>, disks: impl Into<PathBuf>) -> Layout {
        Layout {
            profiles: profiles.into(),
            disks: disks.into(),
        }
    }

    /// `MINIK_HOME/profiles`.
    pub fn profiles_dir(&self) -> &Path {
        &self.profiles
    }

    /// The base disk cache.
    pub fn disk_cache_dir(&self) -> &Path {
        &self.disks
    }

    /// The driver's files of `profile`.
    pub fn profile(&self, profile: &str) -> ProfileFiles {
        ProfileFiles {
            dir: self.profiles.join(profile).join("qemu"),
        }
    }

    /// Names of the profiles that have a qemu directory written by minik.
    pub fn profiles_with_vms(&self) -> Result<Vec<String>, DriverError> {
        let mut names = Vec::new();
        for name in dir_names(&self.profiles)? {
            let files = self.profile(&name);
            let ours = match ProfileSettings::load(&files.settings()) {
                Ok(Some(s)) => s.created_by == CREATED_BY,
                // A settings file minik cannot read is still minik's (nobody else writes
                // there); `delete` must be able to find it.
                Ok(None) => files.nodes_dir().is_dir() || files.dir().is_dir(),
                Err(_) => true,
            };
            if ours && files.dir().is_dir() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// The profile and files of the node called `node`, in whichever profile it is.
    pub fn find_node(&self, node: &str) -> Result<Option<(String, NodeFiles)>, DriverError> {
        if !valid_name(node) {
            return Ok(None);
        }
        for profile in dir_names(&self.profiles)? {
            let files = self.profile(&profile).node(node);
            if files.dir().is_dir() {
                return Ok(Some((profile, files)));
            }
        }
        Ok(None)
    }
}

/// Subdirectory names of `dir` (empty when it does not exist).
fn dir_names(dir: &Path) -> Result<Vec<String>, DriverError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(DriverError::io(format!("read {}", dir.display()), e)),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| valid_name(n))
        .collect();
    names.sort();
    Ok(names)
}

/// Whether `name` can be a profile or node directory name (no separators, no dot files).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A profile's qemu directory.
#[derive(Debug, Clone)]
pub struct ProfileFiles {
    dir: PathBuf,
}

impl ProfileFiles {
    /// `profiles/NAME/qemu`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The driver's settings for the profile.
    pub fn settings(&self) -> PathBuf {
        self.dir.join("settings.json")
    }
    /// The profile's SSH private key.
    pub fn key(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }
    /// Its public half.
    pub fn public_key(&self) -> PathBuf {
        self.dir.join("id_ed25519.pub")
    }
    /// The profile's copy of the base disk, kernel and initrd.
    pub fn base(&self) -> BaseFiles {
        BaseFiles::at(self.dir.join("base"))
    }
    /// `nodes/`.
    pub fn nodes_dir(&self) -> PathBuf {
        self.dir.join("nodes")
    }
    /// The files of node `name`.
    pub fn node(&self, name: &str) -> NodeFiles {
        NodeFiles {
            dir: self.nodes_dir().join(name),
        }
    }
    /// Names of the nodes that have a directory.
    pub fn node_names(&self) -> Result<Vec<String>, DriverError> {
        dir_names(&self.nodes_dir())
    }
}

/// One node's directory.
#[derive(Debug, Clone)]
pub struct NodeFiles {
    dir: PathBuf,
}

impl NodeFiles {
    /// `nodes/NODE`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The node's [`NodeConfig`].
    pub fn config(&self) -> PathBuf {
        self.dir.join("node.json")
    }
    /// The qcow2 overlay.
    pub fn disk(&self) -> PathBuf {
        self.dir.join("disk.qcow2")
    }
    /// QMP's unix socket.
    pub fn qmp(&self) -> PathBuf {
        self.dir.join("qmp.sock")
    }
    /// qemu's pidfile (qemu removes it when it exits normally; a pidfile whose process is gone
    /// means qemu was killed or crashed).
    pub fn pidfile(&self) -> PathBuf {
        self.dir.join("qemu.pid")
    }
    /// The serial console of the current boot.
    pub fn serial_log(&self) -> PathBuf {
        self.dir.join("serial.log")
    }
    /// The node's SSH host key.
    pub fn host_key(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key")
    }
    /// The host key's public half.
    pub fn host_key_pub(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key.pub")
    }
    /// The known_hosts file pinning the host key under the node's name.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }
    /// qemu's own output of the last launch (errors before it daemonized).
    pub fn launch_log(&self) -> PathBuf {
        self.dir.join("qemu.log")
    }
}

/// A base disk with its kernel and initrd: in the cache, or a profile's copy.
#[derive(Debug, Clone)]
pub struct BaseFiles {
    dir: PathBuf,
}

impl BaseFiles {
    /// The base files in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> BaseFiles {
        BaseFiles { dir: dir.into() }
    }
    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The root filesystem as qcow2.
    pub fn disk(&self) -> PathBuf {
        self.dir.join("disk.qcow2")
    }
    /// The kernel.
    pub fn kernel(&self) -> PathBuf {
        self.dir.join("vmlinuz")
    }
    /// The initrd.
    pub fn initrd(&self) -> PathBuf {
        self.dir.join("initrd.img")
    }
    /// Where the files came from ([`crate::disk::DiskSource`]).
    pub fn source(&self) -> PathBuf {
        self.dir.join("source.json")
    }
    /// Whether all three boot files are there.
    pub fn is_complete(&self) -> bool {
        self.disk().is_file() && self.kernel().is_file() && self.initrd().is_file()
    }
}

/// The private network segment of a profile: a qemu multicast socket netdev that all of the
/// profile's VMs join (no root needed), with static addresses in `subnet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// Multicast group (239.0.0.0/8, administratively scoped).
    pub group: Ipv4Addr,
    /// UDP port of the group.
    pub port: u16,
    /// The network address of the node subnet (a /24).
    pub subnet: Ipv4Addr,
}

impl Segment {
    /// The prefix length of the node subnet.
    pub const PREFIX: u8 = 24;

    /// The address of the node with `index`: `.2 + index` (like the container drivers).
    pub fn node_ip(&self, index: u32) -> Option<Ipv4Addr> {
        let host = 2u32.checked_add(index).filter(|h| *h < 255)?;
        let [a, b, c, _] = self.subnet.octets();
        Some(Ipv4Addr::new(a, b, c, host as u8))
    }
}

/// What the driver keeps about a profile (`settings.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileSettings {
    /// Always [`CREATED_BY`].
    pub created_by: String,
    /// The profile's name.
    pub profile: String,
    /// The node image the base disk was made from.
    pub image: String,
    /// The accelerator the profile's VMs run with; `None` until the first node decides it.
    #[serde(default)]
    pub accel: Option<crate::machine::Accel>,
    /// Disk size of every node (the overlay's virtual size), MiB.
    pub disk_size_mib: u64,
    /// The node-to-node segment.
    pub segment: Segment,
}

impl ProfileSettings {
    /// Reads `path`; `None` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<ProfileSettings>, DriverError> {
        load_json(path)
    }

    /// Writes the settings atomically.
    pub fn save(&self, path: &Path) -> Result<(), DriverError> {
        save_json(path, self)
    }
}

/// What the driver keeps about a node (`node.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeConfig {
    /// Always [`CREATED_BY`].
    pub created_by: String,
    /// The profile the node belongs to.
    pub profile: String,
    /// The node's name (VM name and hostname).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its index in the profile.
    pub index: u32,
    /// vCPUs.
    pub cpus: u32,
    /// Memory, MiB.
    pub memory_mib: u64,
    /// Host port (127.0.0.1) forwarded to the VM's SSH port.
    pub ssh_port: u16,
    /// Host port (127.0.0.1) forwarded to the VM's API server port, on control planes.
    pub api_port: Option<u16>,
    /// Other forwarded ports, node port → host port (127.0.0.1): HTTP and HTTPS on control
    /// planes ([`minik_driver_api::CONTROL_PLANE_PORTS`]).
    #[serde(default)]
    pub published: BTreeMap<u16, u16>,
    /// MAC of the user-mode NIC.
    pub mac_user: String,
    /// MAC of the NIC on the profile's segment.
    pub mac_segment: String,
    /// The node's address on the segment.
    pub ip: Ipv4Addr,
    /// SMBIOS UUID (kubelet's system UUID; distinct per node).
    pub uuid: String,
}

impl NodeConfig {
    /// Reads `path`; `None` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<NodeConfig>, DriverError> {
        load_json(path)
    }

    /// Writes the config atomically.
    pub fn save(&self, path: &Path) -> Result<(), DriverError> {
        save_json(path, self)
    }
}

fn load_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, DriverError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            DriverError::engine(format!("read {}", path.display()), format!("corrupt: {e}"))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DriverError::io(format!("read {}", path.display()), e)),
    }
}

fn save_json<T: Serialize>(path: &Path, value: &T) -> Result<(), DriverError> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| DriverError::engine(format!("encode {}", path.display()), e))?;
    write_atomic(path, &bytes, 0o644)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// readers never see half a file. Creates the parent directory.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), DriverError> {
    let op = || format!("write {}", path.display());
    let dir = path
        .parent()
        .ok_or_else(|| DriverError::engine(op(), "no parent directory"))?;
    std::fs::create_dir_all(dir).map_err(|e| DriverError::io(op(), e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| DriverError::io(op(), e))?;
    tmp.write_all(bytes).map_err(|e| DriverError::io(op(), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| DriverError::io(op(), e))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.persist(path)
        .map_err(|e| DriverError::io(op(), e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses() {
        let s = Segment {
            group: Ipv4Addr::new(239, 1, 2, 3),
            port: 40000,
            subnet: Ipv4Addr::new(192, 168, 105, 0),
        };
        assert_eq!(s.node_ip(0), Some(Ipv4Addr::new(192, 168, 105, 2)));
        assert_eq!(s.node_ip(1), Some(Ipv4Addr::new(192, 168, 105, 3)));
        assert_eq!(s.node_ip(252), Some(Ipv4Addr::new(192, 168, 105, 254)));
        assert_eq!(s.node_ip(253), None);
    }

    #[test]
    fn finds_profiles_and_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().join("profiles"), dir.path().join("cache/vm"));
        assert!(layout.profiles_with_vms().unwrap().is_empty());
        let p = layout.profile("p");
        std::fs::create_dir_all(p.node("p-m02").dir()).unwrap();
        std::fs::create_dir_all(dir.path().join("profiles/docker-only")).unwrap();
        assert_eq!(layout.profiles_with_vms().unwrap(), vec!["p".to_string()]);
        let (profile, files) = layout.find_node("p-m02").unwrap().unwrap();
        assert_eq!(profile, "p");
        assert!(
            files
                .qmp()
                .ends_with("profiles/p/qemu/nodes/p-m02/qmp.sock")
        );
        assert!(layout.find_node("nope").unwrap().is_none());
        assert!(layout.find_node("../p").unwrap().is_none());
    }

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x/node.json");
        assert_eq!(NodeConfig::load(&path).unwrap(), None);
        let config = NodeConfig {
            created_by: CREATED_BY.into(),
            profile: "p".into(),
            name: "p".into(),
            role: Role::ControlPlane,
            index: 0,
            cpus: 2,
            memory_mib: 2048,
            ssh_port: 40001,
            api_port: Some(40002),
            published: BTreeMap::from([(80, 40003), (443, 40004)]),
            mac_user: "52:54:00:00:00:01".into(),
            mac_segment: "52:54:00:00:00:02".into(),
            ip: Ipv4Addr::new(192, 168, 105, 2),
            uuid: "00000000-0000-4000-8000-000000000000".into(),
        };
        config.save(&path).unwrap();
        assert_eq!(NodeConfig::load(&path).unwrap(), Some(config));
        std::fs::write(&path, "{broken").unwrap();
        assert!(NodeConfig::load(&path).is_err());
    }
}
