//! `minik profile list`.

use super::{Context, state_of};
use crate::drivers::AnyDriver;
use crate::state::{Profile, ProfileLoad};
use minik_driver_api::{Driver, HostState};
use serde::Serialize;

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
    let mut rows = Vec::new();
    let names = Profile::list_names(&ctx.home)?;
    for name in &names {
        let row = match Profile::load(&ctx.home, name) {
            Ok(ProfileLoad::Found(p)) => {
                let status = match AnyDriver::connect(&p.driver, &ctx.home) {
                    Ok(d) => match d.list_nodes(&p.name).await {
                        Ok(live) => {
                            let states: Vec<HostState> =
                                p.nodes.iter().map(|n| state_of(&live, &n.name)).collect();
                            let summary = summarize(&states);
                            // `minik pause` of a Kubernetes profile freezes containers inside
                            // running nodes: the hosts run, the cluster is paused.
                            if summary == "Running"
                                && p.kubernetes.is_some()
                                && crate::cluster::health::apiserver_paused(
                                    &d.runner(&p.control_plane().name),
                                )
                                .await
                            {
                                "Paused".to_string()
                            } else {
                                summary.to_string()
                            }
                        }
                        Err(_) => "Unknown".to_string(),
                    },
                    Err(_) => "Unknown".to_string(),
                };
                ProfileRow {
                    name: p.name.clone(),
                    driver: p.driver.clone(),
                    nodes: p.nodes.len(),
                    status,
                    kubernetes: p.kubernetes.as_ref().map(|k| k.version.clone()),
                }
            }
            Ok(ProfileLoad::Missing) => continue,
            Err(_) => ProfileRow {
                name: name.clone(),
                driver: "?".into(),
                nodes: 0,
                status: "Corrupt".into(),
                kubernetes: None,
            },
        };
        rows.push(row);
    }
    // Leftovers: labelled resources (or a qemu driver's VM directories) whose profile file
    // is gone. A profile directory without its file is listed here too, not skipped.
    for d in AnyDriver::reachable(&ctx.home).await {
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
