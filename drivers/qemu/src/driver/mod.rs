//! [`QemuDriver`]: node VMs with `qemu-system-*`; [`SshRunner`] (runner.rs): commands in them;
//! host.rs: what the host sees of a VM; ids.rs: ports, MACs and segments for new ones.

mod host;
mod ids;
mod runner;

use host::*;
pub use host::{find_program, node_state, run_state};
use ids::*;
pub use runner::SshRunner;

use crate::accel::{self, Accel, AccelChoice};
use crate::disk;
use crate::keys;
use crate::layout::{
    BaseFiles, CREATED_BY, Layout, NodeConfig, NodeFiles, ProfileFiles, ProfileSettings, Segment,
};
use crate::process;
use crate::qmp::{self, Qmp, QmpError};
use crate::vm::{self, Arch, VmSpec};
use minik_driver_api::{
    API_SERVER_PORT, CONTROL_PLANE_PORTS, ClusterRequest, DeleteReport, Driver, DriverError,
    EngineInfo, HostState, NodeInfo, NodeSpec, Observer, Role, Runner,
};
use minik_driver_docker::DockerDriver;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// vCPUs per node when `--cpus` is not given.
pub const DEFAULT_CPUS: u32 = 2;
/// Memory per node when `--memory` is not given, MiB.
pub const DEFAULT_MEMORY_MIB: u64 = 2048;
/// Disk per node when `--disk-size` is not given, MiB (the overlay grows as it is written).
pub const DEFAULT_DISK_MIB: u64 = 20 * 1024;
/// The node subnet on every profile's private segment (each profile has its own segment, so
/// they do not collide).
pub const SEGMENT_SUBNET: Ipv4Addr = Ipv4Addr::new(192, 168, 105, 0);
/// How long a VM may take from launch to answering on SSH, unless set otherwise. Under TCG
/// with several VMs on two cores a boot takes about a minute.
pub const DEFAULT_SSH_TIMEOUT: Duration = Duration::from_secs(300);
/// How long one QMP status query may take before the VM counts as not answering.
const STATUS_TIMEOUT: Duration = Duration::from_secs(3);
/// How often `stop` presses the ACPI power button again while the guest is still up.
const POWERDOWN_REPEAT: Duration = Duration::from_secs(3);
/// Environment: the accelerator (`auto`, `kvm`, `hvf`, `tcg`).
pub const ACCEL_ENV: &str = "MINIK_QEMU_ACCEL";
/// Environment: the qemu system emulator to run (name on PATH or path).
pub const QEMU_SYSTEM_ENV: &str = "MINIK_QEMU_SYSTEM";
/// Environment: the qemu-img to run (name on PATH or path).
pub const QEMU_IMG_ENV: &str = "MINIK_QEMU_IMG";

/// What the user chose for the qemu driver, on top of the [`ClusterRequest`].
#[derive(Debug, Clone)]
pub struct QemuOptions {
    /// An explicit accelerator choice (`--qemu-accel`, [`ACCEL_ENV`]). `None` or `Auto`: what
    /// the profile recorded, else probe.
    pub accel: Option<AccelChoice>,
    /// The disk size of a new profile's nodes, MiB (`--disk-size`).
    pub disk_size_mib: Option<u64>,
    /// The system emulator ([`QEMU_SYSTEM_ENV`]); default `qemu-system-<arch>` on PATH.
    pub qemu_system: Option<PathBuf>,
    /// qemu-img ([`QEMU_IMG_ENV`]); default `qemu-img` on PATH.
    pub qemu_img: Option<PathBuf>,
    /// Launch-to-SSH limit.
    pub ssh_timeout: Duration,
}

impl Default for QemuOptions {
    fn default() -> Self {
        QemuOptions {
            accel: None,
            disk_size_mib: None,
            qemu_system: None,
            qemu_img: None,
            ssh_timeout: DEFAULT_SSH_TIMEOUT,
        }
    }
}

