//! A minimal QMP (QEMU Machine Protocol) client over the VM's unix socket.
//!
//! QMP is JSON, one object per line: a greeting (`{"QMP": {...}}`), then `qmp_capabilities` to
//! leave negotiation mode, then commands (`{"execute": "stop"}`) answered by `{"return": ...}`
//! or `{"error": {"class": ..., "desc": ...}}`. Asynchronous events (`{"event": "STOP", ...}`)
//! may arrive at any time, also between a command and its answer; they are skipped.
//!
//! Every read and write has a deadline: a qemu that is stopped with SIGSTOP or wedged makes
//! [`QmpError::Timeout`], never a hang.

use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// How long one QMP exchange may take (qemu answers in milliseconds, even under TCG: QMP runs
/// in its main loop, not in the vCPUs).
pub const QMP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a QMP exchange failed.
#[derive(Debug)]
pub enum QmpError {
    /// The socket is not there or nobody listens (qemu is not running).
    Connect(std::io::Error),
    /// Reading or writing failed after connecting (qemu exited meanwhile).
    Io(std::io::Error),
    /// qemu did not answer in time.
    Timeout(&'static str),
    /// qemu sent something that is not QMP.
    Protocol(String),
    /// qemu refused the command.
    Command {
        /// The error class, e.g. `GenericError`.
        class: String,
        /// qemu's message.
        desc: String,
    },
}

impl std::fmt::Display for QmpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QmpError::Connect(e) => write!(f, "cannot connect to QMP: {e}"),
            QmpError::Io(e) => write!(f, "QMP connection failed: {e}"),
            QmpError::Timeout(what) => write!(f, "qemu did not answer {what} on QMP in time"),
            QmpError::Protocol(m) => write!(f, "unexpected QMP message: {m}"),
            QmpError::Command { class, desc } => write!(f, "qemu refused: {desc} ({class})"),
        }
    }
}

impl std::error::Error for QmpError {}

/// The VM's run state from `query-status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunState {
    /// qemu's state name: `running`, `paused`, `shutdown`, `guest-panicked`, ...
    pub status: String,
    /// Whether the vCPUs run.
    pub running: bool,
}

/// An open QMP session (capabilities negotiated).
pub struct Qmp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    timeout: Duration,
}

impl Qmp {
    /// Connects to `socket`, reads the greeting and leaves negotiation mode.
    pub async fn connect(socket: &Path, timeout: Duration) -> Result<Qmp, QmpError> {
        let stream = tokio::time::timeout(timeout, UnixStream::connect(socket))
            .await
            .map_err(|_| QmpError::Timeout("the connection"))?
            .map_err(QmpError::Connect)?;
        let (read, writer) = stream.into_split();
        let mut qmp = Qmp {
            reader: BufReader::new(read),
            writer,
            timeout,
        };
        let greeting = qmp.read_message("the greeting").await?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Protocol(format!("no greeting: {greeting}")));
        }
        qmp.execute("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    async fn read_message(&mut self, what: &'static str) -> Result<Value, QmpError> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = tokio::time::timeout(self.timeout, self.reader.read_line(&mut line))
                .await
                .map_err(|_| QmpError::Timeout(what))?
                .map_err(QmpError::Io)?;
            if n == 0 {
                return Err(QmpError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "qemu closed the QMP connection",
                )));
            }
            if line.trim().is_empty() {
                continue;
            }
            return serde_json::from_str(line.trim())
                .map_err(|e| QmpError::Protocol(format!("{e}: {}", line.trim())));
        }
    }

    /// Runs `command` (with `arguments`, an object) and returns its `return` value. Events
    /// that arrive meanwhile are skipped.
    pub async fn execute(
        &mut self,
        command: &'static str,
        arguments: Option<Value>,
    ) -> Result<Value, QmpError> {
        let mut message = json!({ "execute": command });
        if let Some(args) = arguments {
            message["arguments"] = args;
        }
        let mut line = message.to_string();
        line.push('\n');
        tokio::time::timeout(self.timeout, self.writer.write_all(line.as_bytes()))
            .await
            .map_err(|_| QmpError::Timeout(command))?
            .map_err(QmpError::Io)?;
        loop {
            let reply = self.read_message(command).await?;
            if let Some(value) = reply.get("return") {
                return Ok(value.clone());
            }
            if let Some(error) = reply.get("error") {
                let field = |k: &str| {
                    error
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                return Err(QmpError::Command {
                    class: field("class"),
                    desc: field("desc"),
                });
            }
            if reply.get("event").is_some() {
                continue;
            }
            return Err(QmpError::Protocol(reply.to_string()));
        }
    }

    /// `query-status`.
    pub async fn query_status(&mut self) -> Result<RunState, QmpError> {
        let value = self.execute("query-status", None).await?;
        let status = value
            .get("status")
            .and_then(Value::as_str)
            .ok_or_else(|| QmpError::Protocol(format!("query-status without status: {value}")))?
            .to_string();
        let running = value
            .get("running")
            .and_then(Value::as_bool)
            .unwrap_or(status == "running");
        Ok(RunState { status, running })
    }
}

