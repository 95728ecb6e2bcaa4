//! The [`Runner`] contract, as one test every real runner passes (docker, podman, the qemu
//! driver's SSH runner): built with the `testing` feature, called from each driver crate's
//! tests against a running node.
//!
//! What a runner must do, whatever carries the command:
//! - exit codes as the command gave them (0, 3, 255), stdout and stderr kept apart, a missing
//!   program a failed command (or an `Exec` error), an empty argv an `Exec` error, arguments
//!   passed as given (no shell in between);
//! - extra environment (`ExecRequest::env`);
//! - stdin: bytes and streams (10 MiB) reach the command whole, followed by EOF; empty input is
//!   just EOF; a command that stops reading early (`head -c 5`) neither hangs nor fails the
//!   runner, and its exit code is the command's;
//! - output streamed as it is produced, and large output (20 MB) whole;
//! - a terminal of the size asked for, output on stdout only;
//! - files: `copy_to` creates parents, keeps the mode, is binary-safe, overwrites, reaches
//!   tmpfs paths, writes empty files; `read_file` reads them back; a missing file and bad
//!   destinations are `Exec` errors.
//!
//! The node needs a POSIX userland (sh, cat, wc, head, stat, stty, printf, mktemp) and runs the
//! commands as root. Durations are printed, never asserted; a hang fails after
//! [`HANG_LIMIT`].

use crate::{DriverError, ExecRequest, Runner, StdinSource};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long one step may take before the contract calls it a hang (slow VMs under TCG
/// included).
pub const HANG_LIMIT: Duration = Duration::from_secs(120);

/// An output sink that remembers when each chunk arrived.
#[derive(Default)]
pub struct Timed {
    pub chunks: Vec<(Instant, Vec<u8>)>,
}

impl AsyncWrite for Timed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.chunks.push((Instant::now(), buf.to_vec()));
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// `left` bytes of the pattern `abc...z`, produced as they are read (no buffer of the whole).
pub struct Generated {
    pub left: u64,
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left) as usize;
        let chunk: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
        buf.put_slice(&chunk);
        self.left -= n as u64;
        Poll::Ready(Ok(()))
    }
}

/// Awaits `f`, failing the test when it takes longer than [`HANG_LIMIT`]; prints how long
/// it took.
async fn timed<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    match tokio::time::timeout(HANG_LIMIT, f).await {
        Ok(v) => {
            eprintln!(
                "runner contract: {what}: {:.3}s",
                started.elapsed().as_secs_f64()
            );
            v
        }
        Err(_) => panic!("runner contract: {what} did not finish in {HANG_LIMIT:?}"),
    }
}

async fn exec<R: Runner>(runner: &R, request: ExecRequest) -> crate::Output {
    let line = request.display();
    runner
        .exec(request)
        .await
        .unwrap_or_else(|e| panic!("{line}: {e}"))
}

async fn run<R: Runner>(runner: &R, argv: &[&str]) -> crate::Output {
    exec(runner, ExecRequest::new(argv.iter().copied())).await
}

/// Runs the whole contract against `runner`, whose node is running. Panics (fails the test)
/// at the first broken promise. Leaves files under /etc/minik-test, /tmp/minik-test,
/// /run/minik and /var/run/minik in the node.
pub async fn check<R: Runner>(runner: &R) {
    exit_codes_and_streams(runner).await;
    environment(runner).await;
    stdin(runner).await;
    streamed_and_large_output(runner).await;
    terminal(runner).await;
    files(runner).await;
}

