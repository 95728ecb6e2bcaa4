//! What the host sees of a node's VM: its qemu process, run state, serial console and the
//! programs the driver runs.

use super::STATUS_TIMEOUT;
use crate::layout::NodeFiles;
use crate::process;
use crate::qmp::Qmp;
use minik_driver_api::{DriverError, HostState};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// The pid of the node's qemu, if it runs.
pub(super) fn live_pid(node: &NodeFiles) -> Option<i32> {
    process::read_pid(&node.pidfile()).filter(|pid| process::is_qemu_of(*pid, node.dir()))
}

/// Removes the pidfile and QMP socket a dead qemu left behind.
pub(super) fn clear_runtime_files(node: &NodeFiles) {
    let _ = std::fs::remove_file(node.pidfile());
    let _ = std::fs::remove_file(node.qmp());
}

/// The last lines of the node's serial console, for error messages.
pub(super) fn serial_tail(node: &NodeFiles) -> String {
    let text = std::fs::read_to_string(node.serial_log()).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(15)..];
    format!(
        "; last lines of {}:\n{}",
        node.serial_log().display(),
        tail.join("\n")
    )
}

/// Whether an SSH server answers with its banner on 127.0.0.1:`port` right now.
pub(super) async fn ssh_banner(port: u16) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .ok()?;
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).await.ok()?;
        Some(buf[..n].starts_with(b"SSH-"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(3), attempt).await,
        Ok(Some(true))
    )
}

/// The live state of a node's VM, with detail for humans. Never hangs: QMP has a deadline.
pub async fn node_state(node: &NodeFiles) -> (HostState, Option<String>) {
    let Some(pid) = process::read_pid(&node.pidfile()) else {
        return (HostState::Stopped, None);
    };
    if !process::is_qemu_of(pid, node.dir()) {
        return (
            HostState::Error,
            Some(
                "qemu exited without a shutdown (killed or crashed); `minik start` boots it again"
                    .into(),
            ),
        );
    }
    let status = async {
        let mut qmp = Qmp::connect(&node.qmp(), STATUS_TIMEOUT).await?;
        qmp.query_status().await
    };
    match status.await {
        Ok(state) => run_state(&state.status),
        Err(e) => (
            HostState::Error,
            Some(format!("qemu (pid {pid}) does not answer on QMP: {e}")),
        ),
    }
}

/// Maps qemu's run state to a host state.
pub fn run_state(status: &str) -> (HostState, Option<String>) {
    match status {
        "running" => (HostState::Running, None),
        "paused" | "suspended" => (HostState::Paused, None),
        "prelaunch" | "inmigrate" | "restore-vm" => (HostState::Starting, Some(status.into())),
        "shutdown" => (HostState::Stopped, Some("shutting down".into())),
        "guest-panicked" => (
            HostState::Error,
            Some("the guest kernel panicked (see serial.log)".into()),
        ),
        "internal-error" => (
            HostState::Error,
            Some("qemu stopped the VM after an internal (accelerator) error".into()),
        ),
        "io-error" => (
            HostState::Error,
            Some("qemu stopped the VM after a disk I/O error (is the disk full?)".into()),
        ),
        other => (HostState::Error, Some(format!("qemu state {other}"))),
    }
}

/// Looks `name` up on PATH (or takes it as a path when it has a separator).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let p = Path::new(name);
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The first line of `program --version` ("QEMU emulator version 10.0.2 ..." becomes
/// "QEMU 10.0.2"); [`DriverError::EngineNotFound`] when it is not installed.
pub(super) async fn program_version(program: &Path) -> Result<String, DriverError> {
    let not_found = || DriverError::EngineNotFound {
        engine: "qemu".into(),
        endpoint: program.display().to_string(),
    };
    let name = program.to_string_lossy();
    if find_program(&name).is_none() {
        return Err(not_found());
    }
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new(program)
            .arg("--version")
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .map_err(|_| DriverError::EngineUnreachable {
        engine: "qemu".into(),
        endpoint: program.display().to_string(),
        detail: "`--version` did not answer within 10s".into(),
    })?
    .map_err(|_| not_found())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or_default().trim();
    Ok(parse_version(first).unwrap_or_else(|| first.to_string()))
}

/// "QEMU emulator version 10.0.2 (Debian ...)" → "QEMU 10.0.2".
pub(super) fn parse_version(line: &str) -> Option<String> {
    let rest = line.split("version").nth(1)?.trim();
    let v = rest.split_whitespace().next()?;
    Some(format!("QEMU {v}"))
}
