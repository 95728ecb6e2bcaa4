//! The qemu driver and its SSH runner against a real VM (one, under `MINIK_QEMU_ACCEL`, CI:
//! tcg): the runner's contract as the docker runner keeps it (output streams, exit codes,
//! stdin and its EOF, tty, env, file copies), QMP pause/unpause, stop, and delete.
//!
//! Needs qemu-system, qemu-img, ssh and a VM base disk of the current VM recipe in the shared
//! cache (`MINIK_E2E_VM_CACHE`, default `~/.minik/cache/vm`; `minik node-image build --vm`
//! makes it). Fails, never skips, when they are missing.

use minik_driver_api::{
    ClusterRequest, Driver, DriverError, ExecRequest, HostState, NodeSpec, NullObserver, Role,
    Runner, StdinSource,
};
use minik_driver_qemu::{BaseFiles, Layout, QemuDriver, QemuOptions, disk};
use std::collections::BTreeMap;
use std::path::PathBuf;
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

/// The newest base disk of the current VM recipe in the shared cache.
fn shared_disk() -> (String, BaseFiles) {
    let cache: PathBuf = match std::env::var_os("MINIK_E2E_VM_CACHE") {
        Some(d) if !d.is_empty() => d.into(),
        _ => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".minik/cache/vm"),
    };
    let suffix = format!("-vm{}", disk::recipe_hash());
    let mut found: Vec<(std::time::SystemTime, String, BaseFiles)> = std::fs::read_dir(&cache)
        .unwrap_or_else(|e| {
            panic!(
                "no VM disk cache at {}: {e}: run `minik node-image build --vm`",
                cache.display()
            )
        })
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let base = BaseFiles::at(e.path());
            (name.ends_with(&suffix) && base.is_complete()).then(|| {
                let modified = std::fs::metadata(base.disk())
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (modified, name, base)
            })
        })
        .collect();
    found.sort_by_key(|f| f.0);
    let (_, name, base) = found.pop().unwrap_or_else(|| {
        panic!(
            "no VM disk of recipe {} in {}: run `minik node-image build --vm`",
            disk::recipe_hash(),
            cache.display()
        )
    });
    (name, base)
}

