//! Driver-independent cluster work, written against the `Driver` and `Runner` traits only:
//! provisioning as an ordered list of named steps, node boot checks, and restart.

pub mod boot;
pub mod create;
pub mod delete;
pub mod error;
pub mod health;
pub mod kubernetes;
pub mod lifecycle;
pub mod nodes;
pub mod pause;
pub mod restart;
pub mod steps;

use crate::state::{NodeRecord, Profile};
use crate::ui::Reporter;
use anyhow::Context as _;
use error::{ClusterError, ClusterKind};
use futures_util::future::try_join_all;
use minik_driver_api::{ClusterRequest, Driver, HostState, NodeInfo, NodeSpec};
use std::collections::BTreeMap;
use std::time::Duration;

/// Creates a new profile's nodes: network → nodes (in parallel) → boot (in parallel).
pub async fn provision<D: Driver>(
    driver: &D,
    request: &ClusterRequest,
    nodes: &[NodeSpec],
    reporter: &Reporter,
    boot_timeout: Duration,
) -> anyhow::Result<()> {
    let step = reporter.step("prepare", format!("Preparing {} resources", driver.name()));
    step.finish_with(
        driver
            .prepare(request)
            .await
            .context("preparing the profile's network"),
    )?;

    let title = match nodes.len() {
        1 => format!("Creating node {}", nodes[0].name),
        n => format!("Creating {n} nodes"),
    };
    let step = reporter.step("create-nodes", title);
    let created = all_then_first_error(nodes.iter().map(|n| async move {
        driver
            .create_node(request, n, reporter)
            .await
            .with_context(|| format!("creating node {}", n.name))
    }))
    .await;
    step.finish_with(created)?;

    wait_all_booted(
        driver,
        nodes.iter().map(|n| n.name.as_str()),
        reporter,
        boot_timeout,
        Stopped::Fails,
    )
    .await
}

/// Whether [`wait_all_booted`] starts a node again that it sees stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// A new node that stops has failed: report it.
    Fails,
    /// An existing node may be stopped by an engine call still running from an interrupted
    /// `minik stop`: start it again (a few times at most).
    Restart,
}

/// Runs every future to its end, then returns the first error. Node creation uses it instead
/// of `try_join_all`: dropping the other nodes' creates when one fails would leave their
/// engine calls running while the cleanup removes what they have made so far.
pub async fn all_then_first_error<T>(
    futures: impl IntoIterator<Item = impl std::future::Future<Output = anyhow::Result<T>>>,
) -> anyhow::Result<Vec<T>> {
    futures_util::future::join_all(futures)
        .await
        .into_iter()
        .collect()
}

/// Waits until every named node runs systemd and containerd.
pub async fn wait_all_booted<'a, D: Driver>(
    driver: &D,
    names: impl Iterator<Item = &'a str>,
    reporter: &Reporter,
    timeout: Duration,
    stopped: Stopped,
) -> anyhow::Result<()> {
    let names: Vec<&str> = names.collect();
    let step = reporter.step("boot", "Waiting for systemd and containerd");
    let results = try_join_all(names.iter().map(|name| async move {
        let runner = driver.runner(name);
        let restart = || async move {
            reporter.warn(&format!(
                "node {name} stopped while starting (an interrupted `minik stop` still finishing in the engine?): starting it again"
            ));
            driver
                .start_node(name)
                .await
                .with_context(|| format!("starting node {name}"))
        };
        let report =
            boot::wait_for_boot_restarting(&runner, timeout, restart, stopped == Stopped::Restart)
                .await?;
        if let Some(warning) = report.warning() {
            reporter.warn(&format!("node {name}: {warning}"));
        }
        anyhow::Ok(())
    }))
    .await;
    step.finish_with(results.map(|_| ()))
}

/// Brings an existing profile's nodes back: creates missing ones, starts stopped ones,
/// unpauses paused ones, then waits for boot. Never recreates a node that exists.
pub async fn start_existing<D: Driver>(
    driver: &D,
    request: &ClusterRequest,
    wanted: &[NodeSpec],
    reporter: &Reporter,
    boot_timeout: Duration,
) -> anyhow::Result<()> {
    let live = driver
        .list_nodes(&request.profile)
        .await
        .context("reading the nodes' state")?;
    let recorded: Vec<&str> = wanted.iter().map(|w| w.name.as_str()).collect();
    remove_unrecorded(driver, &request.profile, &recorded, &live, reporter).await?;
    let live: Vec<_> = live
        .into_iter()
        .filter(|l| wanted.iter().any(|w| w.name == l.name))
        .collect();
    let missing: Vec<&NodeSpec> = wanted
        .iter()
        .filter(|w| !live.iter().any(|l| l.name == w.name))
        .collect();
    if !missing.is_empty() {
        let step = reporter.step("prepare", format!("Preparing {} resources", driver.name()));
        step.finish_with(
            driver
                .prepare(request)
                .await
                .context("preparing the profile's network"),
        )?;
        let step = reporter.step(
            "create-nodes",
            format!("Recreating {} missing node(s)", missing.len()),
        );
        let r = all_then_first_error(missing.iter().map(|n| async move {
            driver
                .create_node(request, n, reporter)
                .await
                .with_context(|| format!("creating node {}", n.name))
        }))
        .await;
        step.finish_with(r)?;
    }
    let to_start: Vec<_> = live
        .iter()
        .filter(|n| n.state != HostState::Running)
        .collect();
    if !to_start.is_empty() {
        let step = reporter.step(
            "start-nodes",
            format!("Starting {} node(s)", to_start.len()),
        );
        let r = try_join_all(to_start.iter().map(|n| async move {
            match n.state {
                HostState::Paused => driver.unpause_node(&n.name).await,
                _ => driver.start_node(&n.name).await,
            }
            .with_context(|| format!("starting node {}", n.name))
        }))
        .await;
        step.finish_with(r)?;
    }
    wait_all_booted(
        driver,
        wanted.iter().map(|n| n.name.as_str()),
        reporter,
        boot_timeout,
        Stopped::Restart,
    )
    .await
}

