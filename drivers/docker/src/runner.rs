//! [`DockerRunner`]: commands and files inside one node container, through the engine's exec
//! and archive APIs.

use crate::engine::{ContainerEngine, message_of, status_of};
use crate::state::host_state_of;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use bollard::query_parameters::{ResizeExecOptionsBuilder, UploadToContainerOptionsBuilder};
use futures_util::StreamExt;
use minik_driver_api::{
    DriverError, ExecRequest, Runner, StdinSource, check_copy_path, copy_by_exec, read_by_exec,
};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Size of the chunks copied from a stdin stream into a command.
const STDIN_CHUNK: usize = 64 * 1024;
/// How long to wait, after a command's output ended, for the engine to record its exit code.
const EXIT_CODE_WAIT: Duration = Duration::from_secs(10);

/// Directories that are not part of the container's filesystem as the archive API sees it
/// (tmpfs mounts of the node, and the symlinks into them on Debian): files written there through
/// the archive API land in the hidden layer below the mount and are never seen inside.
const NOT_IN_ARCHIVE_VIEW: [&str; 5] = ["/run", "/tmp", "/var/run", "/var/lock", "/dev"];

/// Runs commands in one node container (the engine's exec API) and copies files into it (the
/// archive API, or a `sh` one-liner for tmpfs-backed paths).
///
/// Commands need the node running: a stopped or paused node gives
/// [`DriverError::NodeNotRunning`], a missing one [`DriverError::NodeNotFound`].
#[derive(Debug, Clone)]
pub struct DockerRunner {
    engine: Arc<ContainerEngine>,
    node: String,
}

impl DockerRunner {
    /// A runner for the container named `node` on `engine`.
    pub fn new(engine: Arc<ContainerEngine>, node: impl Into<String>) -> DockerRunner {
        DockerRunner {
            engine,
            node: node.into(),
        }
    }

    /// Why an exec could not be created or started: a missing or not-running node gets its own
    /// error; anything else is an [`DriverError::Exec`].
    async fn exec_failure(&self, e: BollardError) -> DriverError {
        match status_of(&e) {
            Some(404) => DriverError::NodeNotFound {
                node: self.node.clone(),
            },
            Some(409) => {
                let state = match self
                    .engine
                    .docker()
                    .inspect_container(&self.node, None)
                    .await
                {
                    Ok(c) => host_state_of(&c).to_string(),
                    Err(_) if message_of(&e).contains("paused") => "Paused".to_string(),
                    Err(_) => "Stopped".to_string(),
                };
                DriverError::NodeNotRunning {
                    node: self.node.clone(),
                    state,
                }
            }
            _ => match self.engine.error("exec", e) {
                DriverError::Engine { detail, .. } => DriverError::Exec {
                    node: self.node.clone(),
                    detail,
                },
                other => other,
            },
        }
    }

