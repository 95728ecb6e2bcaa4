//! minik's qemu driver: every node is a virtual machine booted from the node recipe, reached
//! over SSH.
//!
//! - **Disk** ([`disk`]): `minik node-image build --vm` builds the VM layer (kernel, initrd,
//!   sshd, a boot-time setup unit) `FROM` the container node image through a container engine,
//!   turns its root filesystem into an ext4 image inside the build container (`mkfs.ext4 -d`),
//!   and converts that to a qcow2 base disk on the host (`qemu-img convert`). Each node boots
//!   the kernel and initrd directly (`-kernel`, `-initrd`) from a qcow2 overlay of its own on
//!   the base disk.
//! - **Configuration without cloud-init** ([`vm`]): hostname, network and root's authorized key
//!   go on the kernel command line; the node's SSH host key, which minik generates and pins,
//!   through fw_cfg. `minik-vm-setup.service` in the VM applies them on every boot and grows
//!   the root filesystem to the disk size.
//! - **Network**: user-mode networking with SSH and the API server forwarded to free ports on
//!   127.0.0.1, plus a second NIC on the profile's own multicast socket segment
//!   (`-netdev socket,mcast=239.x.y.z:PORT,localaddr=127.0.0.1`, no root needed) with static
//!   addresses, so nodes reach each other; that address is [`minik_driver_api::NodeInfo::ip`].
//! - **Control** ([`qmp`], [`process`]): a QMP socket, a pidfile and a serial log per node;
//!   stop is ACPI power-off through QMP with a timeout, then `quit`/SIGKILL; pause and unpause
//!   are QMP `stop`/`cont`; state comes from the pidfile and `query-status`, with deadlines,
//!   so a killed or wedged qemu is reported (Error), never waited for.
//! - **Commands** ([`ssh`]): the system `ssh` with the profile's key, the node's host key
//!   pinned, strict timeouts; stdin streaming and exit codes as the container runners.
//! - **Accelerator** ([`accel`]): `auto` probes that KVM (or HVF) really boots a guest and
//!   falls back to TCG with a warning.
//!
//! All state lives in the profile's directory ([`layout`]), so `delete` finds everything even
//! without minik's profile file.
//!
//! Environment: `MINIK_QEMU_ACCEL` (`auto`, `kvm`, `hvf`, `tcg`), `MINIK_QEMU_SYSTEM` and
//! `MINIK_QEMU_IMG` (the binaries to run).

#![warn(missing_docs)]

pub mod accel;
pub mod disk;
mod driver;
pub mod keys;
pub mod layout;
pub mod machine;
pub mod process;
pub mod qmp;
pub mod ssh;
pub mod vm;

pub use accel::{Accel, AccelChoice};
pub use driver::{
    ACCEL_ENV, DEFAULT_CPUS, DEFAULT_DISK_MIB, DEFAULT_MEMORY_MIB, DEFAULT_SSH_TIMEOUT,
    QEMU_IMG_ENV, QEMU_SYSTEM_ENV, QemuDriver, QemuOptions, SEGMENT_SUBNET, SshRunner,
    find_program, node_state, run_state,
};
pub use layout::{BaseFiles, Layout};