impl QemuOptions {
    /// Options from the environment ([`ACCEL_ENV`], [`QEMU_SYSTEM_ENV`], [`QEMU_IMG_ENV`]).
    pub fn from_env() -> Result<QemuOptions, DriverError> {
        let accel = match std::env::var(ACCEL_ENV) {
            Ok(v) if !v.trim().is_empty() => Some(AccelChoice::parse(&v).ok_or_else(|| {
                DriverError::engine(
                    format!("read {ACCEL_ENV}"),
                    format!("{v:?} is not one of auto, kvm, hvf, tcg"),
                )
            })?),
            _ => None,
        };
        let path = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Ok(QemuOptions {
            accel,
            qemu_system: path(QEMU_SYSTEM_ENV),
            qemu_img: path(QEMU_IMG_ENV),
            ..QemuOptions::default()
        })
    }
}

/// The qemu driver: every node is a VM booted from the profile's base disk, with a qcow2
/// overlay of its own, user-mode networking (SSH and the API server forwarded to 127.0.0.1) and
/// a NIC on the profile's private multicast segment. See the crate docs.
#[derive(Debug, Clone)]
pub struct QemuDriver {
    layout: Layout,
    options: QemuOptions,
    arch: Option<Arch>,
    /// Held while the first node of a profile decides the accelerator, so parallel creates
    /// probe once.
    accel_lock: Arc<Mutex<()>>,
}

impl QemuDriver {
    /// A driver keeping its files in `layout`.
    pub fn new(layout: Layout, options: QemuOptions) -> QemuDriver {
        QemuDriver {
            layout,
            options,
            arch: Arch::host(),
            accel_lock: Arc::new(Mutex::new(())),
        }
    }

    /// Where the driver keeps its files.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The options in use.
    pub fn options(&self) -> &QemuOptions {
        &self.options
    }

    /// Sets an explicit accelerator choice (overrides the environment).
    pub fn set_accel(&mut self, choice: AccelChoice) {
        self.options.accel = Some(choice);
    }

    /// Sets the disk size for new profiles, MiB.
    pub fn set_disk_size_mib(&mut self, mib: u64) {
        self.options.disk_size_mib = Some(mib);
    }

    fn arch(&self) -> Result<Arch, DriverError> {
        self.arch.ok_or_else(|| DriverError::EngineNotFound {
            engine: "qemu".into(),
            endpoint: format!("qemu-system-{}", std::env::consts::ARCH),
        })
    }

    /// The system emulator to run.
    pub fn qemu_system(&self) -> PathBuf {
        self.options
            .qemu_system
            .clone()
            .unwrap_or_else(|| PathBuf::from(self.arch.unwrap_or(Arch::X86_64).qemu_system()))
    }

    /// The qemu-img to run.
    pub fn qemu_img(&self) -> PathBuf {
        self.options
            .qemu_img
            .clone()
            .unwrap_or_else(|| PathBuf::from("qemu-img"))
    }

    /// The cached base disk made from node image `image`.
    pub fn base_disk(&self, image: &str) -> BaseFiles {
        BaseFiles::at(self.layout.disk_cache_dir().join(disk::disk_name(image)))
    }

    /// Builds the base disk of `image` with the engine behind `docker` (see [`crate::disk`]).
    pub async fn build_base_disk<F>(
        &self,
        docker: &DockerDriver,
        image: &str,
        on_line: F,
    ) -> Result<BaseFiles, DriverError>
    where
        F: FnMut(&str) + Send,
    {
        let dest = self.base_disk(image);
        disk::build(docker, image, &dest, &self.qemu_img(), on_line).await?;
        Ok(dest)
    }

    /// The node's files and config; [`DriverError::NodeNotFound`] when there is no such VM.
    fn node(&self, node: &str) -> Result<(ProfileFiles, NodeFiles, NodeConfig), DriverError> {
        let not_found = || DriverError::NodeNotFound {
            node: node.to_string(),
        };
        let (profile, files) = self.layout.find_node(node)?.ok_or_else(not_found)?;
        let config = NodeConfig::load(&files.config())?.ok_or_else(not_found)?;
        Ok((self.layout.profile(&profile), files, config))
    }

    fn settings(&self, files: &ProfileFiles) -> Result<ProfileSettings, DriverError> {
        ProfileSettings::load(&files.settings())?.ok_or_else(|| {
            DriverError::engine(
                "read the profile's qemu settings",
                format!("{} is missing", files.settings().display()),
            )
        })
    }

