//! The harness shared by the CLI test binaries: a private MINIK_HOME and KUBECONFIG per test,
//! the hidden fake engine, and assertions on exit codes and reasons.
#![allow(dead_code)] // Each test binary uses its own subset.

use assert_cmd::Command;
use minik_driver_api::fake::{FakeEngine, Recorded, Response};
use std::path::{Path, PathBuf};

/// One test's world: MINIK_HOME, KUBECONFIG and the fake engine's state live in a temp dir.
pub struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.home().join("kubeconfig")
    }

    /// `minik` with this test's environment.
    pub fn cmd(&self) -> Command {
        let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("minik");
        cmd.env("MINIK_HOME", self.home())
            .env("KUBECONFIG", self.kubeconfig())
            // Never the machine's kubectl unless a test says so.
            .env("MINIK_KUBECTL", "")
            // Hermetic: real engines (and a concurrent e2e run's resources on them) are
            // unreachable, so commands that look on every engine only find the fake one.
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .env("CONTAINER_HOST", "unix:///nonexistent/podman.sock")
            .env_remove("MINIK_PROFILE")
            .env_remove("MINIK_DRIVER")
            .env_remove("MINIK_FAKE_FAIL")
            .env_remove("MINIK_FAKE_UNREACHABLE")
            .env_remove("MINIK_KUBERNETES_FROM")
            .env("CI", "true");
        cmd
    }

    pub fn minik(&self, args: &[&str]) -> Out {
        Out::from(self.cmd().args(args).output().unwrap())
    }

    pub fn engine(&self) -> FakeEngine {
        FakeEngine::new(self.home().join("fake-engine.json"))
    }

    pub fn profile_dir(&self, name: &str) -> PathBuf {
        self.home().join("profiles").join(name)
    }

    /// The host port the fake engine publishes for a control plane's API server.
    pub fn api_port(&self, node: &str) -> u16 {
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.engine().path()).unwrap()).unwrap();
        state["nodes"][node]["ports"]["6443"].as_u64().unwrap() as u16
    }

    /// Scripts the fake nodes' answer to commands starting with `prefix`.
    pub fn respond(&self, node: &str, prefix: &[&str], exit_code: i64, stdout: &str) {
        self.engine().respond(Response {
            node: node.into(),
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
            exit_code,
            stdout: stdout.into(),
            stderr: String::new(),
        });
    }

    /// Every command the fake nodes ran, in order.
    pub fn log(&self) -> Vec<Recorded> {
        self.engine().log()
    }
}

/// A finished `minik` run.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Out {
    fn from(o: std::process::Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Out {
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Out {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The error names `id` and carries an advice line.
    #[track_caller]
    pub fn reason(&self, id: &str) -> &Out {
        assert!(
            self.stderr.contains(&format!("Exiting due to {id}")),
            "expected reason {id}\nstderr:\n{}",
            self.stderr
        );
        assert!(
            self.stderr.contains("Advice:"),
            "no advice line:\n{}",
            self.stderr
        );
        self
    }
}
