//! CLI tests of the Kubernetes-aware commands (status, pause/unpause, kubectl, update-context,
//! and delete's kubeconfig cleanup) against the in-file fake engine (hidden `--driver fake`).
//!
//! Kubernetes profiles are made by starting a `--no-kubernetes` fake profile and then adding
//! `"kubernetes": {"version": "v1.35.0"}` to its profile.json: these commands only read the
//! profile's Kubernetes spec and talk to the nodes through the Runner, so they do not depend on
//! how `start` bootstrapped the cluster (and `start` with Kubernetes needs kubeadm in the
//! node). What the nodes answer is scripted with `FakeEngine::respond`; what minik asked them
//! is read back from `FakeEngine::log`. Kubeconfig files are checked with the real kubectl.

use crate::common::{Env, Out};
use minik_driver_api::fake::{Recorded, Response};
use std::path::{Path, PathBuf};

const RUNC_ROOT: &str = "/run/containerd/runc/k8s.io";
const MARKER: &str = "/var/lib/minik/paused";
const READYZ: &[&str] = &[
    "kubectl",
    "--kubeconfig",
    "/etc/kubernetes/admin.conf",
    "get",
    "--raw",
    "/readyz",
];

impl Env {
    /// A running fake profile with Kubernetes v1.35.0 in its spec (see the module comment).
    fn kubernetes_profile(&self, name: &str, nodes: u32) {
        let n = nodes.to_string();
        self.minik(&[
            "-p",
            name,
            "start",
            "--driver",
            "fake",
            "--no-kubernetes",
            "--nodes",
            &n,
        ])
        .expect(0);
        let file = self.profile_dir(name).join("profile.json");
        let mut profile: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        profile["kubernetes"] = serde_json::json!({"version": "v1.35.0"});
        std::fs::write(&file, serde_json::to_vec_pretty(&profile).unwrap()).unwrap();
    }

    /// Scripts a healthy control plane: `/readyz` answers `ok`.
    fn healthy(&self) {
        self.respond("*", READYZ, 0, "ok");
    }
}

/// A kubeconfig with a foreign context `other` (current) and the profile's entries pointing
/// at `server`.
fn kubeconfig_yaml(profile: &str, server: &str, current: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
current-context: {current}
preferences: {{}}
clusters:
- name: other
  cluster:
    server: https://10.1.2.3:6443
    insecure-skip-tls-verify: true
- name: {profile}
  cluster:
    server: {server}
    insecure-skip-tls-verify: true
users:
- name: other
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: get-token
      interactiveMode: Never
- name: {profile}
  user:
    token: secret
contexts:
- name: other
  context:
    cluster: other
    user: other
    namespace: team
- name: {profile}
  context:
    cluster: {profile}
    user: {profile}
"
    )
}

