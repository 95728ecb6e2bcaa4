//! Pausing Kubernetes inside a node, minikube's way (shared reference minikube.md §3), over
//! the `Runner`:
//!
//! - pause: `systemctl stop kubelet` first (so it cannot restart what gets frozen), then list
//!   the containers of the chosen namespaces with crictl and freeze each with runc in
//!   containerd's CRI root, then write the marker [`PAUSED_MARKER`] listing the frozen ids;
//! - unpause: resume exactly the ids in the marker, `systemctl start kubelet`, remove the
//!   marker.
//!
//! The node itself keeps running (host state Running): only the pods are frozen, and
//! `minik status` shows the API server as Paused. The marker lives under `/var`, which
//! survives a stop/start of the node.

use super::command_failed;
use super::error::{ClusterError, ClusterKind};
use super::health::{RUNC_ROOT, parse_ids, runc_status};
use minik_driver_api::{DriverError, Runner};

/// The file in the node listing the container ids `minik pause` froze, one per line.
pub const PAUSED_MARKER: &str = "/var/lib/minik/paused";

/// The namespaces paused when none are given (minikube also lists its dashboard and istio
/// namespaces; minik installs neither).
pub const DEFAULT_NAMESPACES: &[&str] = &["kube-system"];

/// The pod label crictl filters on.
const NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";

/// Which pods' containers to freeze.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespaces {
    /// These namespaces (never empty).
    Only(Vec<String>),
    /// Every container crictl lists.
    All,
}

impl Namespaces {
    /// From `-n a,b` / `-A`; neither means [`DEFAULT_NAMESPACES`]. Names must be DNS labels
    /// (they become a crictl label filter); anything else is `MK_USAGE`.
    pub fn from_flags(namespaces: &[String], all: bool) -> anyhow::Result<Namespaces> {
        if all {
            return Ok(Namespaces::All);
        }
        let mut list: Vec<String> = Vec::new();
        for ns in namespaces
            .iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
        {
            if !is_dns_label(ns) {
                return Err(ClusterError::new(
                    ClusterKind::BadRequest,
                    format!("invalid namespace {ns:?}"),
                )
                .with_advice(
                    "Namespaces are lowercase letters, digits and dashes (e.g. `-n kube-system,default`).",
                )
                .into());
            }
            if !list.iter().any(|n| n == ns) {
                list.push(ns.to_string());
            }
        }
        if list.is_empty() {
            list = DEFAULT_NAMESPACES.iter().map(|s| s.to_string()).collect();
        }
        Ok(Namespaces::Only(list))
    }

    /// For messages: `kube-system, default` or `all namespaces`.
    pub fn describe(&self) -> String {
        match self {
            Namespaces::Only(list) => list.join(", "),
            Namespaces::All => "all namespaces".into(),
        }
    }

    /// For JSON results: the names, or `["*"]` for all.
    pub fn names(&self) -> Vec<String> {
        match self {
            Namespaces::Only(list) => list.clone(),
            Namespaces::All => vec!["*".into()],
        }
    }
}

/// RFC 1123 label: 1–63 of `[a-z0-9-]`, starting and ending alphanumeric.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The crictl command that lists the running containers of one namespace (`None`: all).
pub fn list_command(namespace: Option<&str>) -> Vec<String> {
    let mut argv: Vec<String> = ["crictl", "ps", "-q"].map(String::from).to_vec();
    if let Some(ns) = namespace {
        argv.push("--label".into());
        argv.push(format!("{NAMESPACE_LABEL}={ns}"));
    }
    argv
}

/// The marker's contents for these ids.
pub fn marker_contents(ids: &[String]) -> String {
    ids.iter().map(|id| format!("{id}\n")).collect()
}

/// Whether a runc error means there was nothing to do (`container not paused` on resume, or a
/// container that has gone away meanwhile).
fn nothing_to_resume(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    s.contains("not paused") || s.contains("does not exist") || s.contains("not running")
}

