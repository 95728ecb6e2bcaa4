//! Health of a Kubernetes node as `minik status` reports it: kubelet and API server state,
//! read over the `Runner` (so it works the same on every driver and is tested with the
//! recording fake).
//!
//! - kubelet: `systemctl is-active kubelet`.
//! - API server: Paused when its container is frozen (found with `crictl ps --name
//!   kube-apiserver -q`, state from `runc state`: crictl cannot see the paused state, minikube
//!   makes the same detour); otherwise Running when `/readyz` answers `ok`. The readiness call
//!   is made inside the control plane with its own kubectl and `admin.conf`, so the host needs
//!   neither credentials nor TLS setup for it.
//!
//! Every probe has a short timeout: `status` must answer even when a node hangs.

use minik_driver_api::{Output, Runner};
use std::fmt;
use std::time::Duration;

/// containerd's runc root for the CRI (`k8s.io`) namespace, where pod containers live.
pub const RUNC_ROOT: &str = "/run/containerd/runc/k8s.io";

/// kubeadm's admin kubeconfig on the first control plane.
pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";

/// How long one probe command may take before the component counts as `Error`.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The state of kubelet or the API server, as minikube names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentState {
    /// Active (kubelet) or answering `/readyz` with `ok` (API server).
    Running,
    /// Not running.
    Stopped,
    /// Frozen by `minik pause`.
    Paused,
    /// Present but unhealthy, or the probe itself failed.
    Error,
}

impl ComponentState {
    /// `Running`, `Stopped`, `Paused` or `Error`.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentState::Running => "Running",
            ComponentState::Stopped => "Stopped",
            ComponentState::Paused => "Paused",
            ComponentState::Error => "Error",
        }
    }
}

impl fmt::Display for ComponentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Runs `argv` in the node with [`PROBE_TIMEOUT`]; `None` when it could not run or timed out.
pub async fn probe<R: Runner>(runner: &R, argv: &[&str]) -> Option<Output> {
    match tokio::time::timeout(PROBE_TIMEOUT, runner.run(argv)).await {
        Ok(Ok(out)) => Some(out),
        Ok(Err(e)) => {
            tracing::debug!("{} on {}: {e}", argv.join(" "), runner.node());
            None
        }
        Err(_) => {
            tracing::debug!("{} on {}: timed out", argv.join(" "), runner.node());
            None
        }
    }
}

/// Maps `systemctl is-active` output to a component state: `active`/`reloading` are Running,
/// `failed` is Error, anything else (inactive, activating, deactivating, unknown) is Stopped.
pub fn parse_is_active(stdout: &str) -> ComponentState {
    match stdout.trim() {
        "active" | "reloading" => ComponentState::Running,
        "failed" => ComponentState::Error,
        _ => ComponentState::Stopped,
    }
}

/// kubelet's state in the node (`systemctl is-active kubelet`).
pub async fn kubelet<R: Runner>(runner: &R) -> ComponentState {
    match probe(runner, &["systemctl", "is-active", "kubelet"]).await {
        Some(out) => parse_is_active(&out.stdout_str()),
        None => ComponentState::Error,
    }
}

/// Container ids, one per line as `crictl ps -q` prints them: trimmed, empty lines and
/// anything that is not a plain alphanumeric id dropped (they end up in runc's argv),
/// duplicates removed, order kept.
pub fn parse_ids(stdout: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for line in stdout.lines().map(str::trim) {
        if !line.is_empty()
            && line.chars().all(|c| c.is_ascii_alphanumeric())
            && !ids.iter().any(|i| i == line)
        {
            ids.push(line.to_string());
        }
    }
    ids
}

/// The `status` field of `runc state ID` output (`running`, `paused`, `stopped`, `created`).
pub fn runc_status(state_json: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(state_json).ok()?;
    value.get("status")?.as_str().map(str::to_string)
}

/// The id of the running kube-apiserver container, if crictl lists one.
pub async fn apiserver_container<R: Runner>(runner: &R) -> Option<String> {
    let out = probe(runner, &["crictl", "ps", "--name", "kube-apiserver", "-q"]).await?;
    if !out.success() {
        return None;
    }
    parse_ids(&out.stdout_str()).into_iter().next()
}

/// Whether runc reports the container as paused.
pub async fn container_paused<R: Runner>(runner: &R, id: &str) -> bool {
    match probe(runner, &["runc", "--root", RUNC_ROOT, "state", id]).await {
        Some(out) if out.success() => runc_status(&out.stdout_str()).as_deref() == Some("paused"),
        _ => false,
    }
}

