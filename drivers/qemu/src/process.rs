//! qemu processes: pidfiles, liveness, finding and killing them.
//!
//! A pid alone is not proof: after qemu dies its pid can be reused. On Linux a process only
//! counts as a node's qemu when its command line names that node's files (its directory is
//! part of every path qemu gets). Elsewhere the pidfile has to be trusted.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::Path;
use std::time::Duration;

/// The pid in `pidfile`, if the file exists and holds one.
pub fn read_pid(pidfile: &Path) -> Option<i32> {
    std::fs::read_to_string(pidfile)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
}

/// Whether a process with `pid` exists (a zombie counts as gone on Linux: it has no command
/// line).
pub fn exists(pid: i32) -> bool {
    match kill(Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// The command line of `pid` (Linux), NUL-separated arguments joined with spaces.
fn cmdline(pid: i32) -> Option<String> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if bytes.is_empty() {
        return None;
    }
    Some(
        bytes
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Whether `pid` is a live qemu whose command line mentions `marker` (a node or profile
/// directory).
pub fn is_qemu_of(pid: i32, marker: &Path) -> bool {
    if !exists(pid) {
        return false;
    }
    if !Path::new("/proc/self/cmdline").exists() {
        // No procfs (macOS): the pidfile is all there is.
        return true;
    }
    match cmdline(pid) {
        Some(line) => line.contains("qemu") && line.contains(&*marker.to_string_lossy()),
        None => false,
    }
}

/// The pids of every qemu whose command line mentions `marker` (Linux; empty elsewhere). Finds
/// VMs whose pidfile is gone.
pub fn find_by_marker(marker: &Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let marker = marker.to_string_lossy();
    let me = std::process::id() as i32;
    let mut pids: Vec<i32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            cmdline(*pid).is_some_and(|l| l.contains("qemu-system") && l.contains(&*marker))
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// Waits until `pid` is gone; `false` if it is still there after `timeout`.
pub async fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if !exists(pid) || cmdline_gone(pid) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A zombie (exited, not yet reaped by its parent) has an empty command line on Linux.
fn cmdline_gone(pid: i32) -> bool {
    Path::new("/proc/self/cmdline").exists() && cmdline(pid).is_none()
}

/// Sends `signal` to `pid`, ignoring a process that is already gone.
pub fn signal(pid: i32, signal: Signal) {
    if let Err(e) = kill(Pid::from_raw(pid), signal)
        && e != nix::errno::Errno::ESRCH
    {
        tracing::debug!(pid, %signal, error = %e, "cannot signal qemu");
    }
}

/// Kills `pid` (SIGKILL) and waits until it is gone (up to 10 s).
pub async fn kill_and_wait(pid: i32) -> bool {
    signal(pid, Signal::SIGKILL);
    wait_gone(pid, Duration::from_secs(10)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfiles() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("qemu.pid");
        assert_eq!(read_pid(&f), None);
        std::fs::write(&f, "1234\n").unwrap();
        assert_eq!(read_pid(&f), Some(1234));
        std::fs::write(&f, "garbage").unwrap();
        assert_eq!(read_pid(&f), None);
        std::fs::write(&f, "-5").unwrap();
        assert_eq!(read_pid(&f), None);
    }

    #[tokio::test]
    async fn our_own_process_is_not_a_qemu() {
        let me = std::process::id() as i32;
        assert!(exists(me));
        assert!(!is_qemu_of(me, Path::new("/nonexistent/marker")));
        assert!(find_by_marker(Path::new("/nonexistent/marker")).is_empty());
        // A child that exits: gone once reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert!(wait_gone(pid, Duration::from_secs(2)).await);
    }
}