/// The ids in the node's pause marker; empty when there is no marker.
pub async fn read_marker<R: Runner>(runner: &R) -> anyhow::Result<Vec<String>> {
    match runner.read_file(PAUSED_MARKER).await {
        Ok(bytes) => Ok(parse_ids(&String::from_utf8_lossy(&bytes))),
        Err(DriverError::Exec { detail, .. })
            if detail.to_ascii_lowercase().contains("no such file") =>
        {
            Ok(Vec::new())
        }
        Err(e) => Err(anyhow::Error::from(e)
            .context(format!("reading {PAUSED_MARKER} on node {}", runner.node()))),
    }
}

async fn run_checked<R: Runner>(runner: &R, argv: &[&str], what: &str) -> anyhow::Result<String> {
    let out = runner.run(argv).await?;
    if !out.success() {
        return Err(command_failed(
            runner.node(),
            what,
            &format!(
                "`{}` exited {}: {}",
                argv.join(" "),
                out.exit_code,
                out.last_error_line()
            ),
        ));
    }
    Ok(out.stdout_str())
}

/// Pauses Kubernetes in one node: stops kubelet, freezes the containers of `namespaces`, and
/// records them (plus any an earlier pause froze) in the marker. Returns the ids frozen now.
///
/// A container that is already frozen is recorded, not frozen again; one that exited is
/// skipped. When freezing fails halfway, the marker still lists what was frozen, so
/// `minik unpause` undoes it.
pub async fn pause_node<R: Runner>(
    runner: &R,
    namespaces: &Namespaces,
) -> anyhow::Result<Vec<String>> {
    // crictl before the kubelet: a node without it (an image built on Debian's containerd from
    // a bundle that brought none) must not be left with its kubelet stopped.
    let probe = match runner.run(&["crictl", "--version"]).await {
        Ok(out) if out.success() => None,
        Ok(out) => Some(format!("exit {}: {}", out.exit_code, out.last_error_line())),
        Err(e) => Some(e.to_string()),
    };
    if let Some(detail) = probe {
        return Err(command_failed(
            runner.node(),
            "checking for crictl (pause lists the pods' containers with it; put crictl in the \
             --kubernetes-from directory or build the node image with --containerd-source upstream)",
            &detail,
        ));
    }
    run_checked(
        runner,
        &["systemctl", "stop", "kubelet"],
        "stopping kubelet",
    )
    .await?;
    let earlier = read_marker(runner).await?;

    let lists: Vec<Vec<String>> = match namespaces {
        Namespaces::All => vec![list_command(None)],
        Namespaces::Only(list) => list.iter().map(|ns| list_command(Some(ns))).collect(),
    };
    let mut candidates: Vec<String> = Vec::new();
    for argv in &lists {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let stdout = match run_checked(runner, &argv, "listing containers").await {
            Ok(stdout) => stdout,
            Err(e) if earlier.is_empty() => {
                // Nothing is frozen: give the node its kubelet back before failing.
                let _ = runner.run(&["systemctl", "start", "kubelet"]).await;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        for id in parse_ids(&stdout) {
            if !candidates.contains(&id) {
                candidates.push(id);
            }
        }
    }

    let mut frozen = earlier.clone();
    let mut now = Vec::new();
    let mut failure = None;
    for id in candidates.iter().filter(|id| !earlier.contains(id)) {
        let out = runner
            .run(&["runc", "--root", RUNC_ROOT, "pause", id])
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                failure = Some(anyhow::Error::from(e).context(format!("freezing container {id}")));
                break;
            }
        };
        if out.success() {
            frozen.push(id.clone());
            now.push(id.clone());
            continue;
        }
        // runc says "container not running" both for an exited container and for one that is
        // already paused; its state tells them apart.
        let state = runner
            .run(&["runc", "--root", RUNC_ROOT, "state", id])
            .await
            .ok()
            .filter(|o| o.success())
            .and_then(|o| runc_status(&o.stdout_str()));
        match state.as_deref() {
            Some("paused") => frozen.push(id.clone()),
            Some("stopped") | None if nothing_to_resume(&out.stderr_str()) => {}
            _ => {
                failure = Some(command_failed(
                    runner.node(),
                    &format!("freezing container {id}"),
                    &out.last_error_line(),
                ));
                break;
            }
        }
    }

    let written = runner
        .copy_to(PAUSED_MARKER, marker_contents(&frozen).as_bytes(), 0o644)
        .await
        .map_err(|e| anyhow::Error::from(e).context(format!("writing {PAUSED_MARKER}")));
    if let Some(failure) = failure {
        return Err(failure);
    }
    written?;
    Ok(now)
}

