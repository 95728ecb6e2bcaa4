//! Running commands in a node VM with the system `ssh`.
//!
//! Every command is one `ssh` process to the node's forwarded SSH port on 127.0.0.1, as root,
//! with the profile's key, the node's host key pinned in its own known_hosts file (looked up
//! under the node's name through `HostKeyAlias`, so the changing host port does not matter),
//! strict host key checking, and nothing from the user's `~/.ssh/config` (`-F /dev/null`).
//! ssh's own messages go to a log file (`-E`), not to stderr, so the command's stderr is only
//! the command's, and an exit status of 255 can be told apart: with something in the log it
//! is ssh failing to connect ([`DriverError::Exec`]), without it is the command's own 255.

use minik_driver_api::{DriverError, ExecRequest, StdinSource};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long ssh may take to connect and exchange banners. Generous: a VM under TCG on a busy
/// host can be slow to answer, and a paused VM is refused before ssh runs.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Keepalive interval; after [`SERVER_ALIVE_COUNT`] missed answers ssh gives up (a VM that
/// hangs or was killed mid-command ends the command within about 30 s).
pub const SERVER_ALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// Missed keepalives before ssh gives up.
pub const SERVER_ALIVE_COUNT: u32 = 6;

/// Where and how to reach one node.
#[derive(Debug, Clone)]
pub struct SshTarget {
    /// The node's name (the host key alias).
    pub node: String,
    /// Host port forwarded to the VM's port 22.
    pub port: u16,
    /// The profile's private key.
    pub key: PathBuf,
    /// The node's known_hosts file.
    pub known_hosts: PathBuf,
}

/// The `ssh` arguments up to and including the destination; the remote command follows.
pub fn ssh_args(target: &SshTarget, tty: bool, log_file: &Path) -> Vec<String> {
    let opt = |k: &str, v: String| ["-o".to_string(), format!("{k}={v}")];
    let mut args = vec!["-F".to_string(), "/dev/null".to_string()];
    args.extend(["-i".to_string(), target.key.display().to_string()]);
    for (k, v) in [
        ("IdentitiesOnly", "yes".to_string()),
        ("IdentityAgent", "none".to_string()),
        ("BatchMode", "yes".to_string()),
        ("PasswordAuthentication", "no".to_string()),
        ("KbdInteractiveAuthentication", "no".to_string()),
        (
            "UserKnownHostsFile",
            target.known_hosts.display().to_string(),
        ),
        ("GlobalKnownHostsFile", "/dev/null".to_string()),
        ("StrictHostKeyChecking", "yes".to_string()),
        ("HostKeyAlias", target.node.clone()),
        ("CheckHostIP", "no".to_string()),
        ("UpdateHostKeys", "no".to_string()),
        ("ConnectTimeout", CONNECT_TIMEOUT.as_secs().to_string()),
        (
            "ServerAliveInterval",
            SERVER_ALIVE_INTERVAL.as_secs().to_string(),
        ),
        ("ServerAliveCountMax", SERVER_ALIVE_COUNT.to_string()),
        ("ControlMaster", "no".to_string()),
        ("ControlPath", "none".to_string()),
        ("ForwardAgent", "no".to_string()),
        ("ForwardX11", "no".to_string()),
        ("LogLevel", "ERROR".to_string()),
    ] {
        args.extend(opt(k, v));
    }
    // No escape character: a `~.` in piped data (image tarballs) must not end the session.
    args.extend(["-e".to_string(), "none".to_string()]);
    args.push(if tty { "-tt" } else { "-T" }.to_string());
    args.extend(["-E".to_string(), log_file.display().to_string()]);
    args.extend(["-p".to_string(), target.port.to_string()]);
    args.extend(["-l".to_string(), "root".to_string()]);
    args.push("127.0.0.1".to_string());
    args.push("--".to_string());
    args
}

