//! `minik kubectl -- ARGS`: kubectl against the profile's cluster.
//!
//! The host's kubectl is used when there is one (`$MINIK_KUBECTL`, else `kubectl` on PATH),
//! its client minor is within one of the cluster's (kubectl's skew policy), and the
//! kubeconfig holds the profile's context with the live endpoint: it runs as
//! `kubectl --context PROFILE ARGS` with the environment's `KUBECONFIG`. Otherwise the control
//! plane's own kubectl runs with kubeadm's admin.conf, through the Runner, with stdin, stdout
//! and the exit code passed through as `minik ssh` does.

use super::{Context, live_nodes, state_of};
use crate::cli::KubectlArgs;
use crate::cluster::health::{self, ADMIN_CONF};
use crate::errors::{GUEST_NOT_RUNNING, GUEST_UNSUPPORTED, INTERNAL, fail, fail_with};
use crate::k8s::kubeconfig::KubeconfigStatus;
use crate::k8s::version::KubernetesVersion;
use minik_driver_api::{Driver, ExecRequest, Runner, StdinSource};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Environment variable naming the host kubectl to use (empty: never use the host's).
pub const KUBECTL_ENV: &str = "MINIK_KUBECTL";

/// How long `kubectl version --client` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(ctx: &Context, args: KubectlArgs) -> anyhow::Result<u8> {
    let profile = ctx.load_profile().await?;
    let Some(spec) = &profile.kubernetes else {
        return Err(fail_with(
            &GUEST_UNSUPPORTED,
            format!(
                "profile \"{}\" runs without Kubernetes (--no-kubernetes)",
                profile.name
            ),
            format!(
                "Run commands in the node with `minik ssh -p {} -- CMD`, or create a profile with Kubernetes.",
                profile.name
            ),
        ));
    };
    let node = profile.control_plane();
    let (driver, live) = live_nodes(ctx, &profile).await?;
    crate::cluster::require_running(&profile, &node.name, state_of(&live, &node.name))?;
    let runner = driver.runner(&node.name);
    if health::apiserver_paused(&runner).await {
        return Err(fail_with(
            &GUEST_NOT_RUNNING,
            format!("the API server of profile \"{}\" is paused", profile.name),
            format!("Resume it with `minik unpause -p {}`.", profile.name),
        ));
    }
    let api_port = live
        .iter()
        .find(|l| l.name == node.name)
        .and_then(|l| l.api_port);

    if let Some(kubectl) = host_kubectl() {
        let client = client_version(&kubectl).await;
        let cluster = spec.version.parse::<KubernetesVersion>().ok();
        match (client, cluster) {
            (Some(client), Some(cluster)) if compatible(client, (cluster.major, cluster.minor)) => {
                if crate::k8s::kubeconfig::status_of_profile(&profile.name, api_port).await
                    == KubeconfigStatus::Configured
                {
                    ctx.reporter.detail(&format!(
                        "using {} (v{}.{})",
                        kubectl.display(),
                        client.0,
                        client.1
                    ));
                    return run_host(&kubectl, &profile.name, &args.args).await;
                }
                ctx.reporter.warn(&format!(
                    "the kubeconfig context \"{0}\" is missing or stale (fix it with `minik update-context -p {0}`); using the node's kubectl",
                    profile.name
                ));
            }
            (client, _) => ctx.reporter.detail(&format!(
                "host kubectl {} is {}; using the node's kubectl for {}",
                kubectl.display(),
                client.map_or("of unknown version".into(), |(a, b)| format!("v{a}.{b}")),
                spec.version
            )),
        }
    }
    run_in_node(&runner, &args.args).await
}

