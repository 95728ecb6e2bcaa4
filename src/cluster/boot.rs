//! Waiting for a node's init system and container runtime, over the `Runner`.

use super::error::{ClusterError, ClusterKind};
use minik_driver_api::{DriverError, Runner};
use std::future::Future;
use std::time::{Duration, Instant};

/// What a node looked like once it was up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootReport {
    /// `running` or `degraded` (systemctl is-system-running).
    pub system_state: String,
    /// Units that failed, when degraded.
    pub failed_units: Vec<String>,
    pub elapsed: Duration,
}

impl BootReport {
    /// A one-line warning when systemd is degraded.
    pub fn warning(&self) -> Option<String> {
        (self.system_state != "running").then(|| {
            format!(
                "systemd is {} (failed units: {})",
                self.system_state,
                self.failed_units.join(", ")
            )
        })
    }
}

const POLL: Duration = Duration::from_millis(200);

/// How often [`wait_for_boot_restarting`] starts a node again that stopped under it.
const MAX_RESTARTS: u32 = 3;

/// Polls until systemd reports `running` or `degraded` and containerd is active.
///
/// Exec failures while the container is still starting are retried; on timeout the error
/// names the last state seen.
pub async fn wait_for_boot<R: Runner>(runner: &R, timeout: Duration) -> anyhow::Result<BootReport> {
    wait_for_boot_restarting(runner, timeout, || async { Ok(()) }, false).await
}

/// [`wait_for_boot`] for a node that was running or just started: when the node is seen
/// stopped (not paused), `restart` starts it again, at most [`MAX_RESTARTS`] times. A `stop`
/// interrupted after it asked the engine to stop a node leaves that stop running in the
/// engine: the node can go down seconds after the next `start` found it running.
pub async fn wait_for_boot_restarting<R, F, Fut>(
    runner: &R,
    timeout: Duration,
    mut restart: F,
    restart_stopped: bool,
) -> anyhow::Result<BootReport>
where
    R: Runner,
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let start = Instant::now();
    let mut last: String;
    let mut restarts = 0;
    loop {
        match runner.run(&["systemctl", "is-system-running"]).await {
            Err(DriverError::NodeNotRunning { state, .. })
                if restart_stopped && state != "Paused" && restarts < MAX_RESTARTS =>
            {
                restarts += 1;
                restart().await?;
                last = format!("started again after it was seen {state}");
            }
            Ok(out) => {
                let state = out.stdout_str().trim().to_string();
                if state == "running" || state == "degraded" {
                    match runner.run(&["systemctl", "is-active", "containerd"]).await {
                        Ok(c) if c.stdout_str().trim() == "active" => {
                            let mut failed_units = Vec::new();
                            if state == "degraded"
                                && let Ok(f) = runner
                                    .run(&[
                                        "systemctl",
                                        "list-units",
                                        "--failed",
                                        "--no-legend",
                                        "--plain",
                                    ])
                                    .await
                            {
                                failed_units = f
                                    .stdout_str()
                                    .lines()
                                    .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                                    .collect();
                            }
                            return Ok(BootReport {
                                system_state: state,
                                failed_units,
                                elapsed: start.elapsed(),
                            });
                        }
                        Ok(c) => {
                            last = format!("systemd {state}, containerd {}", c.stdout_str().trim())
                        }
                        Err(e) => last = e.to_string(),
                    }
                } else {
                    last = format!(
                        "systemd {}",
                        if state.is_empty() {
                            "not answering"
                        } else {
                            &state
                        }
                    );
                }
            }
            Err(e) => last = e.to_string(),
        }
        if start.elapsed() >= timeout {
            let node = runner.node();
            return Err(ClusterError::new(
                ClusterKind::Timeout,
                format!(
                    "node {node} did not boot within {}s (last seen: {last})",
                    timeout.as_secs()
                ),
            )
            .with_advice(format!(
                "Run `{}` to see its journal; `--keep-on-failure` keeps it for inspection.",
                super::logs_command(node)
            ))
            .into());
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minik_driver_api::fake::{FakeEngine, FakeRunner, Response};

    #[tokio::test]
    async fn degraded_node_reports_failed_units() {
        let dir = tempfile::tempdir().unwrap();
        let engine = FakeEngine::new(dir.path().join("e.json"));
        let runner = FakeRunner::new(engine.clone(), "n1");
        engine.respond(Response {
            node: "*".into(),
            prefix: vec!["systemctl".into(), "is-system-running".into()],
            exit_code: 1,
            stdout: "degraded\n".into(),
            stderr: String::new(),
        });
        engine.respond(Response {
            node: "*".into(),
            prefix: vec!["systemctl".into(), "list-units".into()],
            exit_code: 0,
            stdout: "foo.service loaded failed failed Foo\n".into(),
            stderr: String::new(),
        });
        let report = wait_for_boot(&runner, Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(report.failed_units, vec!["foo.service".to_string()]);
        assert!(report.warning().unwrap().contains("foo.service"));
    }

    /// A node that stops under the wait (an interrupted `minik stop` finishing in the engine)
    /// is started again when the caller allows it, and reported stopped when it does not.
    #[tokio::test]
    async fn a_node_stopped_under_the_wait_is_started_again_when_allowed() {
        use minik_driver_api::fake::FakeDriver;
        use minik_driver_api::{ClusterRequest, Driver, NodeSpec, NullObserver, Role};
        let dir = tempfile::tempdir().unwrap();
        let engine = FakeEngine::new(dir.path().join("e.json"));
        let driver = FakeDriver::new(engine.clone());
        let request = ClusterRequest {
            profile: "p".into(),
            image: "img".into(),
            cpus: None,
            memory_mib: None,
            env: Default::default(),
        };
        let spec = NodeSpec {
            name: "p".into(),
            role: Role::ControlPlane,
            index: 0,
        };
        driver
            .create_node(&request, &spec, &NullObserver)
            .await
            .unwrap();
        for (cmd, out) in [
            ("is-system-running", "running\n"),
            ("is-active", "active\n"),
        ] {
            engine.respond(Response {
                node: "*".into(),
                prefix: vec!["systemctl".into(), cmd.into()],
                exit_code: 0,
                stdout: out.into(),
                stderr: String::new(),
            });
        }
        driver.stop_node("p", Duration::ZERO).await.unwrap();
        let runner = driver.runner("p");
        let err = wait_for_boot(&runner, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(
            format!("{err}").contains("is Stopped, not running"),
            "{err}"
        );

        let restarts = std::sync::atomic::AtomicU32::new(0);
        let report = wait_for_boot_restarting(
            &runner,
            Duration::from_secs(2),
            || async {
                restarts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                driver.start_node("p").await?;
                Ok(())
            },
            true,
        )
        .await
        .unwrap();
        assert_eq!(report.system_state, "running");
        assert_eq!(restarts.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn times_out_naming_the_last_state() {
        let dir = tempfile::tempdir().unwrap();
        let engine = FakeEngine::new(dir.path().join("e.json"));
        let runner = FakeRunner::new(engine.clone(), "n1");
        engine.respond(Response {
            node: "*".into(),
            prefix: vec!["systemctl".into(), "is-system-running".into()],
            exit_code: 1,
            stdout: "starting\n".into(),
            stderr: String::new(),
        });
        let err = wait_for_boot(&runner, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(format!("{err}").contains("systemd starting"), "{err}");
        assert_eq!(crate::errors::classify(&err).0.id, "GUEST_TIMEOUT");
    }
}