/// Quotes `s` for a POSIX shell: as is when it only has safe characters, else in single
/// quotes.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | '+' | ',' | '@' | '%')
        });
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The command line sshd hands to root's shell: environment, terminal size, then `exec` of
/// the command, so its exit status is the session's and a missing program is exit 127.
pub fn remote_command(request: &ExecRequest) -> Result<String, String> {
    if request.argv.is_empty() {
        return Err("empty command".into());
    }
    let mut parts = Vec::new();
    for kv in &request.env {
        let Some((key, _)) = kv.split_once('=') else {
            return Err(format!("environment entry {kv:?} is not KEY=VALUE"));
        };
        if key.is_empty()
            || key.starts_with(|c: char| c.is_ascii_digit())
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(format!("invalid environment variable name {key:?}"));
        }
        parts.push(format!("export {};", shell_quote(kv)));
    }
    if request.tty
        && let Some((cols, rows)) = request.tty_size
    {
        parts.push(format!("stty cols {cols} rows {rows} 2>/dev/null;"));
    }
    parts.push("exec".to_string());
    parts.extend(request.argv.iter().map(|a| shell_quote(a)));
    Ok(parts.join(" "))
}

/// Whether ssh's log says it could not reach or log in to the node (as opposed to a remote
/// command that exited with 255).
pub fn connection_failure(log: &str) -> Option<String> {
    let line = log
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())?
        .to_string();
    Some(line)
}

/// Runs `ssh` with `args` (see [`ssh_args`]) and `remote` as the remote command, streaming
/// output and stdin as the docker runner does. Returns the remote exit status, or an error
/// when ssh itself failed.
pub async fn run(
    node: &str,
    args: Vec<String>,
    log_file: &Path,
    remote: String,
    stdin: StdinSource,
    stdout: &mut (dyn AsyncWrite + Send + Unpin),
    stderr: &mut (dyn AsyncWrite + Send + Unpin),
) -> Result<i64, DriverError> {
    let exec_err = |detail: String| DriverError::Exec {
        node: node.to_string(),
        detail,
    };
    let has_stdin = !matches!(stdin, StdinSource::None);
    let mut child = tokio::process::Command::new("ssh")
        .args(&args)
        .arg(&remote)
        .stdin(if has_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| exec_err(format!("cannot run ssh: {e}")))?;
    let child_stdin = child.stdin.take();
    let mut child_stdout = child
        .stdout
        .take()
        .ok_or_else(|| exec_err("no stdout pipe".into()))?;
    let mut child_stderr = child
        .stderr
        .take()
        .ok_or_else(|| exec_err("no stderr pipe".into()))?;

    let feed = async move {
        let Some(mut input) = child_stdin else {
            return Ok(());
        };
        match stdin {
            StdinSource::None => {}
            StdinSource::Bytes(bytes) => {
                if let Err(e) = input.write_all(&bytes).await {
                    tracing::debug!(error = %e, "the command stopped reading its input");
                }
            }
            StdinSource::Stream(mut source) => {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = source.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    if let Err(e) = input.write_all(&buf[..n]).await {
                        tracing::debug!(error = %e, "the command stopped reading its input");
                        break;
                    }
                }
            }
        }
        // Dropping the pipe closes it: ssh sends EOF to the command.
        drop(input);
        Ok::<(), std::io::Error>(())
    };
    let copy_out = copy(&mut child_stdout, stdout);
    let copy_err = copy(&mut child_stderr, stderr);
    let (fed, out, err) = tokio::join!(feed, copy_out, copy_err);
    out.map_err(|e| DriverError::io("write command output", e))?;
    err.map_err(|e| DriverError::io("write command output", e))?;
    let status = child
        .wait()
        .await
        .map_err(|e| exec_err(format!("waiting for ssh: {e}")))?;
    if let Err(e) = fed {
        return Err(DriverError::io("read the command's input", e));
    }
    let code = match status.code() {
        Some(code) => i64::from(code),
        None => return Err(exec_err(format!("ssh was killed ({status})"))),
    };
    if code == 255 {
        let log = std::fs::read_to_string(log_file).unwrap_or_default();
        if let Some(line) = connection_failure(&log) {
            return Err(exec_err(format!("ssh: {line}")));
        }
    }
    Ok(code)
}