#[tokio::test]
async fn vm_runner_and_lifecycle() {
    let home = tempfile::tempdir().unwrap();
    let layout = Layout::new(home.path().join("profiles"), home.path().join("cache/vm"));
    let driver = QemuDriver::new(layout.clone(), QemuOptions::from_env().unwrap());
    driver
        .check()
        .await
        .expect("qemu, qemu-img and ssh are installed");

    // The disk is looked up by node image name: link the shared one in under a made-up name.
    let (_, shared) = shared_disk();
    let image = "localhost/minik/node:vm-test";
    let own = driver.base_disk(image);
    disk::link_or_copy(&shared, &own).unwrap();

    let profile = format!("vmt-{}", std::process::id());
    let request = ClusterRequest {
        profile: profile.clone(),
        image: image.into(),
        cpus: Some(2.0),
        memory_mib: Some(1024),
        env: BTreeMap::new(),
    };
    let spec = NodeSpec {
        name: profile.clone(),
        role: Role::ControlPlane,
        index: 0,
    };
    driver.prepare(&request).await.unwrap();
    let started = Instant::now();
    driver
        .create_node(&request, &spec, &NullObserver)
        .await
        .unwrap();
    eprintln!("VM answered on SSH after {:?}", started.elapsed());
    assert!(matches!(
        driver.create_node(&request, &spec, &NullObserver).await,
        Err(DriverError::NameConflict { .. })
    ));
    let nodes = driver.list_nodes(&profile).await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].state, HostState::Running);
    assert_eq!(nodes[0].ip.as_deref(), Some("192.168.105.2"));
    assert!(nodes[0].api_port.is_some());
    assert_eq!(driver.list_profiles().await.unwrap(), vec![profile.clone()]);

    let runner = driver.runner(&spec.name);
    assert_eq!(runner.node(), spec.name);

    // stdout, stderr and the exit code are kept apart; a command's own 255 is an exit code.
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
    assert_eq!(
        runner
            .run(&["sh", "-c", "exit 255"])
            .await
            .unwrap()
            .exit_code,
        255
    );
    let out = runner.run(&["true"]).await.unwrap();
    assert!(out.success() && out.stdout.is_empty() && out.stderr.is_empty());
    assert_eq!(
        runner.run(&["hostname"]).await.unwrap().stdout_str(),
        format!("{profile}\n")
    );
    let out = runner.run(&["no-such-program-here"]).await.unwrap();
    assert_eq!(out.exit_code, 127, "{out:?}");
    assert!(matches!(
        runner.run(&[]).await,
        Err(DriverError::Exec { .. })
    ));
    // Arguments arrive as given, whatever the shell would make of them.
    let out = runner
        .run(&["printf", "%s|", "a b", "it's", "$(id)", "*", ""])
        .await
        .unwrap();
    assert_eq!(out.stdout_str(), "a b|it's|$(id)|*||");

    // Environment.
    let mut request_env = ExecRequest::new(["sh", "-c", "echo \"$FOO\""]);
    request_env.env = vec!["FOO=bar baz".into()];
    assert_eq!(
        runner.exec(request_env).await.unwrap().stdout_str(),
        "bar baz\n"
    );

    // stdin: bytes and streams reach the command, followed by EOF.
    let ten_mb = vec![b'x'; 10 << 20];
    let out = runner
        .exec(ExecRequest::new(["wc", "-c"]).stdin_bytes(ten_mb.clone()))
        .await
        .unwrap();
    assert_eq!(out.stdout_str().trim(), (10 << 20).to_string());
    let mut streamed = ExecRequest::new(["sh", "-c", "cat | wc -c"]);
    streamed.stdin = StdinSource::Stream(Box::new(std::io::Cursor::new(ten_mb.clone())));
    let out = runner.exec(streamed).await.unwrap();
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
    let t = Instant::now();
    let out = runner
        .exec(ExecRequest::new(["head", "-c", "5"]).stdin_bytes(ten_mb))
        .await
        .unwrap();
    assert_eq!(
        (out.exit_code, out.stdout.as_slice()),
        (0, b"xxxxx".as_slice())
    );
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());

    // Output is streamed as it is produced.
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
    assert!(last - first >= Duration::from_secs(1), "{:?}", last - first);

    // Large output arrives whole.
    let out = runner
        .run(&["head", "-c", "20000000", "/dev/zero"])
        .await
        .unwrap();
    assert_eq!(out.stdout.len(), 20_000_000);

    // A terminal, with the size asked for; output comes on stdout only.
    let mut tty = ExecRequest::new(["sh", "-c", "stty size; echo oops >&2; test -t 0"]);
    tty.tty = true;
    tty.tty_size = Some((123, 45));
    let out = runner.exec(tty).await.unwrap();
    assert_eq!(out.exit_code, 0, "{out:?}");
    assert!(out.stdout_str().contains("45 123"), "{out:?}");
    assert!(
        out.stdout_str().contains("oops") && out.stderr.is_empty(),
        "{out:?}"
    );

    // Files: parents created, mode kept, binary-safe, overwritten; tmpfs paths too.
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
    for path in ["/tmp/minik-test/t.sh", "/run/minik/r.conf"] {
        runner
            .copy_to(path, b"#!/bin/sh\necho ran\n", 0o700)
            .await
            .unwrap();
        assert_eq!(
            runner.read_file(path).await.unwrap(),
            b"#!/bin/sh\necho ran\n"
        );
    }
    assert_eq!(
        runner
            .run(&["/tmp/minik-test/t.sh"])
            .await
            .unwrap()
            .stdout_str(),
        "ran\n"
    );
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

    // The node knows itself: SMBIOS UUID, root filesystem grown to the disk.
    let uuid = runner
        .run(&["cat", "/sys/class/dmi/id/product_uuid"])
        .await
        .unwrap();
    assert_eq!(uuid.stdout_str().trim().len(), 36, "{uuid:?}");
    let size = runner
        .run(&["df", "--output=size", "-BG", "/"])
        .await
        .unwrap();
    let gib: u64 = size
        .stdout_str()
        .lines()
        .last()
        .unwrap()
        .trim()
        .trim_end_matches('G')
        .parse()
        .unwrap();
    assert!(
        gib >= 18,
        "the root filesystem fills the 20 GiB disk: {gib}G"
    );

    // Pause: state from QMP; commands are refused at once, not left waiting on SSH.
    driver.pause_node(&spec.name).await.unwrap();
    driver.pause_node(&spec.name).await.unwrap();
    assert_eq!(
        driver.list_nodes(&profile).await.unwrap()[0].state,
        HostState::Paused
    );
    let t = Instant::now();
    assert!(matches!(
        runner.run(&["true"]).await,
        Err(DriverError::NodeNotRunning { ref state, .. }) if state == "Paused"
    ));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(matches!(
        driver.start_node(&spec.name).await,
        Err(DriverError::NodeNotRunning { .. })
    ));
    driver.unpause_node(&spec.name).await.unwrap();
    assert!(runner.run(&["true"]).await.unwrap().success());

    // Stop: ACPI power-off, a clean qemu exit (no pidfile left). (Data surviving stop/start
    // is the e2e suite's, which boots again anyway.)
    let t = Instant::now();
    driver
        .stop_node(&spec.name, Duration::from_secs(60))
        .await
        .unwrap();
    eprintln!("stopped in {:?}", t.elapsed());
    let node = layout.profile(&profile).node(&spec.name);
    assert!(!node.pidfile().exists() && !node.qmp().exists());
    assert_eq!(
        driver.list_nodes(&profile).await.unwrap()[0].state,
        HostState::Stopped
    );
    assert!(matches!(
        runner.run(&["true"]).await,
        Err(DriverError::NodeNotRunning { .. })
    ));
    driver
        .stop_node(&spec.name, Duration::from_secs(5))
        .await
        .unwrap();
    assert_powered_off(&node.serial_log());

    // A stop right after boot still powers the guest off cleanly: SSH answers before udev has
    // loaded the guest's ACPI button driver and logind watches it, so the first press can be
    // lost and the driver presses again (without that, this waits the whole timeout and kills).
    driver.start_node(&spec.name).await.unwrap();
    assert!(runner.run(&["true"]).await.unwrap().success());
    let t = Instant::now();
    driver
        .stop_node(&spec.name, Duration::from_secs(120))
        .await
        .unwrap();
    eprintln!("stopped right after boot in {:?}", t.elapsed());
    assert_powered_off(&node.serial_log());

    // Delete: VM, disk, sockets and keys are gone; deleting again is fine.
    let report = driver.delete_profile(&profile).await.unwrap();
    assert_eq!(report.nodes, vec![spec.name.clone()]);
    assert!(!layout.profile(&profile).dir().exists());
    assert!(minik_driver_qemu::process::find_by_marker(home.path()).is_empty());
    assert!(driver.delete_profile(&profile).await.unwrap().is_empty());
    assert!(driver.list_profiles().await.unwrap().is_empty());
    assert!(matches!(
        driver.start_node(&spec.name).await,
        Err(DriverError::NodeNotFound { .. })
    ));
}

/// The guest powered itself off (the kernel's last console line), rather than being killed.
fn assert_powered_off(serial_log: &std::path::Path) {
    let console = std::fs::read_to_string(serial_log).unwrap_or_default();
    let lines: Vec<&str> = console.lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
    assert!(
        console.contains("reboot: Power down"),
        "the guest did not power off by itself (killed?); console tail:\n{tail}"
    );
}
