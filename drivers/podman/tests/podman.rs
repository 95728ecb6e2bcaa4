//! The podman driver against a real podman (rootful here; `.ci/run` installs it). These tests
//! fail, never skip, when podman is missing. They use a stand-in node image (Debian with a bash
//! init) built through podman's compat build API; the real node image boots in tests/it/e2e.rs.

use bollard::query_parameters::InspectContainerOptions;
use minik_driver_api::{
    ClusterRequest, Driver, DriverError, HostState, NodeSpec, NullObserver, Role, Runner, contract,
    labels,
};
use minik_driver_podman::{Endpoint, EndpointSource, PodmanDriver, SecurityMode, Service, socket};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Nodes are requested by the short name on purpose: the driver must create them from the
/// `localhost/...` name. (The build uses the qualified tag: podman's compat build API, like
/// Docker, would store a short tag as `docker.io/...`.)
const SHORT_IMAGE: &str = "minik/podman-driver-test:1";
const QUALIFIED_IMAGE: &str = "localhost/minik/podman-driver-test:1";
const DOCKERFILE: &str =
    "FROM debian:trixie-slim\nCOPY init.sh /init.sh\nENTRYPOINT [\"/init.sh\"]\n";
const INIT: &str =
    "#!/bin/bash\ntrap 'exit 0' RTMIN+3 TERM\nwhile :; do sleep 3600 & wait $!; done\n";

async fn driver() -> PodmanDriver {
    let driver = PodmanDriver::connect()
        .unwrap_or_else(|e| panic!("these tests need podman (apt-get install podman): {e}"));
    if let Err(e) = driver.check().await {
        panic!("podman does not answer: {e}");
    }
    driver
}

static IMAGE_BUILT: tokio::sync::Mutex<bool> = tokio::sync::Mutex::const_new(false);