/// `kubectl config view -o json` of one file (the real kubectl).
fn kubectl_view(path: &Path) -> serde_json::Value {
    let out = std::process::Command::new("kubectl")
        .args(["config", "view", "-o", "json", "--kubeconfig"])
        .arg(path)
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl is installed");
    assert!(
        out.status.success(),
        "kubectl config view: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The sorted names of a list (kubectl sorts them anyway).
fn names(view: &serde_json::Value, list: &str) -> Vec<String> {
    let mut names: Vec<String> = view[list]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn server_of(view: &serde_json::Value, cluster: &str) -> Option<String> {
    view["clusters"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == cluster)?["cluster"]["server"]
        .as_str()
        .map(str::to_string)
}

/// Commands sent to `node`, joined with spaces.
fn commands_on(log: &[Recorded], node: &str) -> Vec<String> {
    log.iter()
        .filter(|r| r.node == node)
        .map(|r| r.argv.join(" "))
        .collect()
}

#[test]
fn status_reports_kubelet_apiserver_and_kubeconfig_with_minikube_bitmask() {
    let env = Env::new();
    env.kubernetes_profile("k", 2);
    let port = env.api_port("k");

    // Nothing answers /readyz and there is no kubeconfig: cluster not OK (2) + kubeconfig (4).
    let out = env.minik(&["-p", "k", "status"]);
    out.expect(6);
    assert!(out.stdout.contains("apiserver: Stopped"), "{}", out.stdout);
    assert!(
        out.stdout.contains("kubeconfig: Misconfigured"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("To fix the kubectl context, run `minik update-context -p k`"),
        "{}",
        out.stdout
    );

    env.healthy();
    std::fs::write(
        env.kubeconfig(),
        kubeconfig_yaml("k", &format!("https://127.0.0.1:{port}"), "k"),
    )
    .unwrap();
    let before = env.log().len();
    let out = env.minik(&["-p", "k", "status"]);
    out.expect(0);
    assert_eq!(
        out.stdout,
        format!(
            "k\ntype: Control Plane\nhost: Running\nkubelet: Running\napiserver: Running\n\
             kubeconfig: Configured\nip: 192.168.49.2\n\
             ports: 127.0.0.1:{}->80, 127.0.0.1:{}->443, 127.0.0.1:{port}->6443\n\n\
             k-m02\ntype: Worker\nhost: Running\nkubelet: Running\nip: 192.168.49.3\n",
            port + 1,
            port + 2
        )
    );
    // kubelet is asked on every node; the API server only on the control plane.
    let log = env.log()[before..].to_vec();
    assert!(commands_on(&log, "k").contains(&"systemctl is-active kubelet".to_string()));
    assert!(commands_on(&log, "k-m02").contains(&"systemctl is-active kubelet".to_string()));
    assert!(
        commands_on(&log, "k")
            .iter()
            .any(|c| c.starts_with("crictl ps --name kube-apiserver -q"))
    );
    assert!(
        commands_on(&log, "k")
            .iter()
            .any(|c| c.starts_with(&READYZ.join(" ")))
    );
    assert!(
        !commands_on(&log, "k-m02")
            .iter()
            .any(|c| c.starts_with("crictl") || c.starts_with("kubectl"))
    );

    let json: serde_json::Value =
        serde_json::from_str(&env.minik(&["-p", "k", "status", "-o", "json"]).stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert_eq!(json[0]["Name"], "k");
    assert_eq!(json[0]["Host"], "Running");
    assert_eq!(json[0]["Kubelet"], "Running");
    assert_eq!(json[0]["APIServer"], "Running");
    assert_eq!(json[0]["Kubeconfig"], "Configured");
    assert_eq!(json[0]["Worker"], false);
    assert_eq!(json[1]["APIServer"], "Irrelevant");
    assert_eq!(json[1]["Kubeconfig"], "Irrelevant");
    assert_eq!(json[1]["Worker"], true);
    // -n: one node, still an array.
    let one: serde_json::Value = serde_json::from_str(
        &env.minik(&["-p", "k", "status", "-n", "m02", "-o", "json"])
            .expect(0)
            .stdout,
    )
    .unwrap();
    assert_eq!(one.as_array().unwrap().len(), 1);

    // A drifted endpoint: only the kubeconfig bit.
    std::fs::write(
        env.kubeconfig(),
        kubeconfig_yaml("k", "https://127.0.0.1:1", "k"),
    )
    .unwrap();
    let out = env.minik(&["-p", "k", "status"]);
    out.expect(4);
    assert!(out.stdout.contains("WARNING"), "{}", out.stdout);
    std::fs::write(
        env.kubeconfig(),
        kubeconfig_yaml("k", &format!("https://127.0.0.1:{port}"), "k"),
    )
    .unwrap();

    // kubelet down on the worker: cluster not OK.
    env.respond(
        "k-m02",
        &["systemctl", "is-active", "kubelet"],
        3,
        "inactive\n",
    );
    let out = env.minik(&["-p", "k", "status"]);
    out.expect(2);
    assert!(
        out.stdout
            .contains("k-m02\ntype: Worker\nhost: Running\nkubelet: Stopped"),
        "{}",
        out.stdout
    );
    // The API server container is up but /readyz fails: Error.
    env.respond(
        "k",
        &["crictl", "ps", "--name", "kube-apiserver"],
        0,
        "abc123\n",
    );
    env.respond("k", READYZ, 1, "");
    let json: serde_json::Value =
        serde_json::from_str(&env.minik(&["-p", "k", "status", "-o", "json"]).stdout).unwrap();
    assert_eq!(json[0]["APIServer"], "Error");

    // Stopped: every bit, and no command is sent to stopped nodes.
    env.minik(&["-p", "k", "stop"]).expect(0);
    let before = env.log().len();
    let out = env.minik(&["-p", "k", "status"]);
    out.expect(7);
    assert!(
        out.stdout.contains(
            "k\ntype: Control Plane\nhost: Stopped\nkubelet: Stopped\napiserver: Stopped\nkubeconfig: Stopped"
        ),
        "{}",
        out.stdout
    );
    assert_eq!(
        env.log().len(),
        before,
        "commands were sent to stopped nodes"
    );
}

#[test]
fn sandbox_profiles_keep_the_host_only_status() {
    let env = Env::new();
    env.minik(&["-p", "s", "start", "--driver", "fake", "--no-kubernetes"])
        .expect(0);
    let before = env.log().len();
    let out = env.minik(&["-p", "s", "status"]);
    out.expect(0);
    assert!(
        out.stdout.contains("kubernetes: disabled"),
        "{}",
        out.stdout
    );
    assert_eq!(env.log().len(), before, "status ran node commands");
    env.minik(&["-p", "s", "pause"]).expect(0);
    env.minik(&["-p", "s", "status"]).expect(1);
    let json: serde_json::Value =
        serde_json::from_str(&env.minik(&["-p", "s", "status", "-o", "json"]).stdout).unwrap();
    assert_eq!(json[0]["Host"], "Paused");
    assert_eq!(json[0]["Kubelet"], "Irrelevant");
    // Namespaces mean nothing without Kubernetes.
    env.minik(&["-p", "s", "unpause", "-A"])
        .expect(14)
        .reason("MK_USAGE");
    env.minik(&["-p", "s", "unpause"]).expect(0);
    env.minik(&["-p", "s", "pause", "-n", "default"])
        .expect(14)
        .reason("MK_USAGE");
    env.minik(&["-p", "s", "pause", "-A"])
        .expect(14)
        .reason("MK_USAGE");
    env.minik(&["-p", "s", "status"]).expect(0);
    // Kubernetes-only commands.
    env.minik(&["-p", "s", "kubectl", "--", "get", "pods"])
        .expect(88)
        .reason("GUEST_UNSUPPORTED");
    env.minik(&["-p", "s", "update-context"])
        .expect(88)
        .reason("GUEST_UNSUPPORTED");
}

#[test]
fn pause_stops_kubelet_then_freezes_and_unpause_resumes_the_same_containers() {
    let env = Env::new();
    env.kubernetes_profile("k", 2);
    env.healthy();
    let ns = "io.kubernetes.pod.namespace=kube-system";
    env.respond(
        "k",
        &["crictl", "ps", "-q", "--label", ns],
        0,
        "aaa111\nbbb222\n",
    );
    env.respond(
        "k-m02",
        &["crictl", "ps", "-q", "--label", ns],
        0,
        "ccc333\n",
    );

    let before = env.log().len();
    env.minik(&["-p", "k", "pause"]).expect(0);
    let log = env.log()[before..].to_vec();
    for (node, ids) in [("k", vec!["aaa111", "bbb222"]), ("k-m02", vec!["ccc333"])] {
        let cmds = commands_on(&log, node);
        // crictl is checked before the kubelet is stopped (a node without it keeps its kubelet).
        assert_eq!(cmds[0], "crictl --version", "{node}: {cmds:?}");
        assert_eq!(cmds[1], "systemctl stop kubelet", "{node}: {cmds:?}");
        let list = cmds
            .iter()
            .position(|c| c == &format!("crictl ps -q --label {ns}"))
            .unwrap();
        let paused: Vec<String> = cmds
            .iter()
            .filter_map(|c| c.strip_prefix(&format!("runc --root {RUNC_ROOT} pause ")))
            .map(str::to_string)
            .collect();
        assert_eq!(paused, ids, "{node}: {cmds:?}");
        let first_pause = cmds.iter().position(|c| c.contains(" pause ")).unwrap();
        assert!(list < first_pause);
        assert_eq!(
            env.engine().file(node, MARKER).unwrap(),
            ids.iter().map(|i| format!("{i}\n")).collect::<String>()
        );
    }

    // What the nodes look like paused: kubelet inactive, the API server container frozen.
    env.respond("*", &["systemctl", "is-active", "kubelet"], 3, "inactive\n");
    env.respond(
        "k",
        &["crictl", "ps", "--name", "kube-apiserver"],
        0,
        "aaa111\n",
    );
    env.respond(
        "k",
        &["runc", "--root", RUNC_ROOT, "state", "aaa111"],
        0,
        r#"{"id":"aaa111","status":"paused"}"#,
    );
    let port = env.api_port("k");
    std::fs::write(
        env.kubeconfig(),
        kubeconfig_yaml("k", &format!("https://127.0.0.1:{port}"), "k"),
    )
    .unwrap();
    let out = env.minik(&["-p", "k", "status"]);
    out.expect(2);
    assert!(
        out.stdout
            .contains("host: Running\nkubelet: Stopped\napiserver: Paused\nkubeconfig: Configured"),
        "{}",
        out.stdout
    );
    env.minik(&["-p", "k", "kubectl", "--", "get", "pods"])
        .expect(86)
        .reason("GUEST_NOT_RUNNING");

    let before = env.log().len();
    env.minik(&["-p", "k", "unpause"]).expect(0);
    let log = env.log()[before..].to_vec();
    for (node, ids) in [("k", vec!["aaa111", "bbb222"]), ("k-m02", vec!["ccc333"])] {
        let cmds = commands_on(&log, node);
        let resumed: Vec<&str> = cmds
            .iter()
            .filter_map(|c| c.strip_prefix(&format!("runc --root {RUNC_ROOT} resume ")))
            .collect();
        assert_eq!(resumed, ids, "{node}: {cmds:?}");
        let n = cmds.len();
        assert_eq!(
            cmds[n - 2..],
            [
                "systemctl start kubelet".to_string(),
                format!("rm -f {MARKER}")
            ],
            "{node}: kubelet starts after the resumes"
        );
    }
}

#[test]
fn pause_namespaces_and_all_namespaces() {
    let env = Env::new();
    env.kubernetes_profile("k", 1);
    let before = env.log().len();
    env.minik(&["-p", "k", "pause", "-n", "default,apps"])
        .expect(0);
    let cmds = commands_on(&env.log()[before..], "k");
    assert!(cmds.contains(&"crictl ps -q --label io.kubernetes.pod.namespace=default".into()));
    assert!(cmds.contains(&"crictl ps -q --label io.kubernetes.pod.namespace=apps".into()));
    assert!(!cmds.iter().any(|c| c.contains("kube-system")), "{cmds:?}");

    env.respond("k", &["crictl", "ps", "-q"], 0, "fff999\n");
    let before = env.log().len();
    let out = env.minik(&["-p", "k", "pause", "-A", "-o", "json"]);
    out.expect(0);
    let cmds = commands_on(&env.log()[before..], "k");
    assert_eq!(
        cmds,
        [
            "crictl --version".to_string(),
            "systemctl stop kubelet".to_string(),
            "crictl ps -q".into(),
            format!("runc --root {RUNC_ROOT} pause fff999"),
            format!("<copy> {MARKER} 644"),
        ]
    );
    let result: serde_json::Value =
        serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["status"], "Paused");
    assert_eq!(result["containers"], 1);

    env.minik(&["-p", "k", "pause", "-n", "Bad_NS"])
        .expect(14)
        .reason("MK_USAGE");
    env.minik(&["-p", "k", "pause", "-n", "a", "-A"]).expect(14);
    env.minik(&["-p", "k", "stop"]).expect(0);
    env.minik(&["-p", "k", "pause"])
        .expect(86)
        .reason("GUEST_NOT_RUNNING");
}

#[test]
fn stop_resumes_paused_containers_before_shutting_nodes_down() {
    let env = Env::new();
    env.kubernetes_profile("k", 1);
    env.respond("k", &["crictl", "ps", "-q"], 0, "aaa111\n");
    env.minik(&["-p", "k", "pause"]).expect(0);
    let before = env.log().len();
    env.minik(&["-p", "k", "stop"]).expect(0);
    let cmds = commands_on(&env.log()[before..], "k");
    assert_eq!(
        cmds,
        [
            format!("runc --root {RUNC_ROOT} resume aaa111"),
            format!("rm -f {MARKER}"),
            // then the kubelet and the pods, before the engine stops the node
            "sh -c systemctl stop kubelet; crictl ps -q | xargs -r -P 16 -n 1 crictl stop -t 5 >/dev/null".to_string(),
        ]
    );
}

/// A fake host kubectl: prints a client version of 1.`minor`, and otherwise records its
/// arguments and KUBECONFIG into `record` and exits 3.
fn fake_kubectl(dir: &Path, minor: u32) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join(format!("kubectl-1.{minor}"));
    let record = dir.join(format!("kubectl-1.{minor}.args"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             if [ \"$1\" = version ]; then\n\
               echo '{{\"clientVersion\":{{\"major\":\"1\",\"minor\":\"{minor}\",\"gitVersion\":\"v1.{minor}.0\"}}}}'\n\
               exit 0\n\
             fi\n\
             printf '%s\\n' \"$@\" > '{record}'\n\
             echo \"KUBECONFIG=$KUBECONFIG\" >> '{record}'\n\
             echo host-kubectl-output\n\
             exit 3\n",
            record = record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, record)
}

#[test]
fn kubectl_uses_a_compatible_host_kubectl_else_the_nodes() {
    let env = Env::new();
    env.kubernetes_profile("k", 2);
    let port = env.api_port("k");
    std::fs::write(
        env.kubeconfig(),
        kubeconfig_yaml("k", &format!("https://127.0.0.1:{port}"), "other"),
    )
    .unwrap();
    let node_kubectl = "kubectl --kubeconfig /etc/kubernetes/admin.conf get pods -A";

    // Host kubectl 1.34 against a 1.35 cluster: within the skew, used with --context.
    let (host, record) = fake_kubectl(env.home(), 34);
    let before = env.log().len();
    let out = Out::from(
        env.cmd()
            .args(["-p", "k", "kubectl", "--", "get", "pods", "-A"])
            .env("MINIK_KUBECTL", &host)
            .output()
            .unwrap(),
    );
    out.expect(3);
    assert_eq!(out.stdout, "host-kubectl-output\n");
    assert_eq!(
        std::fs::read_to_string(&record).unwrap(),
        format!(
            "--context\nk\nget\npods\n-A\nKUBECONFIG={}\n",
            env.kubeconfig().display()
        )
    );
    assert!(
        !commands_on(&env.log()[before..], "k").contains(&node_kubectl.to_string()),
        "the node's kubectl ran too"
    );

    // Host kubectl 1.33: too old, the control plane's kubectl runs instead.
    env.respond(
        "k",
        &[
            "kubectl",
            "--kubeconfig",
            "/etc/kubernetes/admin.conf",
            "get",
        ],
        5,
        "node-kubectl-output\n",
    );
    let (old, old_record) = fake_kubectl(env.home(), 33);
    let before = env.log().len();
    let out = Out::from(
        env.cmd()
            .args(["-p", "k", "kubectl", "--", "get", "pods", "-A"])
            .env("MINIK_KUBECTL", &old)
            .output()
            .unwrap(),
    );
    out.expect(5);
    assert_eq!(out.stdout, "node-kubectl-output\n");
    assert!(!old_record.exists());
    let log = env.log()[before..].to_vec();
    assert_eq!(commands_on(&log, "k").last().unwrap(), node_kubectl);
    assert!(commands_on(&log, "k-m02").is_empty());

    // No host kubectl at all: the node's.
    env.minik(&["-p", "k", "kubectl", "--", "get", "pods", "-A"])
        .expect(5);

    // A compatible host kubectl but a stale context: the node's, with a warning.
    std::fs::write(
        env.kubeconfig(),
        kubeconfig_yaml("k", "https://127.0.0.1:1", "k"),
    )
    .unwrap();
    std::fs::remove_file(&record).unwrap();
    let out = Out::from(
        env.cmd()
            .args(["-p", "k", "kubectl", "--", "get", "pods", "-A"])
            .env("MINIK_KUBECTL", &host)
            .output()
            .unwrap(),
    );
    out.expect(5);
    assert!(out.stderr.contains("update-context"), "{}", out.stderr);
    assert!(!record.exists());

    // stdin reaches the node's kubectl (apply -f -).
    let before = env.log().len();
    let out = Out::from(
        env.cmd()
            .args(["-p", "k", "kubectl", "--", "apply", "-f", "-"])
            .write_stdin("kind: Namespace\n")
            .output()
            .unwrap(),
    );
    out.expect(0);
    let last = env.log()[before..].last().unwrap().clone();
    assert_eq!(
        last.argv.join(" "),
        "kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f -"
    );
    assert_eq!(last.stdin.as_deref(), Some("<16 bytes>"));

    env.minik(&["-p", "k", "stop"]).expect(0);
    env.minik(&["-p", "k", "kubectl", "--", "get", "pods"])
        .expect(86)
        .reason("GUEST_NOT_RUNNING");
    env.minik(&["-p", "nope", "kubectl", "--", "get", "pods"])
        .expect(85);
}

#[test]
fn update_context_rewrites_the_server_and_switches_context() {
    let env = Env::new();
    env.kubernetes_profile("k", 1);
    let port = env.api_port("k");
    let path = env.kubeconfig();
    std::fs::write(&path, kubeconfig_yaml("k", "https://127.0.0.1:1", "other")).unwrap();

    let out = env.minik(&["-p", "k", "update-context"]);
    out.expect(0);
    assert!(out.stderr.contains("has been updated"), "{}", out.stderr);
    let view = kubectl_view(&path);
    assert_eq!(
        server_of(&view, "k").unwrap(),
        format!("https://127.0.0.1:{port}")
    );
    assert_eq!(view["current-context"], "k");
    // Foreign entries are untouched.
    assert_eq!(server_of(&view, "other").unwrap(), "https://10.1.2.3:6443");
    assert_eq!(names(&view, "users"), ["k", "other"]);
    let other = view["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "other")
        .unwrap();
    assert_eq!(other["context"]["namespace"], "team");
    assert_eq!(view["users"][1]["user"]["exec"]["command"], "get-token");
    env.minik(&["-p", "k", "status"]).expect(2);

    let out = env.minik(&["-p", "k", "update-context"]);
    out.expect(0);
    assert!(out.stderr.contains("already pointing"), "{}", out.stderr);

    // Entries gone altogether: say so, and how to get them back.
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n",
    )
    .unwrap();
    let out = env.minik(&["-p", "k", "update-context"]);
    out.expect(31).reason("HOST_KUBECONFIG");
    assert!(
        out.stderr.contains("has no context \"k\""),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("minik start -p k"), "{}", out.stderr);

    env.minik(&["-p", "k", "stop"]).expect(0);
    env.minik(&["-p", "k", "update-context"])
        .expect(86)
        .reason("GUEST_NOT_RUNNING");
}

#[test]
fn delete_removes_the_profile_from_every_kubeconfig_file() {
    let env = Env::new();
    env.kubernetes_profile("k", 1);
    let a = env.home().join("a.yaml");
    let b = env.home().join("b.yaml");
    std::fs::write(&a, kubeconfig_yaml("k", "https://127.0.0.1:1", "other")).unwrap();
    std::fs::write(&b, kubeconfig_yaml("k", "https://127.0.0.1:2", "k")).unwrap();
    let list = std::env::join_paths([&a, &b]).unwrap();

    let out = Out::from(
        env.cmd()
            .args(["-p", "k", "delete"])
            .env("KUBECONFIG", &list)
            .output()
            .unwrap(),
    );
    out.expect(0);
    assert!(
        out.stderr
            .contains(&format!("Removed context \"k\" from {}", b.display())),
        "{}",
        out.stderr
    );
    assert!(env.engine().node_names().is_empty());
    for file in [&a, &b] {
        let view = kubectl_view(file);
        for list in ["clusters", "users", "contexts"] {
            assert_eq!(names(&view, list), ["other"], "{} {list}", file.display());
        }
    }
    // current-context is cleared only where it named the profile.
    assert_eq!(kubectl_view(&a)["current-context"], "other");
    assert_eq!(kubectl_view(&b)["current-context"], "");

    // --no-kubernetes profiles too (harmless when there is nothing).
    env.minik(&["-p", "s", "start", "--driver", "fake", "--no-kubernetes"])
        .expect(0);
    std::fs::write(&a, kubeconfig_yaml("s", "https://127.0.0.1:1", "s")).unwrap();
    let out = Out::from(
        env.cmd()
            .args(["-p", "s", "delete"])
            .env("KUBECONFIG", &list)
            .output()
            .unwrap(),
    );
    out.expect(0);
    assert_eq!(names(&kubectl_view(&a), "contexts"), ["other"]);
    assert_eq!(kubectl_view(&a)["current-context"], "");
}

#[test]
fn delete_with_a_locked_kubeconfig_removes_the_engine_resources_first() {
    let env = Env::new();
    env.kubernetes_profile("k", 2);
    let path = env.kubeconfig();
    std::fs::write(&path, kubeconfig_yaml("k", "https://127.0.0.1:1", "k")).unwrap();
    // Another program (kubectl, client-go) holds the kubeconfig's lock file.
    let lock = PathBuf::from(format!("{}.lock", path.display()));
    std::fs::write(&lock, "").unwrap();

    let out = env.minik(&["-p", "k", "delete"]);
    out.expect(32).reason("HOST_LOCK_TIMEOUT");
    assert!(
        out.stderr
            .contains("was deleted, but its kubeconfig entries were not removed"),
        "{}",
        out.stderr
    );
    assert!(env.engine().node_names().is_empty(), "engine part not done");
    assert!(!env.profile_dir("k").exists());
    assert_eq!(names(&kubectl_view(&path), "contexts"), ["k", "other"]);

    // Once the lock is gone, deleting again cleans the kubeconfig.
    std::fs::remove_file(&lock).unwrap();
    env.minik(&["-p", "k", "delete"]).expect(0);
    assert_eq!(names(&kubectl_view(&path), "contexts"), ["other"]);
}

/// `minik start` with Kubernetes, end to end over the fake engine (whose `kubeadm init`
/// leaves an admin.conf behind like the real one): the steps run in order on the right nodes,
/// the kubeconfig lands in $KUBECONFIG (checked with the real kubectl), a restart never reruns
/// kubeadm, and delete removes the context. `--wait=false` because no API server answers.
#[test]
fn kubernetes_start_bootstraps_exports_and_restarts_without_kubeadm() {
    let env = Env::new();
    let out = env.minik(&[
        "-p",
        "k",
        "start",
        "--driver",
        "fake",
        "--nodes",
        "2",
        "--kubernetes-version",
        "v1.35.0",
        "--wait=false",
    ]);
    out.expect(0);
    for step in [
        "Writing kubeadm configuration",
        "Configuring the pod network",
        "Starting the control plane",
        "Joining 1 node(s)",
        "Updating the kubeconfig",
    ] {
        assert!(
            out.stderr.contains(step),
            "missing step {step:?}:\n{}",
            out.stderr
        );
    }
    let log = env.log();
    let cmds = |node: &str| -> Vec<String> {
        log.iter()
            .filter(|r| r.node == node)
            .map(|r| r.argv.join(" "))
            .collect()
    };
    assert!(
        cmds("k")
            .iter()
            .any(|c| c.starts_with("kubeadm init --config /var/lib/minik/kubeadm.yaml"))
    );
    assert!(
        cmds("k-m02")
            .iter()
            .any(|c| c.starts_with("kubeadm join --config /var/lib/minik/kubeadm.yaml"))
    );
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.profile_dir("k").join("profile.json")).unwrap())
            .unwrap();
    assert_eq!(profile["kubernetes"]["version"], "v1.35.0");

    let view = kubectl_view(&env.kubeconfig());
    assert_eq!(view["current-context"], "k");
    let cluster = view["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "k")
        .unwrap();
    assert_eq!(
        cluster["cluster"]["server"],
        format!("https://127.0.0.1:{}", env.api_port("k"))
    );

    // stop -> start: nodes come back, kubeadm is not run again, the context stays; every
    // node's kubelet is started (a `stop` killed after it stopped the kubelets leaves running
    // nodes without one).
    env.minik(&["-p", "k", "stop"]).expect(0);
    let before = env.log().len();
    env.minik(&["-p", "k", "start", "--wait=false"]).expect(0);
    let kubelet_starts: Vec<String> = env.log()[before..]
        .iter()
        .filter(|r| r.argv.join(" ") == "systemctl start kubelet")
        .map(|r| r.node.clone())
        .collect();
    assert_eq!(kubelet_starts.len(), 2, "{kubelet_starts:?}");
    let inits = env
        .log()
        .iter()
        .filter(|r| r.argv.first().map(String::as_str) == Some("kubeadm"))
        .count();
    assert_eq!(inits, 2, "one init and one join, none on restart");
    assert_eq!(kubectl_view(&env.kubeconfig())["current-context"], "k");

    env.minik(&["-p", "k", "delete"]).expect(0);
    let view = kubectl_view(&env.kubeconfig());
    assert!(
        view["contexts"].as_array().is_none_or(|c| c.is_empty()),
        "{view}"
    );
}

/// A failing join names the step and the node, exits K8S_BOOTSTRAP, and removes the nodes and
/// the half-written kubeconfig context.
#[test]
fn kubernetes_start_failure_names_the_step_and_cleans_up() {
    let env = Env::new();
    env.engine().respond(Response {
        node: "*".into(),
        prefix: vec!["kubeadm".into(), "join".into()],
        exit_code: 1,
        stdout: String::new(),
        stderr:
            "error execution phase preflight: couldn't validate the identity of the API Server\n"
                .into(),
    });
    let out = env.minik(&[
        "-p",
        "kf",
        "start",
        "--driver",
        "fake",
        "--nodes",
        "2",
        "--kubernetes-version",
        "v1.35.0",
        "--wait=false",
    ]);
    out.expect(100);
    assert!(
        out.stderr.contains("Exiting due to K8S_BOOTSTRAP"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("step kubeadm-join failed on node kf-m02"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("couldn't validate the identity"),
        "{}",
        out.stderr
    );
    assert!(env.engine().node_names().is_empty(), "nodes leaked");
    assert!(!env.profile_dir("kf").exists());
    if env.kubeconfig().exists() {
        let view = kubectl_view(&env.kubeconfig());
        assert!(
            view["contexts"].as_array().is_none_or(|c| c.is_empty()),
            "{view}"
        );
    }
}

/// `node add` creates, boots, wires the pod network on every node and joins with a fresh
/// token; `node delete` drains, removes and shrinks the profile; the control plane cannot be
/// deleted on its own.
#[test]
fn node_add_and_delete_on_a_kubernetes_profile() {
    let env = Env::new();
    env.minik(&[
        "-p",
        "n",
        "start",
        "--driver",
        "fake",
        "--kubernetes-version",
        "v1.35.0",
        "--wait=false",
    ])
    .expect(0);
    env.respond(
        "n",
        &["kubeadm", "token", "create"],
        0,
        "abcdef.0123456789abcdef\n",
    );
    let out = env.minik(&["-p", "n", "node", "add", "--wait=false"]);
    out.expect(0);
    // The steps of cluster::steps::ADD_NODE, in order, after the node is created and booted.
    let at = |line: &str| {
        out.stderr
            .find(line)
            .unwrap_or_else(|| panic!("missing {line:?}:\n{}", out.stderr))
    };
    assert!(at("Creating node n-m02") < at("Writing kubeadm configuration"));
    assert!(at("Writing kubeadm configuration") < at("Configuring the pod network"));
    assert!(at("Configuring the pod network") < at("Joining n-m02"));
    assert!(!out.stderr.contains("Starting the control plane"));
    assert_eq!(env.engine().node_names(), vec!["n", "n-m02"]);
    let log = env.log();
    let token_at = log
        .iter()
        .position(|r| r.node == "n" && r.argv.join(" ") == "kubeadm token create --ttl 1h")
        .unwrap();
    let join_at = log
        .iter()
        .position(|r| r.node == "n-m02" && r.argv.first().map(String::as_str) == Some("kubeadm"))
        .unwrap();
    assert!(token_at < join_at);
    let join_config = env
        .engine()
        .file("n-m02", "/var/lib/minik/kubeadm.yaml")
        .unwrap();
    assert!(
        join_config.contains("abcdef.0123456789abcdef")
            && join_config.contains("kind: JoinConfiguration")
    );
    // The control plane now routes the new node's pods.
    let net = env.engine().file("n", "/etc/minik/net.sh").unwrap();
    assert!(
        net.contains("ip route replace 10.244.1.0/24 via 192.168.49.3"),
        "{net}"
    );
    let list: serde_json::Value =
        serde_json::from_str(&env.minik(&["-p", "n", "node", "list", "-o", "json"]).stdout)
            .unwrap();
    assert_eq!(list["nodes"].as_array().unwrap().len(), 2);

    env.minik(&["-p", "n", "node", "delete", "n"]).expect(14);
    env.minik(&["-p", "n", "node", "delete", "m07"]).expect(87);
    env.minik(&["-p", "n", "node", "delete", "m02"]).expect(0);
    assert_eq!(env.engine().node_names(), vec!["n"]);
    assert!(env.log().iter().any(|r| r.node == "n"
        && r.argv.iter().any(|a| a == "drain")
        && r.argv.iter().any(|a| a == "n-m02")));
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.profile_dir("n").join("profile.json")).unwrap())
            .unwrap();
    assert_eq!(profile["nodes"].as_array().unwrap().len(), 1);
    let net = env.engine().file("n", "/etc/minik/net.sh").unwrap();
    assert!(!net.contains("10.244.1.0/24"), "{net}");
}

/// A failed `node add` removes the half-made node and leaves the profile as it was.
#[test]
fn node_add_failure_removes_the_new_node() {
    let env = Env::new();
    env.minik(&[
        "-p",
        "nf",
        "start",
        "--driver",
        "fake",
        "--kubernetes-version",
        "v1.35.0",
        "--wait=false",
    ])
    .expect(0);
    // No scripted token: the fake prints nothing, which is not a bootstrap token.
    let out = env.minik(&["-p", "nf", "node", "add", "--wait=false"]);
    out.expect(100);
    assert!(
        out.stderr.contains("not a bootstrap token"),
        "{}",
        out.stderr
    );
    assert_eq!(env.engine().node_names(), vec!["nf"]);
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.profile_dir("nf").join("profile.json")).unwrap())
            .unwrap();
    assert_eq!(profile["nodes"].as_array().unwrap().len(), 1);
}

/// `profile list` reports a Kubernetes profile whose API server container is frozen as
/// Paused, though its hosts run.
#[test]
fn profile_list_shows_a_kubernetes_pause() {
    let env = Env::new();
    env.kubernetes_profile("pl", 1);
    let status = |env: &Env| {
        let list: serde_json::Value =
            serde_json::from_str(&env.minik(&["profile", "list", "-o", "json"]).stdout).unwrap();
        list["profiles"][0]["status"].as_str().unwrap().to_string()
    };
    assert_eq!(status(&env), "Running");
    env.respond(
        "*",
        &["crictl", "ps", "--name", "kube-apiserver", "-q"],
        0,
        "abc123\n",
    );
    env.respond(
        "*",
        &["runc", "--root", RUNC_ROOT, "state", "abc123"],
        0,
        "{\"id\":\"abc123\",\"status\":\"paused\"}",
    );
    assert_eq!(status(&env), "Paused");
}
