//! The one harness of the integration tests (tests/it): how `minik` is run (a private
//! MINIK_HOME and KUBECONFIG per test, a pinned terminal environment), its finished output
//! ([`Out`]) with assertions on exit codes and reasons, the hidden fake engine ([`Env`]), the
//! snapshot settings ([`snapshot`]) and, for the real-engine suites, the per-driver hook
//! ([`backend`]).
#![allow(dead_code)] // Each module of the binary uses its own subset.

use assert_cmd::Command;
use minik_driver_api::fake::{FakeEngine, Recorded, Response};
use std::path::{Path, PathBuf};
use std::process::Stdio;

#[cfg(feature = "e2e")]
pub mod backend;
pub mod snapshot;

/// `minik` with `home` as MINIK_HOME (and `home/kubeconfig` as KUBECONFIG), in CI mode (plain
/// progress lines), with the environment that shapes output pinned: clap wraps `--help` at
/// `COLUMNS` (the pipes the tests read are no terminal), so it is 100 here whatever the
/// machine's terminal says; no colours, a dumb terminal. Stdin is empty unless a test gives it.
/// Real engines stay reachable (DOCKER_HOST, CONTAINER_HOST and the qemu settings pass
/// through): the e2e suites use this as it is; [`Env::cmd`] shuts them out.
pub fn minik_command(home: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_minik"));
    cmd.env("MINIK_HOME", home)
        .env("KUBECONFIG", home.join("kubeconfig"))
        .env("CI", "true")
        .env("COLUMNS", "100")
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .env_remove("LINES")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("MINIK_PROFILE")
        .env_remove("MINIK_DRIVER")
        .env_remove("MINIK_LOG")
        .env_remove("MINIK_FAKE_FAIL")
        .env_remove("MINIK_FAKE_UNREACHABLE")
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to the end and captures its output.
pub fn run(cmd: &mut std::process::Command) -> Out {
    Out::from(cmd.output().unwrap())
}

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

    /// [`minik_command`] for the fake engine: hermetic, whatever the outer environment holds.
    /// No `MINIK_*` setting of the machine reaches minik (MINIK_KUBERNETES_FROM, MINIK_LOG,
    /// the qemu ones, ...), real engines (and a concurrent e2e run's resources on them) are
    /// unreachable, so commands that look on every engine only find the fake one, and the
    /// machine's kubectl is never used unless a test says so.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = minik_command(self.home());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("MINIK_") && key != "MINIK_HOME" {
                cmd.env_remove(key);
            }
        }
        cmd.env("MINIK_KUBECTL", "")
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .env("CONTAINER_HOST", "unix:///nonexistent/podman.sock");
        cmd
    }

    /// `minik` with this test's environment ([`Env::std_cmd`]), as an assert_cmd command.
    pub fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
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

    /// The profile's saved profile.json.
    pub fn profile(&self, name: &str) -> serde_json::Value {
        let file = self.profile_dir(name).join("profile.json");
        serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
    }

    /// The host port the fake engine publishes for a control plane's API server.
    pub fn api_port(&self, node: &str) -> u16 {
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.engine().path()).unwrap()).unwrap();
        state["nodes"][node]["ports"]["6443"].as_u64().unwrap() as u16
    }

    /// Scripts the fake nodes' answer to commands starting with `prefix` (no stderr).
    pub fn respond(&self, node: &str, prefix: &[&str], exit_code: i64, stdout: &str) {
        self.respond_with(node, prefix, exit_code, stdout, "");
    }

    /// Scripts the fake nodes' answer to commands starting with `prefix`, stderr included.
    pub fn respond_with(
        &self,
        node: &str,
        prefix: &[&str],
        exit_code: i64,
        stdout: &str,
        stderr: &str,
    ) {
        self.engine().respond(Response {
            node: node.into(),
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
            exit_code,
            stdout: stdout.into(),
            stderr: stderr.into(),
        });
    }

    /// Every command the fake nodes ran, in order.
    pub fn log(&self) -> Vec<Recorded> {
        self.engine().log()
    }
}

/// A finished `minik` run (or of any command a test runs).
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

    /// The command succeeded; the run, for chaining.
    #[track_caller]
    pub fn ok(self) -> Out {
        assert_eq!(
            self.code, 0,
            "command failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The command exited with `code`; the run, for chaining.
    #[track_caller]
    pub fn code(self, code: i32) -> Out {
        self.expect(code);
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

    /// The `"type": "result"` event of a `-o json` run.
    #[track_caller]
    pub fn result(&self) -> serde_json::Value {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["type"] == "result")
            .unwrap_or_else(|| panic!("no result event: {self:?}"))
    }
}
