//! The qemu command line of a node VM and the kernel command line that configures it.
//!
//! Pure functions of a [`VmSpec`], so they are unit-tested without qemu.
//!
//! The guest side is `minik-vm-setup` in the VM layer (drivers/qemu/vm-image): it reads the
//! `minik.*` parameters from `/proc/cmdline` on every boot, and the SSH host key from fw_cfg.

use crate::machine::Accel;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

/// The user-mode network qemu gives every VM (its defaults, spelled out).
pub mod user_net {
    /// The guest's address on the user-mode network.
    pub const GUEST: &str = "10.0.2.15/24";
    /// The network.
    pub const NET: &str = "10.0.2.0/24";
    /// The gateway (qemu itself; NATs to the host's network).
    pub const GATEWAY: &str = "10.0.2.2";
    /// qemu's DNS forwarder.
    pub const DNS: &str = "10.0.2.3";
}

/// The fw_cfg name of a node's SSH host key.
pub const HOST_KEY_FW_CFG: &str = "opt/io.minik/ssh_host_ed25519_key";

/// The guest port of the API server.
const API_SERVER_PORT: u16 = minik_driver_api::API_SERVER_PORT;

pub use crate::machine::{Arch, escape};

/// Everything that makes up one node VM's command line.
#[derive(Debug, Clone)]
pub struct VmSpec<'a> {
    /// The node's name (VM name and hostname).
    pub name: &'a str,
    /// Architecture of host and guest.
    pub arch: Arch,
    /// Accelerator.
    pub accel: Accel,
    /// vCPUs.
    pub cpus: u32,
    /// Memory, MiB.
    pub memory_mib: u64,
    /// Kernel, initrd and the node's disk (the qcow2 overlay).
    pub kernel: &'a Path,
    /// The initrd.
    pub initrd: &'a Path,
    /// The overlay disk.
    pub disk: &'a Path,
    /// Host port on 127.0.0.1 for the guest's SSH port.
    pub ssh_port: u16,
    /// Host port on 127.0.0.1 for the guest's API server port.
    pub api_port: Option<u16>,
    /// Other guest ports forwarded from 127.0.0.1: guest port → host port.
    pub forwards: &'a BTreeMap<u16, u16>,
    /// MAC of the user-mode NIC.
    pub mac_user: &'a str,
    /// MAC of the segment NIC.
    pub mac_segment: &'a str,
    /// The profile's segment: multicast group and port.
    pub segment_group: Ipv4Addr,
    /// The segment's UDP port.
    pub segment_port: u16,
    /// The node's address on the segment.
    pub ip: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
    /// root's authorized key, `TYPE BASE64 [comment]` (only type and key are passed).
    pub authorized_key: &'a str,
    /// The SSH host key file handed over through fw_cfg.
    pub host_key: &'a Path,
    /// QMP socket, pidfile, serial log.
    pub qmp: &'a Path,
    /// The pidfile.
    pub pidfile: &'a Path,
    /// The serial log.
    pub serial_log: &'a Path,
    /// SMBIOS UUID.
    pub uuid: &'a str,
}

/// Why a [`VmSpec`] cannot be turned into a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError(pub String);

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The longest unix socket path qemu can bind (`sun_path` is 108 bytes on Linux, 104 on
/// macOS, including the terminating NUL).
pub const MAX_SOCKET_PATH: usize = 103;

/// `TYPE:BASE64` from an OpenSSH public key line, for the kernel command line (no spaces
/// allowed there, and the comment is not needed).
pub fn key_param(authorized_key: &str) -> Result<String, SpecError> {
    let mut parts = authorized_key.split_whitespace();
    let (Some(kind), Some(key)) = (parts.next(), parts.next()) else {
        return Err(SpecError(format!(
            "not an OpenSSH public key: {authorized_key:?}"
        )));
    };
    let ok = |s: &str, extra: &[char]| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
    };
    if !ok(kind, &['-', '@', '.']) || !ok(key, &['+', '/', '=']) {
        return Err(SpecError(format!(
            "not an OpenSSH public key: {authorized_key:?}"
        )));
    }
    Ok(format!("{kind}:{key}"))
}

