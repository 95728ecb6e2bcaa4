//! `minik profile list`.

use super::Context;
use crate::any_driver::AnyDriver;
use crate::state::{Profile, ProfileLoad};
use minik_driver_api::{Driver, HostState};
use serde::Serialize;
use std::collections::BTreeMap;

/// One row of `profile list`.
#[derive(Debug, Serialize)]
pub struct ProfileRow {
    pub name: String,
    pub driver: String,
    pub nodes: usize,
    /// Running, Paused, Stopped, Degraded (mixed), Missing (no nodes), Corrupt, Orphaned,
    /// Unknown (engine not answering).
    pub status: String,
    pub kubernetes: Option<String>,
}

/// Summarizes node states into one profile status.
pub fn summarize(states: &[HostState]) -> &'static str {
    if states.is_empty() || states.iter().all(|s| *s == HostState::Nonexistent) {
        "Missing"
    } else if states.iter().all(|s| *s == HostState::Running) {
        "Running"
    } else if states.iter().all(|s| *s == HostState::Paused) {
        "Paused"
    } else if states.iter().all(|s| *s == HostState::Stopped) {
        "Stopped"
    } else {
        "Degraded"
    }
}

pub async fn list(ctx: &Context) -> anyhow::Result<u8> {
    // Profile files first; then each engine a profile uses is asked once for every node's
    // state, and the profiles are checked for a paused cluster side by side. An engine no
    // profile uses is only looked at (for orphans) when it is already there: docker's socket
    // exists, podman's service listens; nothing is started and no version is asked.
    let mut loaded = Vec::new();
    for name in Profile::list_names(&ctx.home)? {
        match Profile::load(&ctx.home, &name) {
            Ok(ProfileLoad::Found(p)) => loaded.push(Ok(p)),
            Ok(ProfileLoad::Missing) => {}
            Err(_) => loaded.push(Err(name)),
        }
    }
    let mut engines: BTreeMap<String, Engine> = BTreeMap::new();
    for p in loaded.iter().flatten() {
        if !engines.contains_key(&p.driver) {
            let engine = Engine::open(&p.driver, ctx, &loaded).await;
            engines.insert(p.driver.clone(), engine);
        }
    }
    let rows = futures_util::future::join_all(loaded.iter().map(|p| async {
        match p {
            Ok(p) => ProfileRow {
                name: p.name.clone(),
                driver: p.driver.clone(),
                nodes: p.nodes.len(),
                status: match engines.get(&p.driver) {
                    Some(engine) => engine.status(p).await,
                    None => "Unknown".to_string(),
                },
                kubernetes: p.kubernetes.as_ref().map(|k| k.version.clone()),
            },
            Err(name) => ProfileRow {
                name: name.clone(),
                driver: "?".into(),
                nodes: 0,
                status: "Corrupt".into(),
                kubernetes: None,
            },
        }
    }))
    .await;
    let mut rows = rows;
    // Leftovers: labelled resources (or a qemu driver's VM directories) whose profile file
    // is gone. A profile directory without its file is listed here too, not skipped.
    for driver in crate::any_driver::DRIVERS.iter().chain(&["fake"]) {
        let opened;
        let d = match engines.get(*driver) {
            Some(e) => match &e.driver {
                Some(d) => d,
                None => continue,
            },
            None => match present_engine(driver, ctx) {
                Some(d) => {
                    opened = d;
                    &opened
                }
                None => continue,
            },
        };
        for p in d.list_profiles().await.unwrap_or_default() {
            if !rows.iter().any(|r| r.name == p) {
                let nodes = d.list_nodes(&p).await.map(|n| n.len()).unwrap_or(0);
                rows.push(ProfileRow {
                    name: p,
                    driver: d.name().into(),
                    nodes,
                    status: "Orphaned".into(),
                    kubernetes: None,
                });
            }
        }
    }
    if ctx.json() {
        crate::outln!("{}", serde_json::json!({ "profiles": rows }));
    } else if rows.is_empty() {
        crate::outln!("No profiles. Create one with `minik start`.");
    } else {
        crate::outln!(
            "{:<20} {:<8} {:>5}  {:<9} KUBERNETES",
            "PROFILE",
            "DRIVER",
            "NODES",
            "STATUS"
        );
        for r in &rows {
            crate::outln!(
                "{:<20} {:<8} {:>5}  {:<9} {}",
                r.name,
                r.driver,
                r.nodes,
                r.status,
                r.kubernetes.as_deref().unwrap_or("none")
            );
        }
    }
    Ok(0)
}