/// Whether the node's API server container is frozen (by `minik pause`).
pub async fn apiserver_paused<R: Runner>(runner: &R) -> bool {
    match apiserver_container(runner).await {
        Some(id) => container_paused(runner, &id).await,
        None => false,
    }
}

/// Asks the API server's `/readyz` from inside the control plane with its own kubectl.
pub async fn readyz<R: Runner>(runner: &R) -> Option<Output> {
    probe(
        runner,
        &[
            "kubectl",
            "--kubeconfig",
            ADMIN_CONF,
            "get",
            "--raw",
            "/readyz",
            "--request-timeout=5s",
        ],
    )
    .await
}

/// The API server's state from what the probes saw.
///
/// `container` is `Some(paused)` when crictl lists a kube-apiserver container, `None` when it
/// does not; `readyz` is the `/readyz` call's output (`None` when it could not run). A frozen
/// container is Paused; `ok` from `/readyz` is Running; a refused connection, or no container
/// at all, is Stopped; a container that is up but not ready is Error.
pub fn classify_apiserver(container: Option<bool>, readyz: Option<&Output>) -> ComponentState {
    if container == Some(true) {
        return ComponentState::Paused;
    }
    match readyz {
        Some(out) if out.success() && out.stdout_str().trim() == "ok" => ComponentState::Running,
        Some(out) if refused(out) => ComponentState::Stopped,
        _ if container.is_some() => ComponentState::Error,
        _ => ComponentState::Stopped,
    }
}

fn refused(out: &Output) -> bool {
    let text = format!("{}{}", out.stderr_str(), out.stdout_str()).to_ascii_lowercase();
    text.contains("connection refused") || text.contains("no such host")
}

/// The API server's state on a control-plane node (see [`classify_apiserver`]).
pub async fn apiserver<R: Runner>(runner: &R) -> ComponentState {
    let container = match apiserver_container(runner).await {
        Some(id) => Some(container_paused(runner, &id).await),
        None => None,
    };
    if container == Some(true) {
        return ComponentState::Paused;
    }
    let ready = readyz(runner).await;
    classify_apiserver(container, ready.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(code: i64, stdout: &str, stderr: &str) -> Output {
        Output {
            exit_code: code,
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    #[test]
    fn systemctl_states() {
        assert_eq!(parse_is_active("active\n"), ComponentState::Running);
        assert_eq!(parse_is_active("inactive\n"), ComponentState::Stopped);
        assert_eq!(parse_is_active("activating"), ComponentState::Stopped);
        assert_eq!(parse_is_active("failed\n"), ComponentState::Error);
        assert_eq!(parse_is_active(""), ComponentState::Stopped);
    }

    #[test]
    fn ids_are_cleaned() {
        assert_eq!(
            parse_ids("abc123\n\n  def456 \nabc123\nbad id\n../x\n"),
            vec!["abc123".to_string(), "def456".to_string()]
        );
        assert!(parse_ids("").is_empty());
    }

    #[test]
    fn runc_state_status() {
        let json = r#"{"ociVersion":"1.2.0","id":"abc","pid":42,"status":"paused","bundle":"/x"}"#;
        assert_eq!(runc_status(json).as_deref(), Some("paused"));
        assert_eq!(runc_status("not json"), None);
        assert_eq!(runc_status("{}"), None);
    }

    #[test]
    fn apiserver_classification() {
        use ComponentState::*;
        let ok = out(0, "ok", "");
        let refused = out(
            1,
            "",
            "The connection to the server 10.0.0.2:6443 was refused - did you specify the right host or port?\nconnection refused",
        );
        let not_ready = out(1, "", "Error from server (InternalError): [-]etcd failed");
        assert_eq!(classify_apiserver(Some(true), Some(&ok)), Paused);
        assert_eq!(classify_apiserver(Some(false), Some(&ok)), Running);
        assert_eq!(classify_apiserver(None, Some(&ok)), Running);
        assert_eq!(classify_apiserver(Some(false), Some(&refused)), Stopped);
        assert_eq!(classify_apiserver(Some(false), Some(&not_ready)), Error);
        assert_eq!(classify_apiserver(Some(false), None), Error);
        assert_eq!(classify_apiserver(None, Some(&not_ready)), Stopped);
        assert_eq!(classify_apiserver(None, None), Stopped);
        // Exit 0 without `ok` (e.g. a proxy page) is not ready.
        assert_eq!(
            classify_apiserver(Some(false), Some(&out(0, "", ""))),
            Error
        );
    }
}