/// The kernel command line of a node (see `minik-vm-setup` for the `minik.*` parameters).
pub fn kernel_cmdline(spec: &VmSpec<'_>) -> Result<String, SpecError> {
    if !crate::layout::valid_name(spec.name) {
        return Err(SpecError(format!("invalid node name {:?}", spec.name)));
    }
    let key = key_param(spec.authorized_key)?;
    Ok([
        format!("console={}", spec.arch.console()),
        "root=/dev/vda".into(),
        "rootfstype=ext4".into(),
        "rw".into(),
        // Each line on an emulated UART costs; the serial log still gets warnings and errors.
        "quiet".into(),
        // Names in probe order (eth0, eth1); minik-vm-setup finds the NICs by MAC anyway.
        "net.ifnames=0".into(),
        // Reboot 10s after a panic, so the serial log keeps the reason and a loop is slow.
        "panic=10".into(),
        // The IO-APIC timer check fails now and then under TCG on a busy host ("IO-APIC +
        // timer doesn't work!", a panic): the emulated timer is fine, the check is too strict.
        "no_timer_check".into(),
        // systemd's ssh generator (AF_VSOCK/AF_UNIX sshd sockets) has nothing to do here.
        "systemd.ssh_auto=0".into(),
        format!("systemd.hostname={}", spec.name),
        format!(
            "minik.net0={},{},{}",
            spec.mac_user,
            user_net::GUEST,
            user_net::GATEWAY
        ),
        format!(
            "minik.net1={},{}/{}",
            spec.mac_segment, spec.ip, spec.prefix
        ),
        format!("minik.dns={}", user_net::DNS),
        format!("minik.key={key}"),
    ]
    .join(" "))
}

