//! The docker driver against a real Docker Engine: node lifecycle, listing, deletion by label,
//! name conflicts, image helpers and unreachable engines.

mod common;

use bollard::models::{ContainerCreateBody, NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use common::*;
use futures_util::StreamExt;
use minik_driver_api::{Driver, DriverError, HostState, NullObserver, Role, Runner, labels};
use minik_driver_docker::{DockerDriver, SecurityMode};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[tokio::test]
async fn check_reports_the_engine() {
    let driver = driver().await;
    let info = driver.check().await.unwrap();
    assert!(info.version.starts_with("Docker Engine "), "{info:?}");
    assert!(info.api_version.is_some(), "{info:?}");
    assert!(
        matches!(info.cgroup_version.as_deref(), Some("1" | "2")),
        "{info:?}"
    );
    assert_eq!(driver.name(), "docker");
}

#[tokio::test]
async fn unreachable_engines_fail_fast() {
    let started = Instant::now();
    // The client needs the socket file, so a missing one is reported at connect.
    let err = DockerDriver::connect_to("unix:///nonexistent/docker.sock").unwrap_err();
    assert!(matches!(err, DriverError::EngineNotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/docker.sock"),
        "{err}"
    );

    // A socket file nobody listens on.
    let dir = std::env::temp_dir().join(format!("minik-dt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dead = dir.join("dead.sock");
    let _ = std::fs::remove_file(&dead);
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    let driver = DockerDriver::connect_to(&format!("unix://{}", dead.display())).unwrap();
    let err = driver.check().await.unwrap_err();
    assert!(
        matches!(err, DriverError::EngineUnreachable { .. }),
        "{err}"
    );
    // Every operation reports it, not only check.
    let err = driver.list_nodes("x").await.unwrap_err();
    assert!(
        matches!(err, DriverError::EngineUnreachable { .. }),
        "{err}"
    );

    let refused = DockerDriver::connect_to("tcp://127.0.0.1:1").unwrap();
    let err = refused.check().await.unwrap_err();
    assert!(
        matches!(err, DriverError::EngineUnreachable { .. }),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );

    // A socket that accepts but never answers: bounded by the connect timeout, no hang.
    let path = dir.join("silent.sock");
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    let silent = DockerDriver::connect_to(&format!("unix://{}", path.display())).unwrap();
    let started = Instant::now();
    let err = silent.check().await.unwrap_err();
    assert!(
        matches!(err, DriverError::EngineUnreachable { .. }),
        "{err}"
    );
    assert!(started.elapsed() < minik_driver_docker::CONNECT_TIMEOUT + Duration::from_secs(2));
    hold.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn two_node_lifecycle() {
    let driver = driver().await;
    let image = test_image(&driver).await;
    let profile = unique_profile("life");
    let _guard = ProfileGuard::new(&profile);
    let req = request(&profile, &image);
    let cp = node(&profile, 0, Role::ControlPlane);
    let worker = node(&profile, 1, Role::Worker);
    let observer = RecordingObserver::default();

    driver.prepare(&req).await.unwrap();
    driver.prepare(&req).await.expect("prepare is idempotent");
    let started = Instant::now();
    let (a, b) = tokio::join!(
        driver.create_node(&req, &cp, &observer),
        driver.create_node(&req, &worker, &observer)
    );
    a.unwrap();
    b.unwrap();
    eprintln!(
        "create 2 nodes in parallel -> running: {:?}",
        started.elapsed()
    );
    let warnings = observer.warnings.lock().unwrap().clone();
    assert!(
        warnings.len() <= 1,
        "the fallback is announced once: {warnings:?}"
    );
    if let Some(w) = warnings.first() {
        assert!(w.contains("--privileged") && !w.contains('\n'), "{w}");
    }

    let nodes = driver.list_nodes(&profile).await.unwrap();
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert_eq!(
        (nodes[0].name.as_str(), nodes[0].role, nodes[0].index),
        (cp.name.as_str(), Role::ControlPlane, 0)
    );
    assert_eq!(
        (nodes[1].name.as_str(), nodes[1].role, nodes[1].index),
        (worker.name.as_str(), Role::Worker, 1)
    );
    assert!(
        nodes.iter().all(|n| n.state == HostState::Running),
        "{nodes:?}"
    );
    let ip0 = nodes[0].ip.clone().expect("control plane ip");
    let ip1 = nodes[1].ip.clone().expect("worker ip");
    assert!(ip0.ends_with(".2") && ip1.ends_with(".3"), "{ip0} {ip1}");
    assert_eq!(
        ip0.rsplit_once('.').map(|x| x.0),
        ip1.rsplit_once('.').map(|x| x.0),
        "same /24"
    );
    let api_port = nodes[0].api_port.expect("control plane publishes 6443");
    assert_eq!(nodes[1].api_port, None);

    // The container is what the node contract says.
    let inspect = driver
        .engine()
        .docker()
        .inspect_container(&cp.name, None)
        .await
        .unwrap();
    let config = inspect.config.unwrap();
    assert_eq!(config.hostname.as_deref(), Some(cp.name.as_str()));
    assert_eq!(config.stop_signal.as_deref(), Some("SIGRTMIN+3"));
    let env = config.env.unwrap_or_default();
    assert!(
        env.contains(&"container=docker".to_string()) && env.contains(&"MINIK_TEST=1".to_string()),
        "{env:?}"
    );
    let labels = config.labels.unwrap_or_default();
    assert_eq!(
        labels.get(labels::ROLE).map(String::as_str),
        Some("control-plane")
    );
    assert_eq!(labels.get(labels::INDEX).map(String::as_str), Some("0"));
    let host = inspect.host_config.unwrap();
    // Both nodes got the profile the first one settled on; a refusal means capabilities.
    let worker_host = driver
        .engine()
        .docker()
        .inspect_container(&worker.name, None)
        .await
        .unwrap()
        .host_config
        .unwrap();
    assert_eq!(host.privileged, worker_host.privileged);
    assert_eq!(
        host.privileged == Some(true),
        warnings.is_empty(),
        "{warnings:?}"
    );
    assert_eq!(host.nano_cpus, Some(1_000_000_000));
    assert_eq!(host.memory, Some(512 * 1024 * 1024));
    assert_eq!(host.memory_swap, host.memory);

    // Same network, names resolve between nodes.
    let runner = driver.runner(&worker.name);
    let out = runner.run(&["getent", "hosts", &cp.name]).await.unwrap();
    assert!(out.stdout_str().contains(&ip0), "{out:?}");

    // Data under /var survives stop/start; so do the address and the API port.
    let cp_runner = driver.runner(&cp.name);
    cp_runner
        .copy_to("/var/lib/minik-test/keep", b"kept", 0o600)
        .await
        .unwrap();
    let started = Instant::now();
    driver
        .stop_node(&cp.name, Duration::from_secs(10))
        .await
        .unwrap();
    eprintln!("stop (SIGRTMIN+3): {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the init handled the stop signal"
    );
    driver
        .stop_node(&cp.name, Duration::from_secs(10))
        .await
        .expect("stopping a stopped node is a no-op");
    let stopped = driver.list_nodes(&profile).await.unwrap();
    assert_eq!(stopped[0].state, HostState::Stopped);
    assert!(
        stopped[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.starts_with("exited")),
        "{stopped:?}"
    );
    assert_eq!(stopped[0].api_port, Some(api_port), "known while stopped");
    assert_eq!(stopped[0].ip, None);
    let err = cp_runner.run(&["true"]).await.unwrap_err();
    assert!(
        matches!(err, DriverError::NodeNotRunning { ref state, .. } if state == "Stopped"),
        "{err}"
    );
    driver.start_node(&cp.name).await.unwrap();
    driver
        .start_node(&cp.name)
        .await
        .expect("starting a running node is a no-op");
    let restarted = driver.list_nodes(&profile).await.unwrap();
    assert_eq!(restarted[0].state, HostState::Running);
    assert_eq!(restarted[0].ip.as_deref(), Some(ip0.as_str()));
    assert_eq!(restarted[0].api_port, Some(api_port));
    assert_eq!(
        cp_runner
            .read_file("/var/lib/minik-test/keep")
            .await
            .unwrap(),
        b"kept"
    );

    // Pause / unpause.
    driver.pause_node(&worker.name).await.unwrap();
    driver
        .pause_node(&worker.name)
        .await
        .expect("pausing twice is fine");
    let paused = driver.list_nodes(&profile).await.unwrap();
    assert_eq!(paused[1].state, HostState::Paused);
    assert!(paused[1].ip.is_some());
    let err = runner.run(&["true"]).await.unwrap_err();
    assert!(
        matches!(err, DriverError::NodeNotRunning { ref state, .. } if state == "Paused"),
        "{err}"
    );
    driver.unpause_node(&worker.name).await.unwrap();
    driver
        .unpause_node(&worker.name)
        .await
        .expect("unpausing a running node is fine");
    assert_eq!(runner.run(&["true"]).await.unwrap().exit_code, 0);
    // start_node on a paused node thaws it.
    driver.pause_node(&worker.name).await.unwrap();
    driver.start_node(&worker.name).await.unwrap();
    assert_eq!(
        driver.list_nodes(&profile).await.unwrap()[1].state,
        HostState::Running
    );
    // Stopping a paused node works (thaw, then the stop signal).
    driver.pause_node(&worker.name).await.unwrap();
    let started = Instant::now();
    driver
        .stop_node(&worker.name, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        driver.list_nodes(&profile).await.unwrap()[1].state,
        HostState::Stopped
    );
    let err = driver.pause_node(&worker.name).await.unwrap_err();
    assert!(matches!(err, DriverError::NodeNotRunning { .. }), "{err}");

    // Unknown nodes.
    let ghost = format!("{profile}-ghost");
    assert!(matches!(
        driver.start_node(&ghost).await,
        Err(DriverError::NodeNotFound { .. })
    ));
    assert!(matches!(
        driver.stop_node(&ghost, Duration::from_secs(1)).await,
        Err(DriverError::NodeNotFound { .. })
    ));
    assert!(matches!(
        driver.pause_node(&ghost).await,
        Err(DriverError::NodeNotFound { .. })
    ));
    assert!(matches!(
        driver.unpause_node(&ghost).await,
        Err(DriverError::NodeNotFound { .. })
    ));
    assert!(matches!(
        driver.runner(&ghost).run(&["true"]).await,
        Err(DriverError::NodeNotFound { .. })
    ));

    // Delete removes everything labelled, paused or not.
    driver.pause_node(&cp.name).await.unwrap();
    assert!(driver.list_profiles().await.unwrap().contains(&profile));
    let report = driver.delete_profile(&profile).await.unwrap();
    assert_eq!(report.nodes, vec![cp.name.clone(), worker.name.clone()]);
    let mut volumes = vec![format!("{}-var", cp.name), format!("{}-var", worker.name)];
    volumes.sort();
    assert_eq!(report.volumes, volumes);
    assert_eq!(report.networks, vec![profile.clone()]);
    let (c, v, n) = labelled(&driver, &profile).await;
    assert!(
        c.is_empty() && v.is_empty() && n.is_empty(),
        "left behind: {c:?} {v:?} {n:?}"
    );
    assert!(driver.list_nodes(&profile).await.unwrap().is_empty());
    assert!(!driver.list_profiles().await.unwrap().contains(&profile));
    assert!(
        driver.delete_profile(&profile).await.unwrap().is_empty(),
        "nothing left to delete"
    );
}

#[tokio::test]
async fn single_node_create_time() {
    let driver = driver().await;
    let image = test_image(&driver).await;
    let profile = unique_profile("one");
    let _guard = ProfileGuard::new(&profile);
    let req = request(&profile, &image);
    let started = Instant::now();
    driver
        .create_node(&req, &node(&profile, 0, Role::ControlPlane), &NullObserver)
        .await
        .unwrap();
    eprintln!(
        "create 1 node (network + volume + container) -> running: {:?}",
        started.elapsed()
    );
    let nodes = driver.list_nodes(&profile).await.unwrap();
    assert_eq!(nodes[0].state, HostState::Running);
    // The port was picked by minik and recorded, not left to the engine.
    let inspect = driver
        .engine()
        .docker()
        .inspect_container(&profile, None)
        .await
        .unwrap();
    let bindings = inspect
        .host_config
        .and_then(|h| h.port_bindings)
        .unwrap_or_default();
    let binding = bindings
        .get("6443/tcp")
        .cloned()
        .flatten()
        .unwrap_or_default();
    assert_eq!(binding.len(), 1);
    assert_eq!(binding[0].host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        binding[0].host_port.as_deref().and_then(|p| p.parse().ok()),
        nodes[0].api_port
    );
}

#[tokio::test]
async fn delete_is_scoped_to_its_profile() {
    let driver = driver().await;
    let image = test_image(&driver).await;
    let a = unique_profile("a");
    let b = unique_profile("b");
    let _ga = ProfileGuard::new(&a);
    let _gb = ProfileGuard::new(&b);
    let (ra, rb) = (request(&a, &image), request(&b, &image));
    let (na, nb) = (
        node(&a, 0, Role::ControlPlane),
        node(&b, 0, Role::ControlPlane),
    );
    let (x, y) = tokio::join!(
        driver.create_node(&ra, &na, &NullObserver),
        driver.create_node(&rb, &nb, &NullObserver),
    );
    x.unwrap();
    y.unwrap();
    // Profiles get separate networks (and subnets).
    let ip_a = driver.list_nodes(&a).await.unwrap()[0].ip.clone().unwrap();
    let ip_b = driver.list_nodes(&b).await.unwrap()[0].ip.clone().unwrap();
    assert_ne!(
        ip_a.rsplit_once('.').map(|p| p.0),
        ip_b.rsplit_once('.').map(|p| p.0)
    );

    // An unlabelled volume whose name looks like a's must survive.
    let docker = driver.engine().docker();
    let stray = format!("{a}-stray");
    docker
        .create_volume(VolumeCreateRequest {
            name: Some(stray.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    // So must a volume that claims a's profile but not minik's creator label.
    let claimed = format!("{a}-claimed");
    docker
        .create_volume(VolumeCreateRequest {
            name: Some(claimed.clone()),
            labels: Some(HashMap::from([(labels::PROFILE.to_string(), a.clone())])),
            ..Default::default()
        })
        .await
        .unwrap();

    let profiles = driver.list_profiles().await.unwrap();
    assert!(
        profiles.contains(&a) && profiles.contains(&b),
        "{profiles:?}"
    );
    let report = driver.delete_profile(&a).await.unwrap();
    assert_eq!(report.nodes, vec![a.clone()]);
    assert_eq!(report.volumes, vec![format!("{a}-var")]);
    assert_eq!(report.networks, vec![a.clone()]);
    let (c, v, n) = labelled(&driver, &b).await;
    assert_eq!(
        (c.len(), v.len(), n.len()),
        (1, 1, 1),
        "b untouched: {c:?} {v:?} {n:?}"
    );
    assert_eq!(
        driver.list_nodes(&b).await.unwrap()[0].state,
        HostState::Running
    );
    assert!(
        docker.inspect_volume(&stray).await.is_ok(),
        "unlabelled volume kept"
    );
    assert!(
        docker.inspect_volume(&claimed).await.is_ok(),
        "volume without created-by kept"
    );
    docker
        .remove_volume(
            &stray,
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await
        .unwrap();
    docker
        .remove_volume(
            &claimed,
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await
        .unwrap();
    assert!(
        driver
            .delete_profile(&unique_profile("never"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn conflicts_and_missing_images() {
    let driver = driver().await;
    let image = test_image(&driver).await;
    let docker = driver.engine().docker();

    // A network named like the profile but not minik's.
    let profile = unique_profile("conflict");
    let _guard = ProfileGuard::new(&profile);
    docker
        .create_network(NetworkCreateRequest {
            name: profile.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let err = driver
        .prepare(&request(&profile, &image))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DriverError::NameConflict { ref kind, .. } if kind == "network"),
        "{err}"
    );
    docker.remove_network(&profile).await.unwrap();

    // A container named like the node but not minik's.
    let other = unique_profile("taken");
    let _guard2 = ProfileGuard::new(&other);
    let options = CreateContainerOptionsBuilder::default()
        .name(&other)
        .build();
    docker
        .create_container(
            Some(options),
            ContainerCreateBody {
                image: Some(image.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let err = driver
        .create_node(
            &request(&other, &image),
            &node(&other, 0, Role::Worker),
            &NullObserver,
        )
        .await;
    assert!(
        matches!(err, Err(DriverError::NameConflict { ref kind, .. }) if kind == "container"),
        "{err:?}"
    );
    // The driver does not treat the stranger as a node.
    assert!(driver.list_nodes(&other).await.unwrap().is_empty());
    assert!(matches!(
        driver.stop_node(&other, Duration::from_secs(1)).await,
        Err(DriverError::NodeNotFound { .. })
    ));
    driver.delete_profile(&other).await.unwrap();
    let rm = RemoveContainerOptionsBuilder::default().force(true).build();
    docker
        .remove_container(&other, Some(rm))
        .await
        .expect("delete_profile left the stranger alone");

    // A missing image is reported, never pulled.
    let missing = unique_profile("noimg");
    let _guard3 = ProfileGuard::new(&missing);
    let req = request(&missing, "localhost/minik/does-not-exist:0");
    let err = driver
        .create_node(&req, &node(&missing, 0, Role::ControlPlane), &NullObserver)
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::ImageNotFound { .. }), "{err}");
}

#[tokio::test]
async fn image_helpers() {
    let driver = driver().await;
    let image = test_image(&driver).await;
    assert!(driver.image_exists(&image).await.unwrap());
    assert!(
        !driver
            .image_exists("localhost/minik/does-not-exist:0")
            .await
            .unwrap()
    );
    let id = driver.image_id(&image).await.unwrap();
    assert!(id.starts_with("sha256:"), "{id}");
    assert!(matches!(
        driver.image_id("localhost/minik/does-not-exist:0").await,
        Err(DriverError::ImageNotFound { .. })
    ));

    // A failing build: the error names the failed step, the output was streamed line by line.
    let mut tar = tar::Builder::new(Vec::new());
    let dockerfile = "FROM debian:trixie-slim\nRUN echo about to fail && printf 'E: broken %s\\n' thing >&2 && false\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    tar.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())
        .unwrap();
    let mut lines = Vec::new();
    let err = driver
        .build_image(
            tar.into_inner().unwrap(),
            "localhost/minik/driver-test-fail:1",
            HashMap::new(),
            |l| lines.push(l.to_string()),
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DriverError::Engine { .. }), "{text}");
    assert!(
        text.contains("non-zero code") && text.contains("E: broken thing"),
        "{text}\n{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("Step 2/2")), "{lines:?}");
    assert!(lines.iter().all(|l| !l.contains('\n')), "{lines:?}");

    // Saving streams a tar.
    let mut stream = driver.save_image(&image);
    let mut total = 0usize;
    let mut head = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        if head.len() < 512 {
            head.extend_from_slice(&chunk[..chunk.len().min(512 - head.len())]);
        }
        total += chunk.len();
    }
    assert!(total > 1 << 20, "{total}");
    let mut archive = tar::Archive::new(head.as_slice());
    assert!(
        archive.entries().unwrap().next().is_some(),
        "starts with a tar header"
    );
    // ... also as a reader, e.g. for a command's stdin.
    let mut reader = driver.save_image_reader(&image);
    let mut head = vec![0u8; 512];
    tokio::io::AsyncReadExt::read_exact(&mut reader, &mut head)
        .await
        .unwrap();
    assert!(
        tar::Archive::new(head.as_slice())
            .entries()
            .unwrap()
            .next()
            .is_some()
    );
    let first = driver
        .save_image("localhost/minik/does-not-exist:0")
        .next()
        .await
        .unwrap();
    assert!(
        matches!(first, Err(DriverError::ImageNotFound { .. })),
        "{first:?}"
    );
}

#[tokio::test]
async fn forced_security_modes() {
    let base = driver().await;
    let image = test_image(&base).await;

    // capabilities: no attempt at --privileged, no warning.
    let driver = base.clone().with_security_mode(SecurityMode::Capabilities);
    let profile = unique_profile("caps");
    let _guard = ProfileGuard::new(&profile);
    let observer = RecordingObserver::default();
    let spec = node(&profile, 0, Role::Worker);
    let started = Instant::now();
    driver
        .create_node(&request(&profile, &image), &spec, &observer)
        .await
        .unwrap();
    eprintln!(
        "create 1 node, capabilities forced -> running: {:?}",
        started.elapsed()
    );
    assert!(observer.warnings.lock().unwrap().is_empty());
    let host = driver
        .engine()
        .docker()
        .inspect_container(&spec.name, None)
        .await
        .unwrap()
        .host_config
        .unwrap();
    assert_ne!(host.privileged, Some(true));
    assert_eq!(host.cap_add, Some(vec!["ALL".to_string()]));
    assert_eq!(host.cap_drop, Some(vec!["SYS_RESOURCE".to_string()]));
    // A private cgroup namespace and no host cgroup mount: the node's cgroups (and those of
    // everything nested in it) stay below its own.
    assert_eq!(
        host.cgroupns_mode,
        Some(bollard::models::HostConfigCgroupnsModeEnum::PRIVATE)
    );
    assert!(
        !host
            .binds
            .unwrap_or_default()
            .iter()
            .any(|b| b.starts_with("/sys/fs/cgroup:"))
    );
    // /proc/sys is writable without --privileged (kube-proxy sets sysctls).
    let out = driver
        .runner(&spec.name)
        .run(&["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{out:?}");

    // privileged: used as is; where the engine refuses it the node fails cleanly.
    let driver = base.clone().with_security_mode(SecurityMode::Privileged);
    let profile = unique_profile("priv");
    let _guard = ProfileGuard::new(&profile);
    let spec = node(&profile, 0, Role::ControlPlane);
    match driver
        .create_node(&request(&profile, &image), &spec, &NullObserver)
        .await
    {
        Ok(()) => {
            let host = driver
                .engine()
                .docker()
                .inspect_container(&spec.name, None)
                .await
                .unwrap()
                .host_config
                .unwrap();
            assert_eq!(host.privileged, Some(true));
        }
        Err(e) => {
            assert!(
                matches!(e, DriverError::Engine { .. }) && e.to_string().contains("caps"),
                "{e}"
            );
            // No half-created container is left; the labelled volume and network are, for delete.
            let (c, v, n) = labelled(&driver, &profile).await;
            assert!(c.is_empty(), "{c:?}");
            assert_eq!((v.len(), n.len()), (1, 1), "{v:?} {n:?}");
            assert!(driver.list_nodes(&profile).await.unwrap().is_empty());
        }
    }
    let report = driver.delete_profile(&profile).await.unwrap();
    assert_eq!(report.networks, vec![profile.clone()]);
}

/// A node container left created `--privileged` (a `start` killed between the create and the
/// capability fallback) on an engine that refuses it: `start_node` in `auto` mode recreates it
/// with the capability set, keeping its name, labels, address and volume (issue 11, item 4).
/// Where the engine allows `--privileged`, the node simply starts.
#[tokio::test]
async fn a_node_left_privileged_is_recreated_with_capabilities() {
    let base = driver().await;
    let image = test_image(&base).await;
    let caps = base.clone().with_security_mode(SecurityMode::Capabilities);
    let profile = unique_profile("leftpriv");
    let _guard = ProfileGuard::new(&profile);
    let spec = node(&profile, 0, Role::ControlPlane);
    caps.create_node(&request(&profile, &image), &spec, &NullObserver)
        .await
        .unwrap();
    caps.stop_node(&spec.name, Duration::from_secs(10))
        .await
        .unwrap();
    let docker = base.engine().docker().clone();
    let before = docker.inspect_container(&spec.name, None).await.unwrap();
    // The /var volume is a mount carrying the node's labels: an engine that has to make it
    // again (a cleanup raced a killed start's create) makes it labelled, so delete sees it.
    let mounts = before.host_config.as_ref().unwrap().mounts.clone().unwrap();
    let var = mounts
        .iter()
        .find(|m| m.target.as_deref() == Some("/var"))
        .unwrap();
    let var_labels = var
        .volume_options
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap();
    assert_eq!(var_labels.get(labels::PROFILE), Some(&profile));
    let ip = before
        .network_settings
        .as_ref()
        .unwrap()
        .networks
        .as_ref()
        .unwrap()[&profile]
        .ipam_config
        .clone();
    // Recreate it as the killed start would have left it: --privileged, never started.
    let mut body: ContainerCreateBody =
        serde_json::from_value(serde_json::to_value(before.config.clone().unwrap()).unwrap())
            .unwrap();
    let mut host = before.host_config.clone().unwrap();
    host.privileged = Some(true);
    host.cap_add = None;
    host.cap_drop = None;
    body.host_config = Some(host);
    body.networking_config = Some(bollard::models::NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            profile.clone(),
            bollard::models::EndpointSettings {
                ipam_config: ip.clone(),
                ..Default::default()
            },
        )])),
    });
    docker
        .remove_container(
            &spec.name,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await
        .unwrap();
    docker
        .create_container(
            Some(
                CreateContainerOptionsBuilder::default()
                    .name(&spec.name)
                    .build(),
            ),
            body,
        )
        .await
        .unwrap();

    let auto = base.clone().with_security_mode(SecurityMode::Auto);
    auto.start_node(&spec.name).await.unwrap();
    let after = docker.inspect_container(&spec.name, None).await.unwrap();
    assert_eq!(after.state.unwrap().running, Some(true));
    assert_eq!(
        after.network_settings.unwrap().networks.unwrap()[&profile].ipam_config,
        ip,
        "same address"
    );
    assert_eq!(
        after.config.unwrap().labels,
        before.config.unwrap().labels,
        "same labels"
    );
    let nodes = auto.list_nodes(&profile).await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].state, HostState::Running);
}

/// Docker before 25 lets two networks share a name: a start killed while its network create was
/// in the engine, and the next start creating its own, leave two. The next `prepare` keeps the
/// oldest and removes the other, and a node is created on the one that stays (issue 11).
#[tokio::test]
async fn duplicate_profile_networks_are_reduced_to_one() {
    let driver = driver().await;
    let image = test_image(&driver).await;
    let profile = unique_profile("dupnet");
    let _guard = ProfileGuard::new(&profile);
    let docker = driver.engine().docker().clone();
    let labels = HashMap::from([
        (labels::CREATED_BY.to_string(), "true".to_string()),
        (labels::PROFILE.to_string(), profile.clone()),
    ]);
    let mut ids = Vec::new();
    for subnet in ["10.231.7.0/24", "10.231.8.0/24"] {
        let made = docker
            .create_network(NetworkCreateRequest {
                name: profile.clone(),
                driver: Some("bridge".into()),
                ipam: Some(bollard::models::Ipam {
                    config: Some(vec![bollard::models::IpamConfig {
                        subnet: Some(subnet.into()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                labels: Some(labels.clone()),
                ..Default::default()
            })
            .await;
        match made {
            Ok(r) => ids.push(r.id),
            // An engine that refuses duplicate names cannot get into this state at all.
            Err(e) if e.to_string().contains("already exists") => {
                eprintln!("this engine refuses duplicate network names: {e}");
                return;
            }
            Err(e) => panic!("{e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ids.len(), 2);
    driver
        .prepare(&request(&profile, &image))
        .await
        .expect("prepare reduces the duplicates");
    let spec = node(&profile, 0, Role::ControlPlane);
    driver
        .create_node(&request(&profile, &image), &spec, &NullObserver)
        .await
        .unwrap();
    let (_, _, networks) = labelled(&driver, &profile).await;
    assert_eq!(networks.len(), 1, "{networks:?}");
    let kept = docker
        .inspect_network(
            &profile,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .unwrap();
    assert_eq!(
        kept.id.as_deref(),
        Some(ids[0].as_str()),
        "the oldest stays"
    );
}
