//! Choosing the accelerator: KVM (Linux), HVF (macOS) or TCG (emulation, works everywhere).
//!
//! `auto` does not trust that `/dev/kvm` opens: on some hosts (nested virtualization without
//! the right CPU features) it opens, qemu starts, and the guest hangs or the vCPU stops with
//! "KVM internal error". So `auto` boots the node kernel under KVM with a root device that
//! does not exist and `panic=-1`: a working accelerator gets the kernel to its "cannot mount
//! root" panic, which reboots, which `-no-reboot` turns into a clean qemu exit, in a second or
//! two. Anything else within [`PROBE_TIMEOUT`] (an error, a hang, a KVM internal error) means
//! TCG, with a warning that says why.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// How long the accelerator probe may take. A working KVM/HVF boots the kernel to its root
/// panic in one or two seconds; under TCG that takes about three.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

pub use crate::machine::Accel;

/// What the user asked for (`--qemu-accel`, `MINIK_QEMU_ACCEL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccelChoice {
    /// Probe the host's accelerator, fall back to TCG.
    #[default]
    Auto,
    /// Exactly this one; failing to start with it is an error.
    Fixed(Accel),
}

impl AccelChoice {
    /// Parses `auto`, `kvm`, `hvf` or `tcg` (case-insensitive).
    pub fn parse(s: &str) -> Option<AccelChoice> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(AccelChoice::Auto),
            "kvm" => Some(AccelChoice::Fixed(Accel::Kvm)),
            "hvf" => Some(AccelChoice::Fixed(Accel::Hvf)),
            "tcg" => Some(AccelChoice::Fixed(Accel::Tcg)),
            _ => None,
        }
    }
}

/// Why the host's accelerator is not used, for the fallback warning. `None`: the host's device
/// looks usable and the probe should run.
pub fn unavailable_reason(accel: Accel) -> Option<String> {
    match accel {
        Accel::Tcg => None,
        Accel::Kvm => {
            if !cfg!(target_os = "linux") {
                return Some("KVM exists only on Linux".into());
            }
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/kvm")
            {
                Ok(_) => None,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Some("/dev/kvm does not exist (no KVM on this host)".into())
                }
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Some(
                    "/dev/kvm is not accessible (add yourself to the kvm group and log in again)"
                        .into(),
                ),
                Err(e) => Some(format!("/dev/kvm cannot be opened: {e}")),
            }
        }
        Accel::Hvf => {
            if !cfg!(target_os = "macos") {
                return Some("HVF exists only on macOS".into());
            }
            let out = std::process::Command::new("sysctl")
                .args(["-n", "kern.hv_support"])
                .output();
            match out {
                Ok(o) if String::from_utf8_lossy(&o.stdout).trim() == "1" => None,
                _ => Some("this Mac does not support Hypervisor.framework".into()),
            }
        }
    }
}

/// The qemu arguments of the probe: the kernel alone, a root that does not exist, no devices.
pub fn probe_args(
    arch: crate::machine::Arch,
    accel: Accel,
    kernel: &Path,
    serial: &Path,
) -> Vec<String> {
    vec![
        "-accel".to_string(),
        accel.as_str().to_string(),
        "-machine".to_string(),
        arch.machine().to_string(),
        "-cpu".to_string(),
        arch.cpu(accel).to_string(),
        "-m".to_string(),
        "256".to_string(),
        "-smp".to_string(),
        "1".to_string(),
        "-nodefaults".to_string(),
        "-no-user-config".to_string(),
        "-display".to_string(),
        "none".to_string(),
        "-no-reboot".to_string(),
        "-kernel".to_string(),
        kernel.display().to_string(),
        "-append".to_string(),
        format!(
            "console={} panic=-1 root=/dev/minik-probe-no-such-disk quiet",
            arch.console()
        ),
        "-chardev".to_string(),
        format!(
            "file,id=serial0,path={}",
            crate::machine::escape(&serial.display().to_string())
        ),
        "-serial".to_string(),
        "chardev:serial0".to_string(),
    ]
}