/// Undoes [`pause_node`]: resumes the ids in the marker, starts kubelet when `start_kubelet`,
/// and removes the marker. Returns the ids resumed. Containers that are not paused or are gone
/// are skipped; any other failure keeps the marker (so a retry resumes the rest) and leaves
/// kubelet stopped.
pub async fn unpause_node<R: Runner>(
    runner: &R,
    start_kubelet: bool,
) -> anyhow::Result<Vec<String>> {
    let ids = read_marker(runner).await?;
    let mut failures = Vec::new();
    for id in &ids {
        let out = runner
            .run(&["runc", "--root", RUNC_ROOT, "resume", id])
            .await?;
        if !out.success() && !nothing_to_resume(&out.stderr_str()) {
            failures.push(format!("{id}: {}", out.last_error_line()));
        }
    }
    if !failures.is_empty() {
        return Err(command_failed(
            runner.node(),
            "resuming containers",
            &failures.join("; "),
        ));
    }
    if start_kubelet {
        self::start_kubelet(runner).await?;
    }
    run_checked(
        runner,
        &["rm", "-f", PAUSED_MARKER],
        "removing the pause marker",
    )
    .await?;
    Ok(ids)
}

/// `systemctl start kubelet` (nothing happens where it runs already).
pub async fn start_kubelet<R: Runner>(runner: &R) -> anyhow::Result<()> {
    run_checked(
        runner,
        &["systemctl", "start", "kubelet"],
        "starting kubelet",
    )
    .await?;
    Ok(())
}

/// Before a node stops: resumes what `pause` froze and removes the marker, so the shutdown is
/// clean and the next boot does not find a stale marker. Does nothing (one read) when the node
/// was not paused. kubelet is left alone: it is enabled, so it starts with the node.
pub async fn thaw_before_stop<R: Runner>(runner: &R) -> anyhow::Result<usize> {
    match runner.read_file(PAUSED_MARKER).await {
        Ok(_) => Ok(unpause_node(runner, false).await?.len()),
        Err(DriverError::Exec { detail, .. })
            if detail.to_ascii_lowercase().contains("no such file") =>
        {
            Ok(0)
        }
        Err(e) => Err(e.into()),
    }
}

/// What `minik stop` runs in a Kubernetes node before the engine stops it: the kubelet first
/// (so it restarts nothing), then every pod container at once with a 5 s grace period. Left to
/// systemd's shutdown, kube-apiserver took 30 s to exit on SIGTERM here, so every stop hit the
/// engine's timeout and ended in SIGKILL; minikube stops the containers first too.
pub const STOP_PODS_SCRIPT: &str = "systemctl stop kubelet; \
     crictl ps -q | xargs -r -P 16 -n 1 crictl stop -t 5 >/dev/null";

