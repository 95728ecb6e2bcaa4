//! The qemu driver and its SSH runner against a real VM (one, under `MINIK_QEMU_ACCEL`, CI:
//! tcg): the `Runner` contract of `minik_driver_api::contract` that the docker and podman
//! runners pass too (output streams, exit codes, stdin and its EOF, tty, env, file copies),
//! QMP pause/unpause, stop, and delete.
//!
//! Needs qemu-system, qemu-img, ssh and a VM base disk of the current VM recipe in the shared
//! cache (`MINIK_E2E_VM_CACHE`, default `~/.minik/cache/vm`; `minik node-image build --vm`
//! makes it). Fails, never skips, when they are missing.

use minik_driver_api::{
    ClusterRequest, Driver, DriverError, HostState, NodeSpec, NullObserver, Role, Runner, contract,
};
use minik_driver_qemu::{BaseFiles, Layout, QemuDriver, QemuOptions, disk};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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

    contract::check(&runner).await;

    // The SSH runner's own: the node's name, and a missing program is the shell's 127.
    assert_eq!(
        runner.run(&["hostname"]).await.unwrap().stdout_str(),
        format!("{profile}\n")
    );
    let out = runner.run(&["no-such-program-here"]).await.unwrap();
    assert_eq!(out.exit_code, 127, "{out:?}");

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