async fn copy(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (dyn AsyncWrite + Send + Unpin),
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        to.write_all(&buf[..n]).await?;
    }
    to.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> SshTarget {
        SshTarget {
            node: "p-m02".into(),
            port: 41001,
            key: PathBuf::from("/h/qemu/id_ed25519"),
            known_hosts: PathBuf::from("/h/qemu/nodes/p-m02/known_hosts"),
        }
    }

    #[test]
    fn arguments_pin_the_node_and_ignore_user_config() {
        let args = ssh_args(&target(), false, Path::new("/tmp/log"));
        let joined = args.join(" ");
        for want in [
            "-F /dev/null",
            "-i /h/qemu/id_ed25519",
            "-o IdentitiesOnly=yes",
            "-o BatchMode=yes",
            "-o UserKnownHostsFile=/h/qemu/nodes/p-m02/known_hosts",
            "-o GlobalKnownHostsFile=/dev/null",
            "-o StrictHostKeyChecking=yes",
            "-o HostKeyAlias=p-m02",
            "-o ConnectTimeout=15",
            "-o ServerAliveInterval=5",
            "-o ServerAliveCountMax=6",
            "-e none",
            "-T",
            "-E /tmp/log",
            "-p 41001 -l root 127.0.0.1 --",
        ] {
            assert!(joined.contains(want), "missing {want:?} in {joined}");
        }
        assert_eq!(args.last().map(String::as_str), Some("--"));
        let tty = ssh_args(&target(), true, Path::new("/tmp/log"));
        assert!(tty.contains(&"-tt".to_string()) && !tty.contains(&"-T".to_string()));
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("ctr"), "ctr");
        assert_eq!(shell_quote("/var/lib/x"), "/var/lib/x");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(shell_quote("a;b"), "'a;b'");
    }

    #[test]
    fn remote_commands() {
        let mut r = ExecRequest::new(["sh", "-c", "echo $HOME > /tmp/x", "sh"]);
        r.env.push("TERM=xterm-256color".into());
        assert_eq!(
            remote_command(&r).unwrap(),
            "export TERM=xterm-256color; exec sh -c 'echo $HOME > /tmp/x' sh"
        );
        r.tty = true;
        r.tty_size = Some((120, 40));
        assert_eq!(
            remote_command(&r).unwrap(),
            "export TERM=xterm-256color; stty cols 120 rows 40 2>/dev/null; exec sh -c 'echo $HOME > /tmp/x' sh"
        );
        assert!(remote_command(&ExecRequest::new(Vec::<String>::new())).is_err());
        let mut bad = ExecRequest::new(["true"]);
        bad.env.push("A B=1".into());
        assert!(remote_command(&bad).is_err());
        bad.env = vec!["NOEQUALS".into()];
        assert!(remote_command(&bad).is_err());
    }

    #[test]
    fn connection_failures_come_from_the_log() {
        assert_eq!(connection_failure(""), None);
        assert_eq!(connection_failure("\n  \n"), None);
        assert_eq!(
            connection_failure("ssh: connect to host 127.0.0.1 port 41001: Connection refused\r\n")
                .as_deref(),
            Some("ssh: connect to host 127.0.0.1 port 41001: Connection refused")
        );
    }

    /// What `remote_command` builds means the same argv to a real shell (`run` itself is
    /// exercised against real VMs in the e2e suite).
    #[tokio::test]
    async fn quoting_round_trips_through_a_real_shell() {
        let r = ExecRequest::new(["printf", "%s|", "a b", "it's", "$(x)", ""]);
        let line = remote_command(&r).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b|it's|$(x)||");
    }
}
