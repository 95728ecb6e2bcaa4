//! Helpers shared by the real-engine tests. These tests need a Docker Engine (DOCKER_HOST or
//! /var/run/docker.sock) and fail, not skip, when it does not answer.
#![allow(dead_code)]

mod guard;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
};
use minik_driver_api::{ClusterRequest, Driver, NodeSpec, Observer, Role, labels};
use minik_driver_docker::DockerDriver;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// The image the tests' nodes run: Debian with a bash init that exits on SIGRTMIN+3.
pub const TEST_IMAGE: &str = "localhost/minik/driver-test:1";

const DOCKERFILE: &str =
    "FROM debian:trixie-slim\nCOPY init.sh /init.sh\nENTRYPOINT [\"/init.sh\"]\n";
const INIT: &str = "#!/bin/bash\n# Stand-in for systemd: exits on its halt signal.\ntrap 'exit 0' RTMIN+3 TERM\nwhile :; do sleep 3600 & wait $!; done\n";

/// A connected driver whose engine answers; panics (fails the test) otherwise.
pub async fn driver() -> DockerDriver {
    let driver = DockerDriver::connect().expect("connect to the Docker Engine");
    if let Err(e) = driver.check().await {
        panic!(
            "these tests need a running Docker Engine (DOCKER_HOST or /var/run/docker.sock): {e}"
        );
    }
    driver
}

static IMAGE_BUILT: tokio::sync::Mutex<bool> = tokio::sync::Mutex::const_new(false);

/// Builds [`TEST_IMAGE`] once per test process (the engine's cache makes rebuilds instant).
pub async fn test_image(driver: &DockerDriver) -> String {
    let mut built = IMAGE_BUILT.lock().await;
    if !*built {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, body, mode) in [("Dockerfile", DOCKERFILE, 0o644), ("init.sh", INIT, 0o755)] {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(mode);
            tar.append_data(&mut header, name, body.as_bytes()).unwrap();
        }
        let context = tar.into_inner().unwrap();
        let mut lines = Vec::new();
        let result = driver
            .build_image(context, TEST_IMAGE, HashMap::new(), |l| {
                lines.push(l.to_string())
            })
            .await;
        if let Err(e) = result {
            panic!(
                "building the test image failed (is debian:trixie-slim there? tests/make-base-image.sh makes it): {e}\n{}",
                lines.join("\n")
            );
        }
        *built = true;
    }
    TEST_IMAGE.to_string()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A profile name no other test (or test run) uses.
pub fn unique_profile(tag: &str) -> String {
    format!(
        "dt-{}-{tag}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Node names as minik gives them: the profile, then `<profile>-m02`, ...
pub fn node(profile: &str, index: u32, role: Role) -> NodeSpec {
    let name = if index == 0 {
        profile.to_string()
    } else {
        format!("{profile}-m{:02}", index + 1)
    };
    NodeSpec { name, role, index }
}

pub fn request(profile: &str, image: &str) -> ClusterRequest {
    ClusterRequest {
        profile: profile.to_string(),
        image: image.to_string(),
        cpus: Some(1.0),
        memory_mib: Some(512),
        env: BTreeMap::from([("MINIK_TEST".to_string(), "1".to_string())]),
    }
}

/// Deletes the profile's resources when dropped, also when the test panicked.
pub type ProfileGuard = guard::ProfileGuard<DockerDriver>;

impl ProfileGuard {
    pub fn new(profile: &str) -> ProfileGuard {
        ProfileGuard::with(profile, DockerDriver::connect)
    }
}

/// Records what a driver wanted the user to know.
#[derive(Default)]
pub struct RecordingObserver {
    pub warnings: Mutex<Vec<String>>,
}

impl Observer for RecordingObserver {
    fn warn(&self, message: &str) {
        self.warnings.lock().unwrap().push(message.to_string());
    }
    fn detail(&self, _message: &str) {}
}

/// Names of containers, volumes and networks that carry `profile`'s label, asked of the engine
/// directly (not through the driver under test).
pub async fn labelled(
    driver: &DockerDriver,
    profile: &str,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let docker = driver.engine().docker();
    let filter = HashMap::from([(
        "label".to_string(),
        vec![format!("{}={profile}", labels::PROFILE)],
    )]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|c| c.names?.first().cloned())
        .collect();
    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::default()
                .filters(&filter)
                .build(),
        ))
        .await
        .unwrap()
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect();
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filter)
                .build(),
        ))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|n| n.name)
        .collect();
    (containers, volumes, networks)
}