/// Builds the stand-in image through the compat build API (what `minik node-image build
/// --driver podman` uses), once per process.
async fn test_image(driver: &PodmanDriver) {
    let mut built = IMAGE_BUILT.lock().await;
    if *built {
        return;
    }
    let mut tar = tar::Builder::new(Vec::new());
    for (name, body, mode) in [("Dockerfile", DOCKERFILE, 0o644), ("init.sh", INIT, 0o755)] {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(mode);
        tar.append_data(&mut header, name, body.as_bytes()).unwrap();
    }
    let mut lines = Vec::new();
    let result = driver
        .docker()
        .build_image(
            tar.into_inner().unwrap(),
            QUALIFIED_IMAGE,
            HashMap::new(),
            |l| lines.push(l.to_string()),
        )
        .await;
    if let Err(e) = result {
        panic!(
            "building {QUALIFIED_IMAGE} in podman failed (ENGINE=podman tests/make-base-image.sh makes debian:trixie-slim): {e}\n{}",
            lines.join("\n")
        );
    }
    assert!(driver.docker().image_exists(QUALIFIED_IMAGE).await.unwrap());
    *built = true;
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn profile(tag: &str) -> String {
    format!(
        "pt-{}-{tag}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

#[path = "../../docker/tests/common/guard.rs"]
mod guard;

/// Deletes a profile's nodes, volumes and network when dropped, so a failing test leaves
/// nothing behind in podman.
type ProfileGuard = guard::ProfileGuard<PodmanDriver>;

fn request(profile: &str) -> ClusterRequest {
    ClusterRequest {
        profile: profile.to_string(),
        image: SHORT_IMAGE.to_string(),
        cpus: None,
        memory_mib: None,
        env: BTreeMap::new(),
    }
}

fn node(profile: &str, index: u32, role: Role) -> NodeSpec {
    let name = if index == 0 {
        profile.to_string()
    } else {
        format!("{profile}-m{:02}", index + 1)
    };
    NodeSpec { name, role, index }
}

async fn sh(driver: &PodmanDriver, node: &str, script: &str) -> String {
    let out = driver
        .runner(node)
        .run(&["sh", "-c", script])
        .await
        .unwrap();
    assert!(out.success(), "{script}: {}", out.last_error_line());
    out.stdout_str().trim().to_string()
}

#[tokio::test]
async fn check_reports_podman_and_limits() {
    let d = driver().await;
    let info = d.check().await.unwrap();
    assert!(info.version.starts_with("Podman Engine "), "{info:?}");
    assert_eq!(d.name(), "podman");
    let (limits, source) = d.host_limits();
    // A local service: its own limits were read, not minik's.
    assert!(
        matches!(source, minik_driver_podman::LimitsSource::Service(_)),
        "{source:?}"
    );
    for u in limits.ulimits() {
        let hard = match u.name.as_deref() {
            Some("nofile") => limits.nofile,
            _ => limits.nproc,
        };
        assert!(
            hard.is_none_or(|h| u.hard.unwrap() as u64 <= h),
            "{u:?} over {hard:?}"
        );
    }
}

#[tokio::test]
async fn node_lifecycle_with_podman_options() {
    let d = driver().await;
    test_image(&d).await;
    let p = profile("life");
    let _guard = ProfileGuard::with(&p, PodmanDriver::connect);
    let cluster = request(&p);
    let n = node(&p, 0, Role::ControlPlane);
    d.prepare(&cluster).await.unwrap();
    d.create_node(&cluster, &n, &NullObserver).await.unwrap();

    let docker = d.docker().engine().ready().await.unwrap();
    let c = docker
        .inspect_container(&p, None::<InspectContainerOptions>)
        .await
        .unwrap();
    let config = c.config.clone().unwrap();
    assert_eq!(
        config.image.as_deref(),
        Some(QUALIFIED_IMAGE),
        "fully qualified image name"
    );
    assert!(
        config
            .env
            .unwrap()
            .contains(&"container=podman".to_string())
    );
    let host = c.host_config.clone().unwrap();
    let ulimits: Vec<String> = host
        .ulimits
        .unwrap_or_default()
        .iter()
        .map(|u| format!("{:?}", u.name))
        .collect();
    assert_eq!(
        ulimits.len(),
        2,
        "nofile and nproc set explicitly: {ulimits:?}"
    );

    let nodes = d.list_nodes(&p).await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].state, HostState::Running);
    let ip = nodes[0].ip.clone().expect("a static IP");
    assert!(ip.ends_with(".2"), "node 0 gets .2: {ip}");
    assert!(nodes[0].api_port.is_some());

    // /var: the labelled volume, mounted so nested containers can run from it.
    let var = sh(&d, &p, "findmnt -n -o OPTIONS /var").await;
    assert!(
        !var.contains("nosuid") && !var.contains("nodev") && !var.contains("noexec"),
        "/var options: {var}"
    );
    let limits = sh(&d, &p, "ulimit -n; ulimit -Hn").await;
    let want = d.host_limits().0.ulimits()[0].hard.unwrap().to_string();
    assert_eq!(
        limits.lines().collect::<Vec<_>>(),
        [want.as_str(), want.as_str()]
    );
    let volume = docker.inspect_volume(&format!("{p}-var")).await.unwrap();
    assert_eq!(volume.labels.get(labels::PROFILE), Some(&p));
    assert_eq!(volume.labels.get(labels::NODE), Some(&p));
    // Data survives stop/start; the address stays.
    sh(&d, &p, "echo kept > /var/marker").await;
    d.stop_node(&p, Duration::from_secs(10)).await.unwrap();
    assert_eq!(d.list_nodes(&p).await.unwrap()[0].state, HostState::Stopped);
    d.start_node(&p).await.unwrap();
    assert_eq!(sh(&d, &p, "cat /var/marker").await, "kept");
    assert_eq!(
        d.list_nodes(&p).await.unwrap()[0].ip.as_deref(),
        Some(ip.as_str())
    );
    d.pause_node(&p).await.unwrap();
    assert_eq!(d.list_nodes(&p).await.unwrap()[0].state, HostState::Paused);
    d.unpause_node(&p).await.unwrap();
    assert_eq!(
        d.list_profiles()
            .await
            .unwrap()
            .iter()
            .filter(|x| **x == p)
            .count(),
        1
    );

    let report = d.delete_profile(&p).await.unwrap();
    assert_eq!(report.nodes, [p.as_str()]);
    assert_eq!(report.volumes, [format!("{p}-var")]);
    assert_eq!(report.networks, [p.as_str()]);
    assert!(d.list_nodes(&p).await.unwrap().is_empty());
    assert!(!d.list_profiles().await.unwrap().contains(&p));
}

/// The `Runner` contract (minik_driver_api::contract) through podman's Docker-compatible exec
/// API: the docker runner, on podman's answers.
#[tokio::test]
async fn runner_contract() {
    let d = driver().await;
    test_image(&d).await;
    let p = profile("run");
    let _guard = ProfileGuard::with(&p, PodmanDriver::connect);
    let cluster = request(&p);
    let n = node(&p, 0, Role::ControlPlane);
    d.prepare(&cluster).await.unwrap();
    d.create_node(&cluster, &n, &NullObserver).await.unwrap();
    let runner = d.runner(&p);
    assert_eq!(runner.node(), p);
    contract::check(&runner).await;
    assert_eq!(sh(&d, &p, "echo $container").await, "podman");
    d.delete_profile(&p).await.unwrap();
}

#[tokio::test]
async fn capability_fallback_leaves_proc_sys_writable() {
    let d = driver()
        .await
        .with_security_mode(SecurityMode::Capabilities);
    test_image(&d).await;
    let p = profile("caps");
    let _guard = ProfileGuard::with(&p, PodmanDriver::connect);
    let cluster = request(&p);
    d.create_node(&cluster, &node(&p, 0, Role::ControlPlane), &NullObserver)
        .await
        .unwrap();
    d.create_node(&cluster, &node(&p, 1, Role::Worker), &NullObserver)
        .await
        .unwrap();
    let worker = format!("{p}-m02");
    let caps = sh(&d, &worker, "grep CapEff /proc/1/status").await;
    assert!(!caps.ends_with("0000000000000000"), "{caps}");
    sh(&d, &worker, "echo 1 > /proc/sys/net/ipv4/ip_forward").await;
    let nodes = d.list_nodes(&p).await.unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[1].role, Role::Worker);
    assert!(nodes[1].api_port.is_none(), "workers publish nothing");
    let report = d.delete_profile(&p).await.unwrap();
    assert_eq!(report.nodes.len(), 2);
    assert_eq!(report.volumes.len(), 2);
}