/// Connects, runs one command, and closes.
pub async fn run_once(
    socket: &Path,
    command: &'static str,
    arguments: Option<Value>,
) -> Result<Value, QmpError> {
    let mut qmp = Qmp::connect(socket, QMP_TIMEOUT).await?;
    qmp.execute(command, arguments).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::UnixListener;

    /// A fake qemu: sends the greeting, then answers each command line from `script`
    /// (`(expected command, reply lines)`), and records what it received.
    async fn fake_qemu(
        listener: UnixListener,
        script: Vec<(&'static str, Vec<String>)>,
    ) -> Vec<Value> {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write
            .write_all(b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}}, \"capabilities\": [\"oob\"]}}\r\n")
            .await
            .unwrap();
        let mut seen = Vec::new();
        for (expected, replies) in script {
            let line = lines.next_line().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["execute"], expected, "{line}");
            seen.push(v);
            for r in replies {
                write.write_all(r.as_bytes()).await.unwrap();
                write.write_all(b"\r\n").await.unwrap();
            }
        }
        seen
    }

    fn ok() -> Vec<String> {
        vec!["{\"return\": {}}".into()]
    }

    #[tokio::test]
    async fn negotiates_skips_events_and_reads_status() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let server = tokio::spawn(fake_qemu(
            listener,
            vec![
                ("qmp_capabilities", ok()),
                (
                    "stop",
                    vec![
                        "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"STOP\"}"
                            .into(),
                        "{\"return\": {}}".into(),
                    ],
                ),
                (
                    "query-status",
                    vec!["{\"return\": {\"status\": \"paused\", \"singlestep\": false, \"running\": false}}".into()],
                ),
                (
                    "device_del",
                    vec!["{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"Device 'x' not found\"}}".into()],
                ),
            ],
        ));
        let mut qmp = Qmp::connect(&sock, Duration::from_secs(2)).await.unwrap();
        assert_eq!(qmp.execute("stop", None).await.unwrap(), json!({}));
        assert_eq!(
            qmp.query_status().await.unwrap(),
            RunState {
                status: "paused".into(),
                running: false
            }
        );
        let err = qmp
            .execute("device_del", Some(json!({"id": "x"})))
            .await
            .unwrap_err();
        match err {
            QmpError::Command { class, desc } => {
                assert_eq!(class, "DeviceNotFound");
                assert!(desc.contains("not found"));
            }
            other => panic!("{other}"),
        }
        let seen = server.await.unwrap();
        assert_eq!(seen[3]["arguments"], json!({"id": "x"}));
    }

    #[tokio::test]
    async fn a_silent_qemu_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        // Accepts and then says nothing, like a qemu stopped with SIGSTOP (the kernel still
        // accepts connections on its listening socket).
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 64];
            let _ = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf)).await;
        });
        let started = std::time::Instant::now();
        let err = match Qmp::connect(&sock, Duration::from_millis(300)).await {
            Err(e) => e,
            Ok(_) => panic!("connected to a silent server"),
        };
        assert!(matches!(err, QmpError::Timeout(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        server.abort();
    }

    #[tokio::test]
    async fn missing_socket_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let err = match Qmp::connect(&dir.path().join("none.sock"), QMP_TIMEOUT).await {
            Err(e) => e,
            Ok(_) => panic!("connected to nothing"),
        };
        assert!(matches!(err, QmpError::Connect(_)), "{err}");

        let sock = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.write_all(b"hello, not json\n").await.unwrap();
        });
        let err = match Qmp::connect(&sock, QMP_TIMEOUT).await {
            Err(e) => e,
            Ok(_) => panic!("accepted garbage"),
        };
        assert!(matches!(err, QmpError::Protocol(_)), "{err}");
    }
}
