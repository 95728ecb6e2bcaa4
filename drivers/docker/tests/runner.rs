//! The docker runner against a real Docker Engine: exec (output streams, exit codes, stdin and
//! its EOF, tty, env) and file copies.

mod common;

use common::*;
use minik_driver_api::{Driver, DriverError, ExecRequest, NullObserver, Role, Runner, StdinSource};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::AsyncWrite;

/// An output sink that remembers when each chunk arrived.
#[derive(Default)]
struct Timed {
    chunks: Vec<(Instant, Vec<u8>)>,
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

#[tokio::test]
async fn exec_and_files() {
    let driver = driver().await;
    let image = test_image(&driver).await;
    let profile = unique_profile("run");
    let _guard = ProfileGuard::new(&profile);
    let spec = node(&profile, 0, Role::ControlPlane);
    driver
        .create_node(&request(&profile, &image), &spec, &NullObserver)
        .await
        .unwrap();
    let runner = driver.runner(&spec.name);
    assert_eq!(runner.node(), spec.name);

    // stdout, stderr and the exit code are kept apart.
    let out = runner
        .run(&["sh", "-c", "echo out; echo err >&2; exit 3"])
        .await
        .unwrap();
    assert_eq!(
        (
            out.exit_code,
            out.stdout_str().as_str(),
            out.stderr_str().as_str()
        ),
        (3, "out\n", "err\n")
    );
    let out = runner.run(&["true"]).await.unwrap();
    assert!(out.success() && out.stdout.is_empty() && out.stderr.is_empty());

    // A missing program: the command fails (not the runner).
    match runner.run(&["no-such-program-here"]).await {
        Ok(out) => {
            eprintln!(
                "missing program: exit {} / {:?}",
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

    // Environment.
    let mut request = ExecRequest::new(["sh", "-c", "echo \"$FOO|$container\""]);
    request.env = vec!["FOO=bar baz".into()];
    assert_eq!(
        runner.exec(request).await.unwrap().stdout_str(),
        "bar baz|docker\n"
    );

    // stdin: bytes and streams reach the command, followed by EOF.
    let ten_mb = vec![b'x'; 10 << 20];
    let out = runner
        .exec(ExecRequest::new(["wc", "-c"]).stdin_bytes(ten_mb.clone()))
        .await
        .unwrap();
    assert_eq!(out.stdout_str().trim(), (10 << 20).to_string());
    let mut request = ExecRequest::new(["sh", "-c", "cat | wc -c"]);
    request.stdin = StdinSource::Stream(Box::new(std::io::Cursor::new(ten_mb.clone())));
    let out = runner.exec(request).await.unwrap();
    assert_eq!(out.stdout_str().trim(), (10 << 20).to_string());
    let out = runner
        .exec(ExecRequest::new(["cat"]).stdin_bytes(Vec::new()))
        .await
        .unwrap();
    assert!(
        out.success() && out.stdout.is_empty(),
        "empty input is just EOF"
    );
    // A command that stops reading early neither hangs nor fails the runner.
    let started = Instant::now();
    let out = runner
        .exec(ExecRequest::new(["head", "-c", "5"]).stdin_bytes(ten_mb))
        .await
        .unwrap();
    assert_eq!(
        (out.exit_code, out.stdout.as_slice()),
        (0, b"xxxxx".as_slice())
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // Output is streamed as it is produced, not collected until the end.
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
    assert!(
        last - first >= Duration::from_secs(1),
        "first chunk arrived early: {:?}",
        last - first
    );

    // Large output arrives whole.
    let out = runner
        .run(&["head", "-c", "20000000", "/dev/zero"])
        .await
        .unwrap();
    assert_eq!(out.stdout.len(), 20_000_000);

    // A terminal, with the size asked for; output comes on stdout only. (Engines before API 1.42
    // apply the size only after the start: the command waits a moment before asking.)
    let mut request =
        ExecRequest::new(["sh", "-c", "sleep 0.5; stty size; echo oops >&2; test -t 0"]);
    request.tty = true;
    request.tty_size = Some((123, 45));
    let out = runner.exec(request).await.unwrap();
    assert_eq!(out.exit_code, 0, "{out:?}");
    assert!(out.stdout_str().contains("45 123"), "{out:?}");
    assert!(
        out.stdout_str().contains("oops") && out.stderr.is_empty(),
        "{out:?}"
    );

    // Files: parents created, mode kept, binary-safe, overwritten.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    runner
        .copy_to("/etc/minik-test/deep/a.bin", &bytes, 0o640)
        .await
        .unwrap();
    assert_eq!(
        runner
            .read_file("/etc/minik-test/deep/a.bin")
            .await
            .unwrap(),
        bytes
    );
    let stat = runner
        .run(&["stat", "-c", "%a %U", "/etc/minik-test/deep/a.bin"])
        .await
        .unwrap();
    assert_eq!(stat.stdout_str().trim(), "640 root");
    runner
        .copy_to("/etc/minik-test/deep/a.bin", b"second", 0o755)
        .await
        .unwrap();
    assert_eq!(
        runner
            .read_file("/etc/minik-test/deep/a.bin")
            .await
            .unwrap(),
        b"second"
    );
    let stat = runner
        .run(&["stat", "-c", "%a", "/etc/minik-test/deep/a.bin"])
        .await
        .unwrap();
    assert_eq!(stat.stdout_str().trim(), "755");
    // tmpfs-backed paths, which the archive API cannot reach.
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
        let stat = runner.run(&["stat", "-c", "%a", path]).await.unwrap();
        assert_eq!(stat.stdout_str().trim(), "700", "{path}");
    }
    assert_eq!(
        runner
            .run(&["/tmp/minik-test/t.sh"])
            .await
            .unwrap()
            .stdout_str(),
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
    assert!(matches!(
        runner.copy_to("relative/path", b"x", 0o644).await,
        Err(DriverError::Exec { .. })
    ));
    assert!(matches!(
        runner.copy_to("/etc/../x", b"x", 0o644).await,
        Err(DriverError::Exec { .. })
    ));
    let ghost = driver.runner(&format!("{profile}-ghost"));
    assert!(matches!(
        ghost.copy_to("/etc/x", b"x", 0o644).await,
        Err(DriverError::NodeNotFound { .. })
    ));
    assert!(matches!(
        ghost.read_file("/etc/hostname").await,
        Err(DriverError::NodeNotFound { .. })
    ));

    driver.delete_profile(&profile).await.unwrap();
}