/// The host kubectl: `$MINIK_KUBECTL` when set (empty or not executable: none), else the first
/// executable `kubectl` on PATH.
pub fn host_kubectl() -> Option<PathBuf> {
    if let Some(value) = std::env::var_os(KUBECTL_ENV) {
        let path = PathBuf::from(value);
        return is_executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join("kubectl"))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `(major, minor)` of a kubectl client, from `kubectl version --client -o json`.
async fn client_version(kubectl: &Path) -> Option<(u32, u32)> {
    let child = tokio::process::Command::new(kubectl)
        .args(["version", "--client", "-o", "json"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(VERSION_TIMEOUT, child)
        .await
        .ok()?
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_client_version(&String::from_utf8_lossy(&out.stdout))
}

/// Parses `kubectl version --client -o json`: `clientVersion.major`/`minor` (minor may carry a
/// `+` as vendor builds print it), else `clientVersion.gitVersion`.
pub fn parse_client_version(json: &str) -> Option<(u32, u32)> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    let client = value.get("clientVersion")?;
    let number = |key: &str| -> Option<u32> {
        let s = client.get(key)?.as_str()?;
        s.trim_end_matches('+').parse().ok()
    };
    if let (Some(major), Some(minor)) = (number("major"), number("minor")) {
        return Some((major, minor));
    }
    let git = client.get("gitVersion")?.as_str()?;
    let mut parts = git.trim_start_matches('v').split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// kubectl's version skew policy: same major, minor within one of the cluster's.
pub fn compatible(client: (u32, u32), cluster: (u32, u32)) -> bool {
    client.0 == cluster.0 && client.1.abs_diff(cluster.1) <= 1
}

/// Runs the host kubectl with the terminal and environment as they are; its exit code is ours.
async fn run_host(kubectl: &Path, profile: &str, args: &[String]) -> anyhow::Result<u8> {
    let status = tokio::process::Command::new(kubectl)
        .arg("--context")
        .arg(profile)
        .args(args)
        .status()
        .await
        .map_err(|e| fail(&INTERNAL, format!("cannot run {}: {e}", kubectl.display())))?;
    Ok(exit_code(status))
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code.clamp(0, 255) as u8,
        (None, Some(signal)) => (128 + signal).clamp(0, 255) as u8,
        (None, None) => 1,
    }
}

/// Runs the control plane's kubectl with admin.conf; stdin is passed when it is not a terminal
/// (`... -- apply -f - < x.yaml`).
async fn run_in_node<R: Runner>(runner: &R, args: &[String]) -> anyhow::Result<u8> {
    let argv: Vec<String> = ["kubectl", "--kubeconfig", ADMIN_CONF]
        .into_iter()
        .map(String::from)
        .chain(args.iter().cloned())
        .collect();
    let mut request = ExecRequest::new(argv);
    if !std::io::stdin().is_terminal() {
        request.stdin = StdinSource::Stream(Box::new(tokio::io::stdin()));
    }
    let mut stdout = crate::ui::out::Stdout::new();
    let mut stderr = tokio::io::stderr();
    let code = runner
        .exec_streaming(request, &mut stdout, &mut stderr)
        .await?;
    tokio::io::AsyncWriteExt::flush(&mut stdout).await.ok();
    Ok(code.clamp(0, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_versions() {
        let real = r#"{"clientVersion":{"major":"1","minor":"32+","gitVersion":"v1.32.4-dispatcher"},"kustomizeVersion":"v5.5.0"}"#;
        assert_eq!(parse_client_version(real), Some((1, 32)));
        let git_only = r#"{"clientVersion":{"gitVersion":"v1.35.2"}}"#;
        assert_eq!(parse_client_version(git_only), Some((1, 35)));
        assert_eq!(parse_client_version("{}"), None);
        assert_eq!(parse_client_version("Client Version: v1.35.0"), None);
    }

    #[test]
    fn skew_policy() {
        assert!(compatible((1, 35), (1, 35)));
        assert!(compatible((1, 34), (1, 35)));
        assert!(compatible((1, 36), (1, 35)));
        assert!(!compatible((1, 33), (1, 35)));
        assert!(!compatible((1, 37), (1, 35)));
        assert!(!compatible((2, 35), (1, 35)));
    }
}