/// Removes the profile's labelled nodes that its profile file does not record: what a `node
/// add` killed before it saved the profile left (the profile lock rules out one in progress).
pub async fn remove_unrecorded<D: Driver>(
    driver: &D,
    profile: &str,
    recorded: &[&str],
    live: &[minik_driver_api::NodeInfo],
    reporter: &Reporter,
) -> anyhow::Result<()> {
    for node in live.iter().filter(|l| !recorded.contains(&l.name.as_str())) {
        reporter.warn(&format!(
            "removing node {} of profile \"{profile}\": it is not in the profile (an interrupted `minik node add` left it)",
            node.name
        ));
        driver
            .delete_node(&node.name)
            .await
            .with_context(|| format!("removing node {}", node.name))?;
    }
    Ok(())
}

/// The error for a node that is not in the profile.
pub fn unknown_node(profile: &str, node: &str, known: &[String]) -> anyhow::Error {
    ClusterError::new(
        ClusterKind::NodeNotFound,
        format!("profile {profile:?} has no node {node:?}"),
    )
    .with_advice(format!("Its nodes are: {}.", known.join(", ")))
    .into()
}

/// `minik logs -p PROFILE -n NODE` for a node named as minik names them (`P`, `P-m02`, …), for
/// advice lines that know only the node.
pub fn logs_command(node: &str) -> String {
    let profile = match node.rsplit_once("-m") {
        Some((p, n)) if !p.is_empty() && n.len() >= 2 && n.bytes().all(|b| b.is_ascii_digit()) => p,
        _ => node,
    };
    format!("minik logs -p {profile} -n {node}")
}

/// The error for a setup command that failed inside a node.
pub fn command_failed(node: &str, what: &str, detail: &str) -> anyhow::Error {
    ClusterError::new(
        ClusterKind::Provision,
        format!("{what} failed on node {node}: {detail}"),
    )
    .with_advice(format!(
        "Run `{}` to see the node's journal.",
        logs_command(node)
    ))
    .into()
}

/// Picks the node named by `-n` (full name or suffix), default the first control plane.
pub fn pick_node<'a>(profile: &'a Profile, wanted: Option<&str>) -> anyhow::Result<&'a NodeRecord> {
    match wanted {
        None => Ok(profile.control_plane()),
        Some(w) => profile.find_node(w).ok_or_else(|| {
            let known: Vec<String> = profile.nodes.iter().map(|n| n.name.clone()).collect();
            crate::cluster::unknown_node(&profile.name, w, &known)
        }),
    }
}

/// Fails unless the node is running.
pub fn require_running(profile: &Profile, node: &str, state: HostState) -> anyhow::Result<()> {
    if state == HostState::Running {
        return Ok(());
    }
    let advice = if state == HostState::Paused {
        format!("Resume it with `minik unpause -p {}`.", profile.name)
    } else {
        format!("Start it with `minik start -p {}`.", profile.name)
    };
    Err(
        ClusterError::new(ClusterKind::NotRunning, format!("node {node} is {state}"))
            .with_advice(advice)
            .into(),
    )
}

/// The engine request for a profile's nodes.
pub fn request_for(profile: &Profile) -> ClusterRequest {
    ClusterRequest {
        profile: profile.name.clone(),
        image: profile.image.clone(),
        cpus: profile.cpus,
        memory_mib: profile.memory_mib,
        env: BTreeMap::new(),
    }
}

/// The live state of one recorded node (Nonexistent when the engine has no such node).
pub fn state_of(live: &[NodeInfo], name: &str) -> HostState {
    live.iter()
        .find(|n| n.name == name)
        .map(|n| n.state)
        .unwrap_or(HostState::Nonexistent)
}

/// Best effort, before stopping or deleting a Kubernetes profile: resumes what `minik pause` froze in the
/// running nodes, so their shutdown is clean and no stale marker survives (a failure is only a
/// warning: the stop goes ahead and the engine kills what does not stop). Before a delete it is
/// what makes the delete possible: on cgroup v1 a frozen process cannot die, so the engine
/// cannot kill a node that still holds paused containers ("did not receive an exit event").
pub async fn thaw_before_stop<D: Driver>(
    driver: &D,
    live: &[NodeInfo],
    nodes: &[&str],
    reporter: &Reporter,
) {
    let running: Vec<&str> = nodes
        .iter()
        .copied()
        .filter(|n| state_of(live, n) == HostState::Running)
        .collect();
    let results = futures_util::future::join_all(
        running
            .iter()
            .map(|n| async move { (*n, pause::thaw_before_stop(&driver.runner(n)).await) }),
    )
    .await;
    for (node, result) in results {
        if let Err(e) = result {
            reporter.warn(&format!(
                "node {node}: could not resume paused containers: {e:#}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_logs_advice_names_the_profile_of_the_node() {
        assert_eq!(super::logs_command("dev"), "minik logs -p dev -n dev");
        assert_eq!(
            super::logs_command("dev-m02"),
            "minik logs -p dev -n dev-m02"
        );
        assert_eq!(
            super::logs_command("a-m-b-m12"),
            "minik logs -p a-m-b -n a-m-b-m12"
        );
        // Not minik's worker suffix: the whole name is the profile.
        assert_eq!(
            super::logs_command("x-mail"),
            "minik logs -p x-mail -n x-mail"
        );
    }
}