    /// The accelerator for the profile's VMs: an explicit choice, else the recorded one, else
    /// the probe's answer (recorded).
    async fn decide_accel(
        &self,
        files: &ProfileFiles,
        observer: &dyn Observer,
    ) -> Result<Accel, DriverError> {
        let _guard = self.accel_lock.lock().await;
        let mut settings = self.settings(files)?;
        if let Some(AccelChoice::Fixed(accel)) = self.options.accel {
            if settings.accel != Some(accel) {
                settings.accel = Some(accel);
                settings.save(&files.settings())?;
            }
            return Ok(accel);
        }
        if let Some(accel) = settings.accel {
            return Ok(accel);
        }
        let arch = self.arch()?;
        let accel = match Accel::native() {
            None => {
                observer.warn(
                    "no hardware accelerator qemu supports on this OS: using TCG emulation (slow)",
                );
                Accel::Tcg
            }
            Some(native) => {
                let reason = match accel::unavailable_reason(native) {
                    Some(reason) => Some(reason),
                    None => {
                        observer.detail(&format!("probing {native} with a test boot"));
                        accel::probe(
                            &self.qemu_system(),
                            arch,
                            native,
                            &files.base().kernel(),
                            accel::PROBE_TIMEOUT,
                        )
                        .await
                        .err()
                    }
                };
                match reason {
                    None => native,
                    Some(reason) => {
                        observer.warn(&format!(
                            "{} cannot run VMs here ({reason}): using TCG emulation, several times slower \
                             (--qemu-accel tcg or {ACCEL_ENV}=tcg skips this check)",
                            native.as_str().to_uppercase()
                        ));
                        Accel::Tcg
                    }
                }
            }
        };
        settings.accel = Some(accel);
        settings.save(&files.settings())?;
        Ok(accel)
    }

    /// The accelerator to restart an existing node with.
    fn restart_accel(&self, files: &ProfileFiles) -> Result<Accel, DriverError> {
        if let Some(AccelChoice::Fixed(accel)) = self.options.accel {
            return Ok(accel);
        }
        Ok(self.settings(files)?.accel.unwrap_or(Accel::Tcg))
    }