/// Runs [`STOP_PODS_SCRIPT`] in one node. Best effort by design: whatever does not stop, the
/// engine's stop kills.
pub async fn stop_pods<R: Runner>(runner: &R) -> anyhow::Result<()> {
    run_checked(runner, &["sh", "-c", STOP_PODS_SCRIPT], "stopping pods").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::classify;
    use minik_driver_api::fake::{FakeDriver, FakeEngine, FakeRunner, Response};
    use minik_driver_api::{ClusterRequest, Driver, NodeSpec, NullObserver, Role};

    /// A fake engine with one running node `n` (files written with copy_to need a node).
    async fn engine_with_node(dir: &std::path::Path) -> (FakeEngine, FakeRunner) {
        let engine = FakeEngine::new(dir.join("engine.json"));
        let driver = FakeDriver::new(engine.clone());
        let request = ClusterRequest {
            profile: "p".into(),
            image: "img".into(),
            cpus: None,
            memory_mib: None,
            env: Default::default(),
        };
        let node = NodeSpec {
            name: "n".into(),
            role: Role::ControlPlane,
            index: 0,
        };
        driver
            .create_node(&request, &node, &NullObserver)
            .await
            .unwrap();
        let runner = FakeRunner::new(engine.clone(), "n");
        (engine, runner)
    }

    fn respond(engine: &FakeEngine, prefix: &[&str], code: i64, stdout: &str, stderr: &str) {
        engine.respond(Response {
            node: "*".into(),
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
            exit_code: code,
            stdout: stdout.into(),
            stderr: stderr.into(),
        });
    }

    fn argvs(engine: &FakeEngine) -> Vec<String> {
        engine.log().iter().map(|r| r.argv.join(" ")).collect()
    }

    #[test]
    fn namespace_flags() {
        assert_eq!(
            Namespaces::from_flags(&[], false).unwrap(),
            Namespaces::Only(vec!["kube-system".into()])
        );
        assert_eq!(
            Namespaces::from_flags(&["a".into(), "b".into(), "a".into(), " ".into()], false)
                .unwrap(),
            Namespaces::Only(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            Namespaces::from_flags(&["x".into()], true).unwrap(),
            Namespaces::All
        );
        for bad in ["Kube", "a b", "-x", "x-", "a=b", &"a".repeat(64)] {
            let err = Namespaces::from_flags(&[bad.to_string()], false).unwrap_err();
            assert_eq!(classify(&err).0.id, "MK_USAGE", "{bad}");
        }
        assert_eq!(Namespaces::All.describe(), "all namespaces");
    }

    #[test]
    fn commands_and_marker() {
        assert_eq!(
            list_command(Some("kube-system")).join(" "),
            "crictl ps -q --label io.kubernetes.pod.namespace=kube-system"
        );
        assert_eq!(list_command(None).join(" "), "crictl ps -q");
        assert_eq!(marker_contents(&["a".into(), "b".into()]), "a\nb\n");
        assert_eq!(marker_contents(&[]), "");
    }

    #[tokio::test]
    async fn pause_then_unpause_resumes_what_was_frozen() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, runner) = engine_with_node(dir.path()).await;
        respond(&engine, &["crictl", "ps", "-q"], 0, "aaa\nbbb\n", "");
        // bbb is already frozen: runc refuses, its state says paused.
        respond(
            &engine,
            &["runc", "--root", RUNC_ROOT, "pause", "bbb"],
            1,
            "",
            "container not running",
        );
        respond(
            &engine,
            &["runc", "--root", RUNC_ROOT, "state", "bbb"],
            0,
            r#"{"status":"paused"}"#,
            "",
        );
        let ns = Namespaces::from_flags(&[], false).unwrap();
        let now = pause_node(&runner, &ns).await.unwrap();
        assert_eq!(now, vec!["aaa".to_string()]);
        assert_eq!(
            engine.file("n", PAUSED_MARKER).as_deref(),
            Some("aaa\nbbb\n")
        );
        let log = argvs(&engine);
        assert_eq!(log[..2], ["crictl --version", "systemctl stop kubelet"]);
        assert!(log.contains(&format!("runc --root {RUNC_ROOT} pause aaa")));

        let resumed = unpause_node(&runner, true).await.unwrap();
        assert_eq!(resumed, vec!["aaa".to_string(), "bbb".to_string()]);
        let log = argvs(&engine);
        let tail: Vec<&str> = log[log.len() - 4..].iter().map(String::as_str).collect();
        assert_eq!(
            tail,
            [
                format!("runc --root {RUNC_ROOT} resume aaa").as_str(),
                &format!("runc --root {RUNC_ROOT} resume bbb"),
                "systemctl start kubelet",
                &format!("rm -f {PAUSED_MARKER}"),
            ]
        );
    }

    #[tokio::test]
    async fn failed_freeze_keeps_the_marker_of_what_was_frozen() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, runner) = engine_with_node(dir.path()).await;
        respond(&engine, &["crictl", "ps", "-q"], 0, "aaa\nbbb\nccc\n", "");
        respond(
            &engine,
            &["runc", "--root", RUNC_ROOT, "pause", "bbb"],
            1,
            "",
            "freezer: permission denied",
        );
        let err = pause_node(&runner, &Namespaces::All).await.unwrap_err();
        assert_eq!(classify(&err).0.id, "GUEST_PROVISION");
        assert!(
            format!("{err:#}").contains("freezing container bbb"),
            "{err:#}"
        );
        assert_eq!(engine.file("n", PAUSED_MARKER).as_deref(), Some("aaa\n"));
        assert!(!argvs(&engine).iter().any(|a| a.ends_with("pause ccc")));
    }

    #[tokio::test]
    async fn pause_without_crictl_leaves_the_kubelet_running() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, runner) = engine_with_node(dir.path()).await;
        respond(
            &engine,
            &["crictl", "--version"],
            127,
            "",
            "exec: \"crictl\": executable file not found in $PATH",
        );
        let err = pause_node(&runner, &Namespaces::All).await.unwrap_err();
        assert!(
            format!("{err:#}").contains("checking for crictl"),
            "{err:#}"
        );
        assert!(
            format!("{err:#}").contains("executable file not found"),
            "{err:#}"
        );
        assert_eq!(argvs(&engine), ["crictl --version"], "kubelet untouched");
        assert_eq!(engine.file("n", PAUSED_MARKER), None, "no marker");
    }

    #[tokio::test]
    async fn pause_whose_listing_fails_starts_the_kubelet_again() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, runner) = engine_with_node(dir.path()).await;
        respond(&engine, &["crictl", "ps"], 1, "", "connection refused");
        let err = pause_node(&runner, &Namespaces::All).await.unwrap_err();
        assert!(format!("{err:#}").contains("connection refused"), "{err:#}");
        let log = argvs(&engine);
        assert_eq!(
            log.last().map(String::as_str),
            Some("systemctl start kubelet"),
            "{log:?}"
        );
    }

    #[tokio::test]
    async fn stop_pods_stops_the_kubelet_before_the_containers() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, runner) = engine_with_node(dir.path()).await;
        stop_pods(&runner).await.unwrap();
        let log = argvs(&engine);
        assert_eq!(log, [format!("sh -c {STOP_PODS_SCRIPT}")]);
        let kubelet = STOP_PODS_SCRIPT.find("systemctl stop kubelet").unwrap();
        assert!(kubelet < STOP_PODS_SCRIPT.find("crictl stop").unwrap());
        respond(&engine, &["sh", "-c"], 1, "", "no crictl");
        assert!(stop_pods(&runner).await.is_err());
    }

    #[tokio::test]
    async fn unpause_without_marker_only_starts_kubelet() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, runner) = engine_with_node(dir.path()).await;
        assert!(unpause_node(&runner, true).await.unwrap().is_empty());
        assert_eq!(
            argvs(&engine),
            ["systemctl start kubelet", &format!("rm -f {PAUSED_MARKER}")]
        );
        assert_eq!(thaw_before_stop(&runner).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn resume_failure_keeps_kubelet_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, runner) = engine_with_node(dir.path()).await;
        respond(&engine, &["crictl", "ps", "-q"], 0, "aaa\n", "");
        pause_node(&runner, &Namespaces::All).await.unwrap();
        respond(
            &engine,
            &["runc", "--root", RUNC_ROOT, "resume"],
            1,
            "",
            "cgroup: busy",
        );
        let err = unpause_node(&runner, true).await.unwrap_err();
        assert!(format!("{err:#}").contains("aaa: cgroup: busy"), "{err:#}");
        assert!(!argvs(&engine).contains(&"systemctl start kubelet".to_string()));
    }
}