#[tokio::test]
async fn starts_the_service_on_a_socket_nothing_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run/podman.sock");
    // A stale socket file: it exists, nobody accepts.
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists() && !socket::socket_answers(&path));

    let started = Instant::now();
    let service = socket::ensure_service(&path).unwrap();
    let Service::Started { pid, .. } = service else {
        panic!("expected a start: {service:?}")
    };
    eprintln!(
        "podman system service answered after {:?}",
        started.elapsed()
    );
    assert_eq!(socket::ensure_service(&path).unwrap(), Service::Answering);

    let endpoint = Endpoint {
        host: format!("unix://{}", path.display()),
        source: EndpointSource::ContainerHost,
    };
    let d = PodmanDriver::connect_to(endpoint).unwrap();
    let info = d.check().await.unwrap();
    assert!(info.version.starts_with("Podman Engine"), "{info:?}");
    assert!(matches!(d.host_limits().1, minik_driver_podman::LimitsSource::Service(p) if p == pid));

    let pid = nix::unistd::Pid::from_raw(pid as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while socket::socket_answers(&path) {
        assert!(Instant::now() < deadline, "the service did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Reap it if it is our child (it is not waited for elsewhere).
    let _ = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
}

#[tokio::test]
async fn a_user_named_socket_is_not_started_but_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("podman.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let endpoint = Endpoint {
        host: format!("unix://{}", path.display()),
        source: EndpointSource::ContainerHost,
    };
    let d = PodmanDriver::connect_to(endpoint).unwrap();
    let err = d.check().await.unwrap_err();
    assert!(
        matches!(err, DriverError::EngineUnreachable { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("CONTAINER_HOST"),
        "advice names the variable: {err}"
    );
    assert!(!socket::socket_answers(&path), "minik started nothing");
}

#[tokio::test]
async fn a_docker_engine_is_not_podman() {
    let endpoint = Endpoint {
        host: "unix:///var/run/docker.sock".into(),
        source: EndpointSource::ContainerHost,
    };
    let d = PodmanDriver::connect_to(endpoint)
        .expect("this test needs the Docker Engine too (.ci/run starts it)");
    let err = d.check().await.unwrap_err();
    assert!(err.to_string().contains("is not podman"), "{err}");
}