    /// Waits for the engine to record the exit code of exec `id` (its output stream can end a
    /// moment before the engine notices the process exited).
    async fn exit_code(&self, id: &str) -> Result<i64, DriverError> {
        let docker = self.engine.docker();
        let deadline = tokio::time::Instant::now() + EXIT_CODE_WAIT;
        let mut pause = Duration::from_millis(2);
        loop {
            let inspect = docker
                .inspect_exec(id)
                .await
                .map_err(|e| self.engine.error("inspect exec", e))?;
            if inspect.running != Some(true) {
                return inspect.exit_code.ok_or_else(|| DriverError::Exec {
                    node: self.node.clone(),
                    detail: "the engine reported no exit code".into(),
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(DriverError::Timeout {
                    what: format!("the exit code of a command in node {}", self.node),
                    seconds: EXIT_CODE_WAIT.as_secs(),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    async fn exec_inner(
        &self,
        request: ExecRequest,
        stdout: &mut (dyn AsyncWrite + Send + Unpin),
        stderr: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<i64, DriverError> {
        let docker = self.engine.ready().await?;
        if request.argv.is_empty() {
            return Err(DriverError::Exec {
                node: self.node.clone(),
                detail: "empty command".into(),
            });
        }
        let has_stdin = !matches!(request.stdin, StdinSource::None);
        let tty_size = request.tty_size.filter(|_| request.tty);
        // (Only for bytes: a stream, such as the user's stdin, may never end.)
        let drain = self.engine.flavor().drain_stdin
            && !request.tty
            && matches!(request.stdin, StdinSource::Bytes(_));
        let argv = if drain {
            drained(request.argv)
        } else {
            request.argv
        };
        let options = ExecConfig {
            cmd: Some(argv),
            env: (!request.env.is_empty()).then_some(request.env),
            attach_stdin: Some(has_stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(request.tty),
            // Engines from API 1.42 start the terminal with this size; older ones ignore it and
            // only get the resize below, which a program that reads the size at once may miss.
            console_size: tty_size.map(|(cols, rows)| vec![usize::from(rows), usize::from(cols)]),
            ..Default::default()
        };
        let exec = match docker.create_exec(&self.node, options).await {
            Ok(exec) => exec,
            Err(e) => return Err(self.exec_failure(e).await),
        };
        let start = StartExecOptions {
            detach: false,
            tty: request.tty,
            output_capacity: None,
        };
        let (mut output, input) = match docker.start_exec(&exec.id, Some(start)).await {
            Ok(StartExecResults::Attached { output, input }) => (output, input),
            Ok(StartExecResults::Detached) => {
                return Err(DriverError::Exec {
                    node: self.node.clone(),
                    detail: "the engine detached the command".into(),
                });
            }
            Err(e) => return Err(self.exec_failure(e).await),
        };
        if let Some((cols, rows)) = tty_size {
            let size = ResizeExecOptionsBuilder::default()
                .w(i32::from(cols))
                .h(i32::from(rows))
                .build();
            if let Err(e) = docker.resize_exec(&exec.id, size).await {
                tracing::debug!(node = %self.node, error = %e, "could not size the command's terminal");
            }
        }

        // Output is read while stdin is still being fed: a command that writes before it has
        // read all its input (or never reads it) would otherwise block on a full pipe.
        let feeding = feed_stdin(input, request.stdin);
        tokio::pin!(feeding);
        let mut fed = !has_stdin;
        let mut stdin_error = None;
        let mut reset_after_exit = None;
        loop {
            tokio::select! {
                result = &mut feeding, if !fed => {
                    fed = true;
                    stdin_error = result.err();
                }
                item = output.next() => match item {
                    None => break,
                    Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => {
                        stdout.write_all(&message).await.map_err(|e| DriverError::io("write command output", e))?;
                    }
                    Some(Ok(LogOutput::StdErr { message })) => {
                        stderr.write_all(&message).await.map_err(|e| DriverError::io("write command output", e))?;
                    }
                    Some(Ok(LogOutput::StdIn { .. })) => {}
                    // podman's Docker-compatible API resets the exec connection when a command
                    // exits without reading all of its input (`head -c 5` of a large stdin).
                    // Once the command has ended, that reset ends its output; the exit code
                    // still comes from the engine's exec inspect. A reset of a command that
                    // keeps running is a failure.
                    Some(Err(e)) if is_connection_reset(&e) => {
                        tracing::debug!(node = %self.node, error = %e, "the exec connection was reset; checking that the command ended");
                        if let Ok(code) = self.exit_code(&exec.id).await {
                            reset_after_exit = Some(code);
                            break;
                        }
                        return Err(DriverError::Exec { node: self.node.clone(), detail: format!("reading output: {e}") });
                    }
                    Some(Err(e)) => {
                        return Err(DriverError::Exec { node: self.node.clone(), detail: format!("reading output: {e}") });
                    }
                },
            }
        }
        // A command that exits without reading all of its input is fine; the input left over is
        // dropped with the connection.
        stdout
            .flush()
            .await
            .map_err(|e| DriverError::io("write command output", e))?;
        stderr
            .flush()
            .await
            .map_err(|e| DriverError::io("write command output", e))?;
        if let Some(e) = stdin_error {
            return Err(DriverError::io("read the command's input", e));
        }
        match reset_after_exit {
            Some(code) => Ok(code),
            None => self.exit_code(&exec.id).await,
        }
    }
}

/// `argv` under `sh`, which reads (and drops) whatever input the command left unread before it
/// exits with the command's exit code (see [`crate::Flavor::drain_stdin`]).
fn drained(argv: Vec<String>) -> Vec<String> {
    let mut wrapped = vec![
        "sh".to_string(),
        "-c".to_string(),
        r#""$@"; s=$?; cat >/dev/null; exit $s"#.to_string(),
        "sh".to_string(),
    ];
    wrapped.extend(argv);
    wrapped
}

/// Whether `e` is (caused by) the engine resetting the connection.
fn is_connection_reset(e: &BollardError) -> bool {
    // (bollard's IOError is `transparent`: its io::Error is not a `source`.)
    if let BollardError::IOError { err } = e
        && err.kind() == std::io::ErrorKind::ConnectionReset
    {
        return true;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cause {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionReset
        {
            return true;
        }
        cause = err.source();
    }
    false
}

/// Copies `stdin` into the command's input, then closes the input so the command sees EOF.
/// Only a failure to read the source is an error; a command that stops reading (exits, closes
/// its stdin) just ends the copy.
async fn feed_stdin(
    mut input: Pin<Box<dyn AsyncWrite + Send>>,
    stdin: StdinSource,
) -> std::io::Result<()> {
    match stdin {
        StdinSource::None => return Ok(()),
        StdinSource::Bytes(bytes) => {
            if let Err(e) = input.write_all(&bytes).await {
                tracing::debug!(error = %e, "the command stopped reading its input");
                return Ok(());
            }
        }
        StdinSource::Stream(mut source) => {
            let mut buf = vec![0u8; STDIN_CHUNK];
            loop {
                let n = source.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                if let Err(e) = input.write_all(&buf[..n]).await {
                    tracing::debug!(error = %e, "the command stopped reading its input");
                    return Ok(());
                }
            }
        }
    }
    // Half-closes the connection: the engine then closes the command's stdin.
    if let Err(e) = input.shutdown().await {
        tracing::debug!(error = %e, "could not close the command's input");
    }
    Ok(())
}

/// Whether `path` lies where the archive API does not see the node's files.
fn outside_archive_view(path: &str) -> bool {
    NOT_IN_ARCHIVE_VIEW.iter().any(|dir| {
        path == *dir
            || path
                .strip_prefix(dir)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// A tar holding one regular file at `path` (relative to `/`), owned by root, with `mode`.
fn single_file_tar(path: &str, contents: &[u8], mode: u32) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::with_capacity(contents.len() + 2048));
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(contents.len() as u64);
    header.set_mode(mode & 0o7777);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    builder.append_data(&mut header, path.trim_start_matches('/'), contents)?;
    builder.into_inner()
}

impl Runner for DockerRunner {
    fn node(&self) -> &str {
        &self.node
    }

    fn exec_streaming<'a>(
        &'a self,
        request: ExecRequest,
        stdout: &'a mut (dyn AsyncWrite + Send + Unpin),
        stderr: &'a mut (dyn AsyncWrite + Send + Unpin),
    ) -> impl std::future::Future<Output = Result<i64, DriverError>> + Send + 'a {
        self.exec_inner(request, stdout, stderr)
    }

    /// Writes the file through the archive API (parents are created, owned by root, mode
    /// 0755), or for paths under the node's tmpfs mounts with `sh`, `mkdir -p`, `cat` and `mv`.
    async fn copy_to(&self, path: &str, contents: &[u8], mode: u32) -> Result<(), DriverError> {
        check_copy_path(&self.node, path)?;
        if outside_archive_view(path) {
            return copy_by_exec(self, path, contents, mode).await;
        }
        let docker = self.engine.ready().await?;
        let archive = single_file_tar(path, contents, mode)
            .map_err(|e| DriverError::io("pack a file for a node", e))?;
        let options = UploadToContainerOptionsBuilder::default().path("/").build();
        match docker
            .upload_to_container(
                &self.node,
                Some(options),
                bollard::body_full(archive.into()),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e)
                if status_of(&e) == Some(404)
                    && message_of(&e).to_ascii_lowercase().contains("container") =>
            {
                Err(DriverError::NodeNotFound {
                    node: self.node.clone(),
                })
            }
            Err(e @ BollardError::DockerResponseServerError { .. }) => Err(DriverError::Exec {
                node: self.node.clone(),
                detail: format!("write {path}: {}", message_of(&e)),
            }),
            Err(e) => Err(self
                .engine
                .error(format!("copy {path} to node {}", self.node), e)),
        }
    }

    /// Reads the file with `cat` in the node, which sees the node's real view (tmpfs mounts,
    /// `/proc`, symlinks), unlike the archive API.
    async fn read_file(&self, path: &str) -> Result<Vec<u8>, DriverError> {
        read_by_exec(self, path).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drained_commands_keep_their_argv() {
        assert_eq!(
            drained(vec!["head".into(), "-c".into(), "5".into()]),
            [
                "sh",
                "-c",
                r#""$@"; s=$?; cat >/dev/null; exit $s"#,
                "sh",
                "head",
                "-c",
                "5"
            ]
        );
    }

    #[test]
    fn tmpfs_paths_are_recognised() {
        assert!(outside_archive_view("/tmp/x"));
        assert!(outside_archive_view("/run/containerd/x.toml"));
        assert!(outside_archive_view("/var/run/x"));
        assert!(!outside_archive_view("/runner/x"));
        assert!(!outside_archive_view("/etc/kubernetes/admin.conf"));
        assert!(!outside_archive_view("/var/lib/x"));
    }

    #[test]
    fn tar_holds_one_file_with_mode() {
        let bytes = single_file_tar("/etc/minik/a.conf", b"hello", 0o640).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let entries: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mode().unwrap(),
                    e.header().size().unwrap(),
                )
            })
            .collect();
        assert_eq!(entries, vec![("etc/minik/a.conf".to_string(), 0o640, 5)]);
    }
}