/// One engine as `profile list` sees it: connected once, its nodes' states read once.
struct Engine {
    driver: Option<AnyDriver>,
    /// Node states per profile, from one listing (container engines), else per profile.
    states: Result<BTreeMap<String, Vec<(String, HostState)>>, ()>,
}

impl Engine {
    async fn open(name: &str, ctx: &Context, profiles: &[Result<Profile, String>]) -> Engine {
        let Ok(driver) = AnyDriver::connect(name, &ctx.home) else {
            return Engine {
                driver: None,
                states: Err(()),
            };
        };
        let states = match driver.as_container_engine() {
            Some(engine) => engine.node_states().await.map_err(|_| ()),
            None => {
                let mut map = BTreeMap::new();
                let mut failed = false;
                for p in profiles.iter().flatten().filter(|p| p.driver == name) {
                    match driver.list_nodes(&p.name).await {
                        Ok(live) => {
                            map.insert(
                                p.name.clone(),
                                live.into_iter().map(|n| (n.name, n.state)).collect(),
                            );
                        }
                        Err(_) => failed = true,
                    }
                }
                if failed { Err(()) } else { Ok(map) }
            }
        };
        Engine {
            driver: Some(driver),
            states,
        }
    }

    async fn status(&self, p: &Profile) -> String {
        let (Some(driver), Ok(states)) = (&self.driver, &self.states) else {
            return "Unknown".to_string();
        };
        let live = states.get(&p.name).map(Vec::as_slice).unwrap_or_default();
        let states: Vec<HostState> = p
            .nodes
            .iter()
            .map(|n| {
                live.iter()
                    .find(|(name, _)| name == &n.name)
                    .map(|(_, s)| *s)
                    .unwrap_or(HostState::Nonexistent)
            })
            .collect();
        let summary = summarize(&states);
        // `minik pause` of a Kubernetes profile freezes containers inside running nodes: the
        // hosts run, the cluster is paused.
        if summary == "Running"
            && p.kubernetes.is_some()
            && crate::cluster::health::apiserver_paused(&driver.runner(&p.control_plane().name))
                .await
        {
            "Paused".to_string()
        } else {
            summary.to_string()
        }
    }
}

/// An engine no profile uses, when it is already there (see [`list`]).
fn present_engine(name: &str, ctx: &Context) -> Option<AnyDriver> {
    match name {
        "docker" => {
            let host = minik_driver_docker::docker_host();
            match host.strip_prefix("unix://") {
                Some(path) if !std::path::Path::new(path).exists() => None,
                _ => AnyDriver::connect("docker", &ctx.home).ok(),
            }
        }
        "podman" => minik_driver_podman::PodmanDriver::connect_if_listening()
            .map(|d| AnyDriver::Podman(d.with_security_memory(ctx.home.engine_security_file()))),
        // The hidden test engine: a file under MINIK_HOME.
        "fake" if !ctx.home.fake_engine_file().exists() => None,
        // The qemu driver lists its VM directories under MINIK_HOME: files only.
        other => AnyDriver::connect(other, &ctx.home).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HostState::*;

    #[test]
    fn summary() {
        assert_eq!(summarize(&[Running, Running]), "Running");
        assert_eq!(summarize(&[Stopped]), "Stopped");
        assert_eq!(summarize(&[Paused, Paused]), "Paused");
        assert_eq!(summarize(&[Running, Stopped]), "Degraded");
        assert_eq!(summarize(&[Nonexistent]), "Missing");
        assert_eq!(summarize(&[]), "Missing");
    }
}