/// Exit codes, stdout/stderr apart, missing programs, empty argv, arguments as given.
pub async fn exit_codes_and_streams<R: Runner>(runner: &R) {
    let out = run(runner, &["sh", "-c", "echo out; echo err >&2; exit 3"]).await;
    assert_eq!(
        (
            out.exit_code,
            out.stdout_str().as_str(),
            out.stderr_str().as_str()
        ),
        (3, "out\n", "err\n")
    );
    // A command's own 255 is an exit code (ssh's own failures are 255 too).
    assert_eq!(run(runner, &["sh", "-c", "exit 255"]).await.exit_code, 255);
    let out = run(runner, &["true"]).await;
    assert!(
        out.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "{out:?}"
    );
    // A missing program: the command fails (not the runner), or the runner says Exec.
    match runner.run(&["no-such-program-here"]).await {
        Ok(out) => {
            eprintln!(
                "runner contract: missing program: exit {} / {:?}",
                out.exit_code,
                out.last_error_line()
            );
            assert_ne!(out.exit_code, 0, "{out:?}");
        }
        Err(e) => assert!(matches!(e, DriverError::Exec { .. }), "{e}"),
    }
    assert!(matches!(
        runner.run(&[]).await,
        Err(DriverError::Exec { .. })
    ));
    // Arguments arrive as given, whatever a shell would make of them.
    let out = run(runner, &["printf", "%s|", "a b", "it's", "$(id)", "*", ""]).await;
    assert_eq!(out.stdout_str(), "a b|it's|$(id)|*||");
}

/// Extra environment reaches the command.
pub async fn environment<R: Runner>(runner: &R) {
    let mut request = ExecRequest::new(["sh", "-c", "echo \"$FOO|$MINIK_TWO\""]);
    request.env = vec!["FOO=bar baz".into(), "MINIK_TWO=2".into()];
    assert_eq!(exec(runner, request).await.stdout_str(), "bar baz|2\n");
}

/// stdin: bytes and streams arrive whole, then EOF; a reader that stops early.
pub async fn stdin<R: Runner>(runner: &R) {
    let ten_mb = vec![b'x'; 10 << 20];
    let out = timed(
        "10 MiB of stdin bytes",
        exec(
            runner,
            ExecRequest::new(["wc", "-c"]).stdin_bytes(ten_mb.clone()),
        ),
    )
    .await;
    assert_eq!(out.stdout_str().trim(), (10 << 20).to_string(), "{out:?}");
    let mut request = ExecRequest::new(["sh", "-c", "cat | wc -c"]);
    request.stdin = StdinSource::Stream(Box::new(Generated { left: 10 << 20 }));
    let out = timed("10 MiB of stdin stream", exec(runner, request)).await;
    assert_eq!(out.stdout_str().trim(), (10 << 20).to_string(), "{out:?}");
    let out = exec(runner, ExecRequest::new(["cat"]).stdin_bytes(Vec::new())).await;
    assert!(
        out.success() && out.stdout.is_empty(),
        "empty input is just EOF: {out:?}"
    );
    // Commands that stop reading early neither hang nor fail the runner; the exit code is
    // theirs.
    let out = timed(
        "head -c 5 of 10 MiB of bytes",
        exec(
            runner,
            ExecRequest::new(["head", "-c", "5"]).stdin_bytes(ten_mb),
        ),
    )
    .await;
    assert_eq!(
        (out.exit_code, out.stdout.as_slice()),
        (0, b"xxxxx".as_slice()),
        "{out:?}"
    );
    let mut request = ExecRequest::new(["sh", "-c", "head -c 5; exit 7"]);
    request.stdin = StdinSource::Stream(Box::new(Generated { left: 10 << 20 }));
    let out = timed(
        "head -c 5 of a 10 MiB stream, exit 7",
        exec(runner, request),
    )
    .await;
    assert_eq!(
        (out.exit_code, out.stdout.as_slice()),
        (7, b"abcde".as_slice()),
        "{out:?}"
    );
    // One that reads nothing at all.
    let out = timed(
        "true with 10 MiB of stdin",
        exec(
            runner,
            ExecRequest::new(["true"]).stdin_bytes(vec![b'y'; 10 << 20]),
        ),
    )
    .await;
    assert!(out.success(), "{out:?}");
}