/// Whether a line qemu printed means the vCPU cannot run under this accelerator.
pub fn is_fatal_accel_line(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    l.contains("kvm internal error")
        || l.contains("emulation failure")
        || l.contains("failed to initialize kvm")
        || l.contains("failed to set msr")
        || l.contains("hv_vm_create")
        || l.contains("could not access kvm kernel module")
}

/// Boots `kernel` under `accel` as described in the module docs. `Ok` when the guest got to
/// its root-mount panic; `Err` with the reason otherwise. Never takes longer than `timeout`
/// plus the time to kill qemu.
pub async fn probe(
    qemu: &Path,
    arch: crate::machine::Arch,
    accel: Accel,
    kernel: &Path,
    timeout: Duration,
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let serial = dir.path().join("serial.log");
    let mut child = tokio::process::Command::new(qemu)
        .args(probe_args(arch, accel, kernel, &serial))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", qemu.display()))?;
    let stderr = child.stderr.take();
    let watch = async {
        let mut fatal = None;
        let mut last = String::new();
        if let Some(stderr) = stderr {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if is_fatal_accel_line(&line) {
                    fatal = Some(line.trim().to_string());
                    break;
                }
                if !line.trim().is_empty() {
                    last = line.trim().to_string();
                }
            }
        }
        (fatal, last)
    };
    let outcome = tokio::time::timeout(timeout, async {
        let (fatal, last) = watch.await;
        if let Some(line) = fatal {
            return Err(line);
        }
        match child.wait().await {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(if last.is_empty() {
                format!("qemu exited with {status}")
            } else {
                last
            }),
            Err(e) => Err(format!("waiting for qemu: {e}")),
        }
    })
    .await;
    let result = match outcome {
        Ok(r) => r,
        Err(_) => Err(format!(
            "the test guest did not finish booting within {}s (it hangs under {accel})",
            timeout.as_secs()
        )),
    };
    let _ = child.start_kill();
    let _ = child.wait().await;
    result?;
    let console = std::fs::read_to_string(&serial).unwrap_or_default();
    if console.contains("Kernel panic") || console.contains("VFS:") || console.contains("Linux") {
        Ok(())
    } else {
        Err("the test guest exited without booting the kernel".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_choices() {
        assert_eq!(AccelChoice::parse("auto"), Some(AccelChoice::Auto));
        assert_eq!(
            AccelChoice::parse("TCG"),
            Some(AccelChoice::Fixed(Accel::Tcg))
        );
        assert_eq!(
            AccelChoice::parse(" kvm "),
            Some(AccelChoice::Fixed(Accel::Kvm))
        );
        assert_eq!(
            AccelChoice::parse("hvf"),
            Some(AccelChoice::Fixed(Accel::Hvf))
        );
        assert_eq!(AccelChoice::parse("xen"), None);
        assert_eq!(serde_json::to_string(&Accel::Kvm).unwrap(), "\"kvm\"");
    }

    #[test]
    fn spots_accelerator_failures() {
        assert!(is_fatal_accel_line("KVM internal error. Suberror: 1"));
        assert!(is_fatal_accel_line(
            "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x0"
        ));
        assert!(!is_fatal_accel_line(
            "qemu-system-x86_64: warning: host doesn't support requested feature"
        ));
    }

    #[test]
    fn probe_boots_the_kernel_alone() {
        let args = probe_args(
            crate::machine::Arch::X86_64,
            Accel::Kvm,
            Path::new("/k/vmlinuz"),
            Path::new("/t/serial,log"),
        );
        let joined = args.join(" ");
        assert!(
            joined.contains("-accel kvm -machine pc -cpu host"),
            "{joined}"
        );
        assert!(joined.contains("-no-reboot -kernel /k/vmlinuz"), "{joined}");
        assert!(
            joined.contains("panic=-1 root=/dev/minik-probe-no-such-disk"),
            "{joined}"
        );
        assert!(
            joined.contains("path=/t/serial,,log"),
            "commas escaped: {joined}"
        );
        assert!(!joined.contains("-initrd"), "{joined}");
    }
}