    /// Starts the VM of a node whose files exist, and waits until it answers on SSH.
    async fn launch(
        &self,
        files: &ProfileFiles,
        node: &NodeFiles,
        mut config: NodeConfig,
        accel: Accel,
    ) -> Result<(), DriverError> {
        let arch = self.arch()?;
        if live_pid(node).is_some() {
            return Ok(());
        }
        clear_runtime_files(node);
        let public_key = keys::read_public(&files.key())?;
        let segment = self.settings(files)?.segment;
        let base = files.base();
        const ATTEMPTS: usize = 3;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // A port another program took since the last start: the SSH port is minik's own
            // business, so it moves; the API server port is in kubeconfigs, so it must stay.
            if !port_is_free(config.ssh_port) {
                config.ssh_port = free_ports(1)?[0];
                config.save(&node.config())?;
            }
            // HTTP/HTTPS forwards move too, with a note (nothing outside minik records them).
            let taken: Vec<u16> = config
                .published
                .iter()
                .filter(|(_, host)| !port_is_free(**host))
                .map(|(guest, _)| *guest)
                .collect();
            if !taken.is_empty() {
                let fresh = free_ports(taken.len())?;
                for (guest, host) in taken.into_iter().zip(fresh) {
                    tracing::info!(node = %config.name, guest, host, "forwarded host port was taken, moved");
                    config.published.insert(guest, host);
                }
                config.save(&node.config())?;
            }
            if let Some(api) = config.api_port
                && !port_is_free(api)
            {
                return Err(DriverError::engine(
                    format!("start node {}", config.name),
                    format!(
                        "127.0.0.1:{api}, the node's API server port, is in use by another program"
                    ),
                ));
            }
            let spec = VmSpec {
                name: &config.name,
                arch,
                accel,
                cpus: config.cpus,
                memory_mib: config.memory_mib,
                kernel: &base.kernel(),
                initrd: &base.initrd(),
                disk: &node.disk(),
                ssh_port: config.ssh_port,
                api_port: config.api_port,
                forwards: &config.published,
                mac_user: &config.mac_user,
                mac_segment: &config.mac_segment,
                segment_group: segment.group,
                segment_port: segment.port,
                ip: config.ip,
                prefix: Segment::PREFIX,
                authorized_key: &public_key,
                host_key: &node.host_key(),
                qmp: &node.qmp(),
                pidfile: &node.pidfile(),
                serial_log: &node.serial_log(),
                uuid: &config.uuid,
            };
            let args = vm::qemu_args(&spec)
                .map_err(|e| DriverError::engine(format!("start node {}", config.name), e))?;
            let log = std::fs::File::create(node.launch_log()).map_err(|e| {
                DriverError::io(format!("create {}", node.launch_log().display()), e)
            })?;
            let log2 = log
                .try_clone()
                .map_err(|e| DriverError::io("open the qemu log", e))?;
            tracing::debug!(node = %config.name, qemu = %self.qemu_system().display(), ?args, "launching");
            // qemu -daemonize returns once the VM is set up (sockets bound, pidfile written).
            let status = tokio::process::Command::new(self.qemu_system())
                .args(&args)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2)
                .status()
                .await
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => DriverError::EngineNotFound {
                        engine: "qemu".into(),
                        endpoint: self.qemu_system().display().to_string(),
                    },
                    _ => DriverError::io(format!("run {}", self.qemu_system().display()), e),
                })?;
            if status.success() {
                return self.wait_for_ssh(node, &config).await;
            }
            let output = std::fs::read_to_string(node.launch_log()).unwrap_or_default();
            let output = output.trim();
            if output.contains("host forwarding rule") && attempt < ATTEMPTS {
                tracing::debug!(node = %config.name, "forwarded port taken meanwhile, picking another");
                config.ssh_port = free_ports(1)?[0];
                config.save(&node.config())?;
                continue;
            }
            return Err(DriverError::engine(
                format!("start the VM of node {}", config.name),
                if output.is_empty() {
                    format!("qemu exited with {status}")
                } else {
                    output.to_string()
                },
            ));
        }
    }

    /// Waits until the VM's SSH server sends its banner. Fails early when qemu exits or the
    /// kernel panics, with the end of the serial console.
    async fn wait_for_ssh(&self, node: &NodeFiles, config: &NodeConfig) -> Result<(), DriverError> {
        let deadline = tokio::time::Instant::now() + self.options.ssh_timeout;
        loop {
            if live_pid(node).is_none() {
                return Err(DriverError::engine(
                    format!("boot node {}", config.name),
                    format!("the VM exited while booting{}", serial_tail(node)),
                ));
            }
            // One panic may be a fluke of emulated hardware (the kernel reboots after 10s and
            // usually comes up); a second one will not go away by waiting.
            let console = std::fs::read_to_string(node.serial_log()).unwrap_or_default();
            if console.matches("Kernel panic").count() >= 2 {
                return Err(DriverError::engine(
                    format!("boot node {}", config.name),
                    format!("the kernel panicked twice{}", serial_tail(node)),
                ));
            }
            if ssh_banner(config.ssh_port).await {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(DriverError::Timeout {
                    what: format!(
                        "SSH in node {} (serial console: {})",
                        config.name,
                        node.serial_log().display()
                    ),
                    seconds: self.options.ssh_timeout.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Sets the guest's clock to the host's. A paused VM's clock stands still (unlike a
    /// container's, which is the host's), so after a pause it is behind by the pause; nodes
    /// whose clocks disagree confuse certificates, leases and logs. Best effort.
    async fn sync_clock(&self, node: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let stamp = format!("@{}.{:09}", now.as_secs(), now.subsec_nanos());
        let runner = self.runner(node);
        let argv = ["date", "-u", "-s", stamp.as_str()];
        match tokio::time::timeout(Duration::from_secs(30), runner.run(&argv)).await {
            Ok(Ok(out)) if out.success() => {}
            Ok(Ok(out)) => {
                tracing::debug!(node, error = %out.last_error_line(), "cannot set the clock")
            }
            Ok(Err(e)) => tracing::debug!(node, error = %e, "cannot set the clock"),
            Err(_) => tracing::debug!(node, "setting the clock timed out"),
        }
    }

    /// Stops a VM for good (no shutdown): QMP `quit`, else SIGKILL, and anything else running
    /// from the node's directory.
    async fn kill_vm(&self, node: &NodeFiles) {
        if let Some(pid) = live_pid(node) {
            let _ = qmp::run_once(&node.qmp(), "quit", None).await;
            if !process::wait_gone(pid, Duration::from_secs(5)).await {
                process::kill_and_wait(pid).await;
            }
        }
        for pid in process::find_by_marker(node.dir()) {
            process::kill_and_wait(pid).await;
        }
        clear_runtime_files(node);
    }
}

impl Driver for QemuDriver {
    type Runner = SshRunner;

    /// TCG when the profile recorded it (or an explicit `tcg` choice); a profile that has not
    /// decided yet counts as emulated only when TCG was asked for.
    fn emulated(&self, profile: &str) -> bool {
        if let Some(AccelChoice::Fixed(accel)) = self.options.accel {
            return accel == Accel::Tcg;
        }
        let files = self.layout.profile(profile);
        matches!(
            ProfileSettings::load(&files.settings()),
            Ok(Some(ProfileSettings {
                accel: Some(Accel::Tcg),
                ..
            }))
        )
    }

    fn name(&self) -> &'static str {
        "qemu"
    }

    /// Checks that the emulator, qemu-img, ssh and ssh-keygen are there, and reads qemu's
    /// version.
    async fn check(&self) -> Result<EngineInfo, DriverError> {
        self.arch()?;
        let qemu = self.qemu_system();
        let version = program_version(&qemu).await?;
        program_version(&self.qemu_img()).await?;
        for tool in ["ssh", "ssh-keygen"] {
            if find_program(tool).is_none() {
                return Err(DriverError::EngineNotFound {
                    engine: "qemu".into(),
                    endpoint: tool.into(),
                });
            }
        }
        Ok(EngineInfo {
            version,
            api_version: None,
            // Debian trixie's systemd on its 6.12 kernel mounts the unified hierarchy.
            cgroup_version: Some("2".into()),
        })
    }

    async fn prepare(&self, cluster: &ClusterRequest) -> Result<(), DriverError> {
        let files = self.layout.profile(&cluster.profile);
        std::fs::create_dir_all(files.nodes_dir())
            .map_err(|e| DriverError::io(format!("create {}", files.dir().display()), e))?;
        #[cfg(unix)]
        {
            // The directory holds the profile's private key.
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(files.dir(), std::fs::Permissions::from_mode(0o700));
        }
        let settings = match ProfileSettings::load(&files.settings())? {
            Some(s) if s.created_by == CREATED_BY && s.profile == cluster.profile => s,
            Some(_) => {
                return Err(DriverError::NameConflict {
                    kind: "qemu profile directory".into(),
                    name: files.dir().display().to_string(),
                });
            }
            None => {
                let s = ProfileSettings {
                    created_by: CREATED_BY.into(),
                    profile: cluster.profile.clone(),
                    image: cluster.image.clone(),
                    accel: None,
                    disk_size_mib: self.options.disk_size_mib.unwrap_or(DEFAULT_DISK_MIB),
                    segment: pick_segment(&self.layout)?,
                };
                s.save(&files.settings())?;
                s
            }
        };
        let base = files.base();
        if !base.is_complete() {
            let cached = self.base_disk(&settings.image);
            if !cached.is_complete() {
                return Err(DriverError::ImageNotFound {
                    engine: "qemu".into(),
                    image: format!(
                        "{} (no VM disk at {}; build it with `minik node-image build --vm`)",
                        settings.image,
                        cached.dir().display()
                    ),
                });
            }
            disk::link_or_copy(&cached, &base)?;
        }
        keys::ensure_keypair(&files.key(), &format!("minik@{}", cluster.profile)).await
    }

    async fn create_node(
        &self,
        cluster: &ClusterRequest,
        node: &NodeSpec,
        observer: &dyn Observer,
    ) -> Result<(), DriverError> {
        if self.layout.find_node(&node.name)?.is_some() {
            return Err(DriverError::NameConflict {
                kind: "VM".into(),
                name: node.name.clone(),
            });
        }
        if !crate::layout::valid_name(&node.name) {
            return Err(DriverError::engine(
                format!("create node {}", node.name),
                "invalid node name",
            ));
        }
        let files = self.layout.profile(&cluster.profile);
        let settings = self.settings(&files)?;
        let accel = self.decide_accel(&files, observer).await?;
        let nf = files.node(&node.name);
        std::fs::create_dir_all(nf.dir())
            .map_err(|e| DriverError::io(format!("create {}", nf.dir().display()), e))?;

        keys::ensure_keypair(&nf.host_key(), &node.name).await?;
        let host_pub = keys::read_public(&nf.host_key())?;
        crate::layout::write_atomic(
            &nf.known_hosts(),
            keys::known_hosts_line(&node.name, &host_pub).as_bytes(),
            0o644,
        )?;

        let ip = settings.segment.node_ip(node.index).ok_or_else(|| {
            DriverError::engine(
                format!("create node {}", node.name),
                format!("node index {} is outside the segment", node.index),
            )
        })?;
        // SSH, then on control planes every port of CONTROL_PLANE_PORTS (API server first).
        let ports = free_ports(if node.role == Role::ControlPlane {
            1 + CONTROL_PLANE_PORTS.len()
        } else {
            1
        })?;
        let config = NodeConfig {
            created_by: CREATED_BY.into(),
            profile: cluster.profile.clone(),
            name: node.name.clone(),
            role: node.role,
            index: node.index,
            cpus: cluster
                .cpus
                .map(|c| c.ceil().max(1.0) as u32)
                .unwrap_or(DEFAULT_CPUS),
            memory_mib: cluster.memory_mib.unwrap_or(DEFAULT_MEMORY_MIB),
            ssh_port: ports[0],
            api_port: ports.get(1).copied(),
            published: CONTROL_PLANE_PORTS
                .iter()
                .skip(1)
                .copied()
                .zip(ports.iter().skip(2).copied())
                .collect(),
            mac_user: random_mac(),
            mac_segment: random_mac(),
            ip,
            uuid: random_uuid(),
        };
        config.save(&nf.config())?;

        let base_size = disk::virtual_size(&self.qemu_img(), &files.base().disk()).await?;
        let want = settings.disk_size_mib.saturating_mul(1024 * 1024);
        if want < base_size {
            return Err(DriverError::engine(
                format!("create node {}", node.name),
                format!(
                    "the disk size {} MiB is smaller than the base disk ({} MiB)",
                    settings.disk_size_mib,
                    base_size.div_ceil(1024 * 1024)
                ),
            ));
        }
        if !nf.disk().exists() {
            disk::create_overlay(
                &self.qemu_img(),
                "../../base/disk.qcow2",
                &nf.disk(),
                settings.disk_size_mib,
            )
            .await?;
        }
        observer.detail(&format!(
            "booting VM {} ({} vCPUs, {} MiB, {accel})",
            node.name, config.cpus, config.memory_mib
        ));
        self.launch(&files, &nf, config, accel).await
    }

    async fn start_node(&self, node: &str) -> Result<(), DriverError> {
        let (files, nf, config) = self.node(node)?;
        match node_state(&nf).await {
            (HostState::Running, _) => Ok(()),
            (HostState::Paused, _) => Err(DriverError::NodeNotRunning {
                node: node.to_string(),
                state: HostState::Paused.to_string(),
            }),
            _ => {
                // A wedged qemu (not answering, accelerator error) is replaced.
                self.kill_vm(&nf).await;
                let accel = self.restart_accel(&files)?;
                self.launch(&files, &nf, config, accel).await
            }
        }
    }

    /// ACPI power button through QMP (`system_powerdown`; a paused VM is resumed first so it
    /// can react), pressed again every few seconds, then up to `timeout` for the guest to
    /// power off, then `quit`, then SIGKILL.
    ///
    /// Pressing again matters: a node is ready (SSH and containerd answer) before udev has
    /// loaded the guest's ACPI button driver and logind watches it, and a press in that window
    /// is lost (seen under TCG: a press 2 s before logind watched the button did nothing, and
    /// `stop` right after `start` waited out its whole timeout).
    /// A press during a shutdown already under way is harmless.
    async fn stop_node(&self, node: &str, timeout: Duration) -> Result<(), DriverError> {
        let (_, nf, _) = self.node(node)?;
        let Some(pid) = live_pid(&nf) else {
            clear_runtime_files(&nf);
            return Ok(());
        };
        let asked = async {
            let mut qmp = Qmp::connect(&nf.qmp(), qmp::QMP_TIMEOUT).await?;
            if !qmp.query_status().await?.running {
                qmp.execute("cont", None).await?;
            }
            qmp.execute("system_powerdown", None).await
        }
        .await;
        match asked {
            Ok(_) => {
                let deadline = tokio::time::Instant::now() + timeout;
                loop {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if process::wait_gone(pid, left.min(POWERDOWN_REPEAT)).await {
                        clear_runtime_files(&nf);
                        return Ok(());
                    }
                    if left <= POWERDOWN_REPEAT {
                        break;
                    }
                    if let Err(e) = qmp::run_once(&nf.qmp(), "system_powerdown", None).await {
                        tracing::debug!(node, error = %e, "repeating the powerdown failed");
                    }
                }
                tracing::debug!(node, "no poweroff within the timeout, killing the VM");
            }
            Err(e) => tracing::debug!(node, error = %e, "QMP powerdown failed, killing the VM"),
        }
        self.kill_vm(&nf).await;
        if process::exists(pid) && process::is_qemu_of(pid, nf.dir()) {
            return Err(DriverError::engine(
                format!("stop node {node}"),
                format!("qemu (pid {pid}) survived SIGKILL"),
            ));
        }
        Ok(())
    }

    async fn pause_node(&self, node: &str) -> Result<(), DriverError> {
        let (_, nf, _) = self.node(node)?;
        match node_state(&nf).await {
            (HostState::Paused, _) => Ok(()),
            (HostState::Running, _) => qmp::run_once(&nf.qmp(), "stop", None)
                .await
                .map(|_| ())
                .map_err(|e| qmp_error(node, "pause", e)),
            (state, _) => Err(DriverError::NodeNotRunning {
                node: node.to_string(),
                state: state.to_string(),
            }),
        }
    }

    async fn unpause_node(&self, node: &str) -> Result<(), DriverError> {
        let (_, nf, _) = self.node(node)?;
        match node_state(&nf).await {
            (HostState::Running, _) => Ok(()),
            (HostState::Paused, _) => {
                qmp::run_once(&nf.qmp(), "cont", None)
                    .await
                    .map_err(|e| qmp_error(node, "unpause", e))?;
                self.sync_clock(node).await;
                Ok(())
            }
            (state, _) => Err(DriverError::NodeNotRunning {
                node: node.to_string(),
                state: state.to_string(),
            }),
        }
    }

    async fn delete_node(&self, node: &str) -> Result<DeleteReport, DriverError> {
        let mut report = DeleteReport::default();
        let Some((_, nf)) = self.layout.find_node(node)? else {
            return Ok(report);
        };
        if let Ok(Some(config)) = NodeConfig::load(&nf.config())
            && config.created_by != CREATED_BY
        {
            return Err(DriverError::NameConflict {
                kind: "VM".into(),
                name: node.to_string(),
            });
        }
        self.kill_vm(&nf).await;
        std::fs::remove_dir_all(nf.dir())
            .map_err(|e| DriverError::io(format!("remove {}", nf.dir().display()), e))?;
        report.nodes.push(node.to_string());
        report.files.push(nf.dir().display().to_string());
        Ok(report)
    }

    async fn delete_profile(&self, profile: &str) -> Result<DeleteReport, DriverError> {
        let mut report = DeleteReport::default();
        let files = self.layout.profile(profile);
        if !files.dir().exists() {
            return Ok(report);
        }
        for name in files.node_names()? {
            self.kill_vm(&files.node(&name)).await;
            report.nodes.push(name);
        }
        // VMs whose node directory is already gone but that still run from the profile's.
        for pid in process::find_by_marker(files.dir()) {
            process::kill_and_wait(pid).await;
        }
        std::fs::remove_dir_all(files.dir())
            .map_err(|e| DriverError::io(format!("remove {}", files.dir().display()), e))?;
        report.files.push(files.dir().display().to_string());
        report.nodes.sort();
        Ok(report)
    }

    async fn list_nodes(&self, profile: &str) -> Result<Vec<NodeInfo>, DriverError> {
        let files = self.layout.profile(profile);
        let mut nodes = Vec::new();
        for name in files.node_names()? {
            let nf = files.node(&name);
            let (state, detail) = node_state(&nf).await;
            let info = match NodeConfig::load(&nf.config()) {
                Ok(Some(c)) => NodeInfo {
                    name: c.name,
                    role: c.role,
                    index: c.index,
                    ip: matches!(
                        state,
                        HostState::Running | HostState::Paused | HostState::Starting
                    )
                    .then(|| c.ip.to_string()),
                    api_port: c.api_port,
                    ports: c
                        .api_port
                        .map(|p| (API_SERVER_PORT, p))
                        .into_iter()
                        .chain(c.published.iter().map(|(g, h)| (*g, *h)))
                        .collect(),
                    state,
                    detail,
                },
                Ok(None) | Err(_) => NodeInfo {
                    name,
                    role: Role::Worker,
                    index: u32::MAX,
                    state: HostState::Error,
                    ip: None,
                    api_port: None,
                    ports: Default::default(),
                    detail: Some("node.json is missing or unreadable".into()),
                },
            };
            nodes.push(info);
        }
        nodes.sort_by(|a, b| a.index.cmp(&b.index).then_with(|| a.name.cmp(&b.name)));
        Ok(nodes)
    }

    async fn list_profiles(&self) -> Result<Vec<String>, DriverError> {
        self.layout.profiles_with_vms()
    }

    fn runner(&self, node: &str) -> SshRunner {
        SshRunner {
            layout: self.layout.clone(),
            node: node.to_string(),
        }
    }
}

fn qmp_error(node: &str, op: &str, e: QmpError) -> DriverError {
    DriverError::engine(format!("{op} node {node}"), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_states() {
        assert_eq!(run_state("running").0, HostState::Running);
        assert_eq!(run_state("paused").0, HostState::Paused);
        assert_eq!(run_state("prelaunch").0, HostState::Starting);
        assert_eq!(run_state("shutdown").0, HostState::Stopped);
        let (state, detail) = run_state("internal-error");
        assert_eq!(state, HostState::Error);
        assert!(detail.unwrap().contains("accelerator"));
        assert_eq!(run_state("colo").0, HostState::Error);
    }

    #[test]
    fn versions_and_ids() {
        assert_eq!(
            parse_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)")
                .as_deref(),
            Some("QEMU 10.0.2")
        );
        assert_eq!(parse_version("something else"), None);
        let mac = random_mac();
        assert!(mac.starts_with("52:54:00:") && mac.len() == 17, "{mac}");
        let uuid = random_uuid();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert_ne!(random_uuid(), uuid);
        let ports = free_ports(3).unwrap();
        assert!(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2]);
    }

    #[tokio::test]
    async fn states_without_a_vm() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().join("profiles"), dir.path().join("vm"));
        let nf = layout.profile("p").node("p");
        std::fs::create_dir_all(nf.dir()).unwrap();
        assert_eq!(node_state(&nf).await.0, HostState::Stopped);
        // A pidfile whose process is not this node's qemu (here: our own pid): killed/crashed.
        std::fs::write(nf.pidfile(), std::process::id().to_string()).unwrap();
        let (state, detail) = node_state(&nf).await;
        assert_eq!(state, HostState::Error);
        assert!(detail.unwrap().contains("killed"), "the detail says why");
    }

    #[tokio::test]
    async fn segments_differ_between_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().join("profiles"), dir.path().join("vm"));
        let a = pick_segment(&layout).unwrap();
        let settings = ProfileSettings {
            created_by: CREATED_BY.into(),
            profile: "a".into(),
            image: "img".into(),
            accel: None,
            disk_size_mib: 1024,
            segment: a,
        };
        settings.save(&layout.profile("a").settings()).unwrap();
        for _ in 0..50 {
            let b = pick_segment(&layout).unwrap();
            assert!(b.group != a.group && b.port != a.port);
            assert_eq!(b.group.octets()[0], 239);
            assert!(b.port >= 20000);
        }
    }
}