/// Output arrives as it is produced; large output arrives whole.
pub async fn streamed_and_large_output<R: Runner>(runner: &R) {
    let (mut so, mut se) = (Timed::default(), Timed::default());
    let code = runner
        .exec_streaming(
            ExecRequest::new(["sh", "-c", "echo first; sleep 1.5; echo second"]),
            &mut so,
            &mut se,
        )
        .await
        .unwrap();
    assert_eq!(code, 0);
    assert!(so.chunks.len() >= 2, "{:?}", so.chunks.len());
    let (first, last) = (so.chunks[0].0, so.chunks[so.chunks.len() - 1].0);
    assert_eq!(so.chunks[0].1, b"first\n");
    // (A lower bound the command's own sleep guarantees: not a speed figure.)
    assert!(
        last - first >= Duration::from_secs(1),
        "the first chunk arrived late, with the last: {:?}",
        last - first
    );

    let out = timed(
        "20 MB of output",
        run(runner, &["head", "-c", "20000000", "/dev/zero"]),
    )
    .await;
    assert_eq!(out.stdout.len(), 20_000_000);
}

/// A terminal of the size asked for; its output comes on stdout only. (Docker Engines before
/// API 1.42 apply the size only after the start: the command waits a moment before asking.)
pub async fn terminal<R: Runner>(runner: &R) {
    let mut request =
        ExecRequest::new(["sh", "-c", "sleep 0.5; stty size; echo oops >&2; test -t 0"]);
    request.tty = true;
    request.tty_size = Some((123, 45));
    let out = exec(runner, request).await;
    assert_eq!(out.exit_code, 0, "{out:?}");
    assert!(out.stdout_str().contains("45 123"), "{out:?}");
    assert!(
        out.stdout_str().contains("oops") && out.stderr.is_empty(),
        "{out:?}"
    );
}

/// `copy_to` and `read_file`.
pub async fn files<R: Runner>(runner: &R) {
    let path = "/etc/minik-test/deep/a.bin";
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    runner.copy_to(path, &bytes, 0o640).await.unwrap();
    assert_eq!(runner.read_file(path).await.unwrap(), bytes);
    let stat = run(runner, &["stat", "-c", "%a %U", path]).await;
    assert_eq!(stat.stdout_str().trim(), "640 root");
    runner.copy_to(path, b"second", 0o755).await.unwrap();
    assert_eq!(runner.read_file(path).await.unwrap(), b"second");
    let stat = run(runner, &["stat", "-c", "%a", path]).await;
    assert_eq!(stat.stdout_str().trim(), "755");
    // tmpfs-backed paths (which docker's archive API cannot reach).
    for path in [
        "/tmp/minik-test/t.sh",
        "/run/minik/r.conf",
        "/var/run/minik/v.conf",
    ] {
        runner
            .copy_to(path, b"#!/bin/sh\necho ran\n", 0o700)
            .await
            .unwrap();
        assert_eq!(
            runner.read_file(path).await.unwrap(),
            b"#!/bin/sh\necho ran\n",
            "{path}"
        );
        let stat = run(runner, &["stat", "-c", "%a", path]).await;
        assert_eq!(stat.stdout_str().trim(), "700", "{path}");
    }
    assert_eq!(
        run(runner, &["/tmp/minik-test/t.sh"]).await.stdout_str(),
        "ran\n",
        "tmp allows exec"
    );
    // Empty files.
    runner
        .copy_to("/etc/minik-test/empty", b"", 0o644)
        .await
        .unwrap();
    assert!(
        runner
            .read_file("/etc/minik-test/empty")
            .await
            .unwrap()
            .is_empty()
    );
    // Errors.
    let err = runner
        .read_file("/etc/minik-test/missing")
        .await
        .unwrap_err();
    assert!(
        matches!(err, DriverError::Exec { ref detail, .. } if detail.contains("No such file")),
        "{err}"
    );
    for bad in ["relative/path", "/etc/../x", "/etc/minik-test/"] {
        assert!(
            matches!(
                runner.copy_to(bad, b"x", 0o644).await,
                Err(DriverError::Exec { .. })
            ),
            "{bad}"
        );
    }
}