/// The arguments of `qemu-system-*` (without the binary) that start the node daemonized.
pub fn qemu_args(spec: &VmSpec<'_>) -> Result<Vec<String>, SpecError> {
    let path = |p: &Path| -> Result<String, SpecError> {
        p.to_str()
            .map(str::to_string)
            .ok_or_else(|| SpecError(format!("{} is not valid UTF-8", p.display())))
    };
    let qmp = path(spec.qmp)?;
    if qmp.len() > MAX_SOCKET_PATH {
        return Err(SpecError(format!(
            "the QMP socket path {qmp} is longer than the {MAX_SOCKET_PATH} bytes a unix socket \
             allows; use a shorter MINIK_HOME or profile name"
        )));
    }
    let mut hostfwd = format!("hostfwd=tcp:127.0.0.1:{}-:22", spec.ssh_port);
    if let Some(api) = spec.api_port {
        hostfwd.push_str(&format!(",hostfwd=tcp:127.0.0.1:{api}-:{API_SERVER_PORT}"));
    }
    for (guest, host) in spec.forwards {
        hostfwd.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
    }
    let cmdline = kernel_cmdline(spec)?;
    let mut args: Vec<String> = Vec::new();
    let mut push = |a: &str, b: String| {
        args.push(a.to_string());
        args.push(b);
    };
    push("-name", format!("{},debug-threads=on", escape(spec.name)));
    push("-machine", spec.arch.machine().to_string());
    push("-accel", spec.accel.as_str().to_string());
    push("-cpu", spec.arch.cpu(spec.accel).to_string());
    push("-smp", spec.cpus.max(1).to_string());
    push("-m", format!("{}M", spec.memory_mib));
    push("-uuid", spec.uuid.to_string());
    push("-rtc", "base=utc".into());
    push("-display", "none".into());
    push("-kernel", path(spec.kernel)?);
    push("-initrd", path(spec.initrd)?);
    push("-append", cmdline);
    push(
        "-drive",
        format!(
            "file={},if=virtio,format=qcow2,discard=unmap",
            escape(&path(spec.disk)?)
        ),
    );
    push(
        "-netdev",
        format!(
            "user,id=net0,net={},host={},dns={},{hostfwd}",
            user_net::NET,
            user_net::GATEWAY,
            user_net::DNS
        ),
    );
    // romfile= (empty): no iPXE option ROM, the kernel is loaded directly.
    push(
        "-device",
        format!("virtio-net-pci,netdev=net0,mac={},romfile=", spec.mac_user),
    );
    push(
        "-netdev",
        format!(
            "socket,id=net1,mcast={}:{},localaddr=127.0.0.1",
            spec.segment_group, spec.segment_port
        ),
    );
    push(
        "-device",
        format!(
            "virtio-net-pci,netdev=net1,mac={},romfile=",
            spec.mac_segment
        ),
    );
    push("-device", "virtio-rng-pci".into());
    push(
        "-fw_cfg",
        format!(
            "name={HOST_KEY_FW_CFG},file={}",
            escape(&path(spec.host_key)?)
        ),
    );
    push(
        "-chardev",
        format!("socket,id=qmp,path={},server=on,wait=off", escape(&qmp)),
    );
    push("-mon", "chardev=qmp,mode=control".into());
    push(
        "-chardev",
        format!("file,id=serial0,path={}", escape(&path(spec.serial_log)?)),
    );
    push("-serial", "chardev:serial0".into());
    push("-pidfile", path(spec.pidfile)?);
    args.push("-nodefaults".into());
    args.push("-no-user-config".into());
    args.push("-daemonize".into());
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    static NO_FORWARDS: BTreeMap<u16, u16> = BTreeMap::new();

    fn spec<'a>() -> VmSpec<'a> {
        VmSpec {
            name: "p-m02",
            arch: Arch::X86_64,
            accel: Accel::Tcg,
            cpus: 2,
            memory_mib: 2048,
            kernel: Path::new("/h/base/vmlinuz"),
            initrd: Path::new("/h/base/initrd.img"),
            disk: Path::new("/h/odd,dir/disk.qcow2"),
            ssh_port: 41001,
            api_port: None,
            forwards: &NO_FORWARDS,
            mac_user: "52:54:00:01:02:03",
            mac_segment: "52:54:00:04:05:06",
            segment_group: Ipv4Addr::new(239, 7, 8, 9),
            segment_port: 45000,
            ip: Ipv4Addr::new(192, 168, 105, 3),
            prefix: 24,
            authorized_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAqQF12sRwMI2V5Os+/= minik@p",
            host_key: Path::new("/h/n/ssh_host_ed25519_key"),
            qmp: Path::new("/h/n/qmp.sock"),
            pidfile: Path::new("/h/n/qemu.pid"),
            serial_log: Path::new("/h/n/serial.log"),
            uuid: "6b1c7f5e-8d3a-4b2c-9e1f-0a2b3c4d5e6f",
        }
    }

    /// The value following `flag`, for each time it occurs.
    fn values<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn kernel_cmdline_carries_the_node_settings() {
        let line = kernel_cmdline(&spec()).unwrap();
        assert_eq!(
            line,
            "console=ttyS0 root=/dev/vda rootfstype=ext4 rw quiet net.ifnames=0 panic=10 \
             no_timer_check systemd.ssh_auto=0 systemd.hostname=p-m02 minik.net0=52:54:00:01:02:03,10.0.2.15/24,10.0.2.2 \
             minik.net1=52:54:00:04:05:06,192.168.105.3/24 minik.dns=10.0.2.3 \
             minik.key=ssh-ed25519:AAAAC3NzaC1lZDI1NTE5AAAAIAqQF12sRwMI2V5Os+/="
        );
        let mut arm = spec();
        arm.arch = Arch::Aarch64;
        assert!(
            kernel_cmdline(&arm)
                .unwrap()
                .starts_with("console=ttyAMA0 ")
        );
    }

    #[test]
    fn kernel_cmdline_refuses_what_would_break_it() {
        let mut s = spec();
        s.authorized_key = "ssh-ed25519";
        assert!(kernel_cmdline(&s).is_err());
        s.authorized_key = "ssh-ed25519 AAAA minik.dns=1.2.3.4 x";
        assert!(kernel_cmdline(&s).is_ok(), "only type and key are used");
        s.authorized_key = "ssh-ed25519 AA\"AA";
        assert!(kernel_cmdline(&s).is_err());
        let mut s = spec();
        s.name = "a b";
        assert!(kernel_cmdline(&s).is_err());
    }

    #[test]
    fn qemu_command_line() {
        let args = qemu_args(&spec()).unwrap();
        assert_eq!(values(&args, "-accel"), ["tcg"]);
        assert_eq!(values(&args, "-cpu"), ["max"]);
        assert_eq!(values(&args, "-machine"), ["pc"]);
        assert_eq!(values(&args, "-smp"), ["2"]);
        assert_eq!(values(&args, "-m"), ["2048M"]);
        assert_eq!(
            values(&args, "-drive"),
            ["file=/h/odd,,dir/disk.qcow2,if=virtio,format=qcow2,discard=unmap"]
        );
        assert_eq!(
            values(&args, "-netdev"),
            [
                "user,id=net0,net=10.0.2.0/24,host=10.0.2.2,dns=10.0.2.3,hostfwd=tcp:127.0.0.1:41001-:22",
                "socket,id=net1,mcast=239.7.8.9:45000,localaddr=127.0.0.1",
            ]
        );
        assert_eq!(
            values(&args, "-device"),
            [
                "virtio-net-pci,netdev=net0,mac=52:54:00:01:02:03,romfile=",
                "virtio-net-pci,netdev=net1,mac=52:54:00:04:05:06,romfile=",
                "virtio-rng-pci",
            ]
        );
        assert_eq!(
            values(&args, "-fw_cfg"),
            ["name=opt/io.minik/ssh_host_ed25519_key,file=/h/n/ssh_host_ed25519_key"]
        );
        assert_eq!(
            values(&args, "-chardev"),
            [
                "socket,id=qmp,path=/h/n/qmp.sock,server=on,wait=off",
                "file,id=serial0,path=/h/n/serial.log"
            ]
        );
        assert_eq!(values(&args, "-pidfile"), ["/h/n/qemu.pid"]);
        assert_eq!(values(&args, "-kernel"), ["/h/base/vmlinuz"]);
        assert_eq!(values(&args, "-append"), [kernel_cmdline(&spec()).unwrap()]);
        assert_eq!(args.last().map(String::as_str), Some("-daemonize"));
        assert!(args.contains(&"-nodefaults".to_string()));
    }

    #[test]
    fn control_planes_forward_the_api_server_and_kvm_uses_the_host_cpu() {
        let mut s = spec();
        s.api_port = Some(41002);
        let forwards = BTreeMap::from([(80, 41003), (443, 41004)]);
        s.forwards = &forwards;
        s.accel = Accel::Kvm;
        let args = qemu_args(&s).unwrap();
        assert!(
            values(&args, "-netdev")[0].ends_with(
                "hostfwd=tcp:127.0.0.1:41001-:22,hostfwd=tcp:127.0.0.1:41002-:6443,\
                 hostfwd=tcp:127.0.0.1:41003-:80,hostfwd=tcp:127.0.0.1:41004-:443"
            ),
            "{args:?}"
        );
        assert_eq!(values(&args, "-cpu"), ["host"]);
        assert_eq!(values(&args, "-accel"), ["kvm"]);
    }

    #[test]
    fn long_socket_paths_are_refused() {
        let long = format!("/{}/qmp.sock", "x".repeat(120));
        let mut s = spec();
        s.qmp = Path::new(&long);
        let err = qemu_args(&s).unwrap_err();
        assert!(err.0.contains("shorter MINIK_HOME"), "{err}");
    }
}
