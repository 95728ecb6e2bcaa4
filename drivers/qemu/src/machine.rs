//! The machine a node VM is: its architecture and accelerator (a leaf module: the
//! accelerator probe, the VM command line and the profile layout all read it).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The accelerator a VM runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Linux KVM.
    Kvm,
    /// macOS Hypervisor.framework.
    Hvf,
    /// qemu's own emulation: no host support needed, several times slower.
    Tcg,
}

impl Accel {
    /// The `-accel` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Hvf => "hvf",
            Accel::Tcg => "tcg",
        }
    }

    /// The hardware accelerator of this host's OS, if it has one qemu supports.
    pub fn native() -> Option<Accel> {
        if cfg!(target_os = "linux") {
            Some(Accel::Kvm)
        } else if cfg!(target_os = "macos") {
            Some(Accel::Hvf)
        } else {
            None
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CPU architecture qemu can run nodes for, with its board and console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// x86_64: the `pc` board, console on the first 16550 UART.
    X86_64,
    /// aarch64: the `virt` board, console on the PL011 UART.
    Aarch64,
}

impl Arch {
    /// This host's architecture, when qemu nodes are supported on it.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// The system emulator's binary name.
    pub fn qemu_system(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Aarch64 => "qemu-system-aarch64",
        }
    }

    /// The board (`-machine`). x86 uses `pc` (i440fx): the simplest board, which boots fastest
    /// under TCG; nothing here needs q35's PCIe.
    pub fn machine(self) -> &'static str {
        match self {
            Arch::X86_64 => "pc",
            Arch::Aarch64 => "virt",
        }
    }

    /// The CPU model: the host's own under hardware acceleration, qemu's richest under TCG.
    pub fn cpu(self, accel: Accel) -> &'static str {
        match accel {
            Accel::Kvm | Accel::Hvf => "host",
            Accel::Tcg => "max",
        }
    }

    /// The kernel's name of the serial console.
    pub fn console(self) -> &'static str {
        match self {
            Arch::X86_64 => "ttyS0",
            Arch::Aarch64 => "ttyAMA0",
        }
    }
}

/// Escapes a value for a qemu option string (`key=value,key=value`): commas are doubled.
pub fn escape(value: &str) -> String {
    value.replace(',', ",,")
}
