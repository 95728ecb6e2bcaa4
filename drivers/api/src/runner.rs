//! Running commands and moving files inside one node.

use crate::DriverError;
use std::future::Future;
use tokio::io::{AsyncRead, AsyncWrite};

/// Where a command's standard input comes from.
pub enum StdinSource {
    /// No input (the command sees EOF / /dev/null).
    None,
    /// These bytes, then EOF.
    Bytes(Vec<u8>),
    /// A stream copied until EOF (e.g. the host's stdin, or `docker save` output).
    Stream(Box<dyn AsyncRead + Send + Unpin>),
}

impl std::fmt::Debug for StdinSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StdinSource::None => f.write_str("None"),
            StdinSource::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            StdinSource::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// A command to run in a node.
#[derive(Debug)]
pub struct ExecRequest {
    /// argv; `argv[0]` is looked up in the node's PATH.
    pub argv: Vec<String>,
    pub stdin: StdinSource,
    /// Allocate a terminal (interactive shells). Output then arrives on stdout only.
    pub tty: bool,
    /// Initial terminal size (columns, rows) when `tty` is set.
    pub tty_size: Option<(u16, u16)>,
    /// Extra environment, `KEY=VALUE`.
    pub env: Vec<String>,
}

impl ExecRequest {
    /// A plain, non-interactive command.
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExecRequest {
            argv: argv.into_iter().map(Into::into).collect(),
            stdin: StdinSource::None,
            tty: false,
            tty_size: None,
            env: Vec::new(),
        }
    }

    /// Feeds `bytes` on stdin.
    pub fn stdin_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = StdinSource::Bytes(bytes.into());
        self
    }

    /// The command line for messages, shell-quoted loosely.
    pub fn display(&self) -> String {
        self.argv
            .iter()
            .map(|a| {
                if a.is_empty() || a.contains([' ', '"', '\'']) {
                    format!("{a:?}")
                } else {
                    a.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Captured result of a command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    pub exit_code: i64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// The last non-empty line of stderr, else stdout: what to show when a command failed.
    pub fn last_error_line(&self) -> String {
        let pick = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_string())
        };
        pick(&self.stderr)
            .or_else(|| pick(&self.stdout))
            .unwrap_or_default()
    }
}

/// Runs commands inside one node. Implementations: container exec (docker, podman),
/// SSH (qemu), and the recording fake.
pub trait Runner: Send + Sync {
    /// The node this runner targets.
    fn node(&self) -> &str;

    /// Runs a command, streaming its output into `stdout` / `stderr` as it arrives, and
    /// returns its exit code. An `Err` means the command could not be run at all.
    fn exec_streaming<'a>(
        &'a self,
        request: ExecRequest,
        stdout: &'a mut (dyn AsyncWrite + Send + Unpin),
        stderr: &'a mut (dyn AsyncWrite + Send + Unpin),
    ) -> impl Future<Output = Result<i64, DriverError>> + Send + 'a;

    /// Runs a command and captures its output.
    fn exec(
        &self,
        request: ExecRequest,
    ) -> impl Future<Output = Result<Output, DriverError>> + Send {
        async move {
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            let exit_code = self
                .exec_streaming(request, &mut stdout, &mut stderr)
                .await?;
            Ok(Output {
                exit_code,
                stdout,
                stderr,
            })
        }
    }

    /// Runs `argv` and captures its output.
    fn run(&self, argv: &[&str]) -> impl Future<Output = Result<Output, DriverError>> + Send {
        let request = ExecRequest::new(argv.iter().copied());
        self.exec(request)
    }

    /// Writes `contents` to `path` in the node with `mode`, creating parent directories.
    fn copy_to(
        &self,
        path: &str,
        contents: &[u8],
        mode: u32,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Reads a whole file from the node.
    fn read_file(&self, path: &str) -> impl Future<Output = Result<Vec<u8>, DriverError>> + Send;
}

/// Checks a [`Runner::copy_to`] destination: an absolute file path without `..` components.
pub fn check_copy_path(node: &str, path: &str) -> Result<(), DriverError> {
    if !path.starts_with('/') || path.ends_with('/') || path.split('/').any(|c| c == "..") {
        return Err(DriverError::Exec {
            node: node.to_string(),
            detail: format!("copy to {path:?}: the path must be an absolute file path without .."),
        });
    }
    Ok(())
}

/// [`Runner::copy_to`] over [`Runner::exec`], for runners without a file API (SSH) or paths
/// it cannot reach: `sh` writes the contents from stdin into a temporary file next to `path`
/// (creating the parents), then `chmod` and `mv`, so readers never see half a file.
pub async fn copy_by_exec<R: Runner + ?Sized>(
    runner: &R,
    path: &str,
    contents: &[u8],
    mode: u32,
) -> Result<(), DriverError> {
    check_copy_path(runner.node(), path)?;
    const SCRIPT: &str = r#"set -e
mkdir -p "$(dirname "$1")"
t=$(mktemp "$1.minik.XXXXXX")
trap 'rm -f "$t"' EXIT
cat >"$t"
chmod "$2" "$t"
mv -f "$t" "$1""#;
    let mode = format!("{:o}", mode & 0o7777);
    let request =
        ExecRequest::new(["sh", "-c", SCRIPT, "sh", path, mode.as_str()]).stdin_bytes(contents);
    let out = runner.exec(request).await?;
    if out.success() {
        Ok(())
    } else {
        Err(DriverError::Exec {
            node: runner.node().to_string(),
            detail: format!("write {path}: {}", out.last_error_line()),
        })
    }
}

/// [`Runner::read_file`] over [`Runner::exec`] (`cat`).
pub async fn read_by_exec<R: Runner + ?Sized>(
    runner: &R,
    path: &str,
) -> Result<Vec<u8>, DriverError> {
    let out = runner.exec(ExecRequest::new(["cat", "--", path])).await?;
    if out.success() {
        Ok(out.stdout)
    } else {
        Err(DriverError::Exec {
            node: runner.node().to_string(),
            detail: format!("read {path}: {}", out.last_error_line()),
        })
    }
}
