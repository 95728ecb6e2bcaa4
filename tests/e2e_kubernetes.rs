//! Kubernetes end to end, against the real docker engine.
//!
//! Always built with `--features e2e` (`.ci/run`): `node-image build` with a local Kubernetes
//! directory, as far as it goes without real binaries — stand-in executables, real checksum
//! and layout validation, a real image build that installs them.
//!
//! The whole cluster flow (`real_cluster_lifecycle`) needs real kubeadm/kubelet/kubectl
//! binaries, which cannot be downloaded on the development and CI machines: it is built only
//! with `--features e2e-kubernetes` and then requires `MINIK_KUBERNETES_FROM=DIR` (layout:
//! docs/kubernetes.md) and fails without it. `.ci/run` says in one line that it did not run.

use std::path::Path;
use std::process::{Command, Stdio};

/// A version the Debian containerd of the default node image supports.
const VERSION: &str = "v1.35.0";

fn minik(home: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_minik"))
        .args(args)
        .env("MINIK_HOME", home)
        .env("KUBECONFIG", home.join("kubeconfig"))
        .env("CI", "true")
        .env_remove("MINIK_KUBERNETES_FROM")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A directory in the `--kubernetes-from` layout with stand-in executables.
fn stand_in_dir(root: &Path) -> std::path::PathBuf {
    let dir = root.join("k8s");
    std::fs::create_dir_all(&dir).unwrap();
    let mut sums = String::new();
    for name in ["kubeadm", "kubelet", "kubectl"] {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho \"stand-in {name} {VERSION} $*\"\n"),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        sums.push_str(&format!("{}  {name}\n", sha256(&path)));
    }
    std::fs::write(dir.join("VERSION"), format!("{VERSION}\n")).unwrap();
    std::fs::write(dir.join("SHA256SUMS"), sums).unwrap();
    dir
}

/// Makes the stand-in kubeadm behave like the real one where minik looks: `kubeadm init`
/// leaves /etc/kubernetes/admin.conf behind (kubeadm's names, the node's address).
fn kubeadm_writes_admin_conf(dir: &Path) {
    let script = r#"#!/bin/sh
echo "stand-in kubeadm $*"
if [ "$1" = init ]; then
  ip=$(hostname -i | awk '{print $1}')
  mkdir -p /etc/kubernetes
  cat > /etc/kubernetes/admin.conf <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kubernetes
  cluster:
    server: https://$ip:6443
    certificate-authority-data: c3RhbmQtaW4=
users:
- name: kubernetes-admin
  user:
    client-certificate-data: c3RhbmQtaW4=
    client-key-data: c3RhbmQtaW4=
contexts:
- name: kubernetes-admin@kubernetes
  context:
    cluster: kubernetes
    user: kubernetes-admin
current-context: kubernetes-admin@kubernetes
EOF
fi
"#;
    let path = dir.join("kubeadm");
    std::fs::write(&path, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut sums = String::new();
    for name in ["kubeadm", "kubelet", "kubectl"] {
        sums.push_str(&format!("{}  {name}\n", sha256(&dir.join(name))));
    }
    std::fs::write(dir.join("SHA256SUMS"), sums).unwrap();
}

fn image_exists(tag: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", tag])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn node_image_from_a_local_directory() {
    let home = tempfile::tempdir().unwrap();
    let dir = stand_in_dir(home.path());
    let dir_s = dir.to_str().unwrap();
    let tag = format!("localhost/minik-e2e/node-k8s:{}", std::process::id());

    // Layout and checksum validation: each bad directory is refused before any build.
    let bad = home.path().join("bad");
    for (what, break_it) in [
        (
            "missing kubelet",
            Box::new(|d: &Path| std::fs::remove_file(d.join("kubelet")).unwrap())
                as Box<dyn Fn(&Path)>,
        ),
        (
            "checksum mismatch",
            Box::new(|d: &Path| {
                std::fs::write(d.join("kubeadm"), "#!/bin/sh\necho tampered\n").unwrap()
            }),
        ),
        (
            "version mismatch",
            Box::new(|d: &Path| std::fs::write(d.join("VERSION"), "v1.34.0\n").unwrap()),
        ),
    ] {
        let _ = std::fs::remove_dir_all(&bad);
        let copy = stand_in_dir(&bad);
        break_it(&copy);
        let (code, _, stderr) = minik(
            home.path(),
            &[
                "node-image",
                "build",
                "--kubernetes-version",
                VERSION,
                "--kubernetes-from",
                copy.to_str().unwrap(),
                "--tag",
                &tag,
            ],
        );
        assert_eq!(code, 14, "{what}: {stderr}");
        assert!(
            stderr.contains("Exiting due to MK_USAGE") && stderr.contains("Advice:"),
            "{what}: {stderr}"
        );
        assert!(!image_exists(&tag), "{what}: an image was built");
    }
    let (code, _, stderr) = minik(
        home.path(),
        &[
            "node-image",
            "build",
            "--kubernetes-version",
            VERSION,
            "--kubernetes-from",
            "/nonexistent/dir",
            "--tag",
            &tag,
        ],
    );
    assert_eq!(code, 14, "{stderr}");
    assert!(stderr.contains("/nonexistent/dir"), "{stderr}");

    // A good directory builds an image that carries the binaries and the kubelet unit.
    let (code, stdout, stderr) = minik(
        home.path(),
        &[
            "node-image",
            "build",
            "--kubernetes-version",
            VERSION,
            "--kubernetes-from",
            dir_s,
            "--tag",
            &tag,
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), tag);
    let run = |args: &[&str]| {
        let out = Command::new("docker")
            .args(["run", "--rm", "--entrypoint"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, out) = run(&["/usr/bin/kubeadm", &tag, "version"]);
    assert!(
        ok && out.contains(&format!("stand-in kubeadm {VERSION} version")),
        "{out}"
    );
    let (ok, out) = run(&["/bin/cat", &tag, "/etc/systemd/system/kubelet.service"]);
    assert!(
        ok && out.contains("ConditionPathExists=/var/lib/kubelet/config.yaml"),
        "{out}"
    );
    let (ok, out) = run(&["/bin/cat", &tag, "/opt/minik/kubernetes/VERSION"]);
    assert!(ok && out.trim() == VERSION, "{out}");
    let label = Command::new("docker")
        .args([
            "image",
            "inspect",
            "-f",
            "{{index .Config.Labels \"io.minik.kubernetes-version\"}}",
            &tag,
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&label.stdout).trim(), VERSION);
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
}

/// The Kubernetes steps on real docker nodes with stand-in binaries: everything minik does in
/// the nodes runs for real (configs, the pod network's routes and NAT rule, init and join
/// invocations, admin.conf export, kubeconfig merge, restart checks); only kubeadm itself is a
/// stand-in, so there is no API server to wait for (`--wait=false`).
#[test]
fn kubernetes_steps_on_real_nodes_with_stand_in_binaries() {
    let home = tempfile::tempdir().unwrap();
    let dir = stand_in_dir(home.path());
    kubeadm_writes_admin_conf(&dir);
    let tag = format!("localhost/minik-e2e/node-k8s-steps:{}", std::process::id());
    let p = format!("e2e-k8s-steps-{}", std::process::id() % 100000);
    let (code, _, stderr) = minik(
        home.path(),
        &[
            "node-image",
            "build",
            "--kubernetes-version",
            VERSION,
            "--kubernetes-from",
            dir.to_str().unwrap(),
            "--tag",
            &tag,
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let cleanup = |home: &Path| {
        let _ = minik(home, &["delete", "-p", &p]);
        let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
    };
    let (code, _, stderr) = minik(
        home.path(),
        &[
            "start",
            "-p",
            &p,
            "--driver",
            "docker",
            "--nodes",
            "2",
            "--kubernetes-version",
            VERSION,
            "--image",
            &tag,
            "--wait=false",
        ],
    );
    if code != 0 {
        cleanup(home.path());
        panic!("start with stand-in Kubernetes failed: {stderr}");
    }
    let ssh = |node: &str, cmd: &[&str]| {
        let mut args = vec!["ssh", "-p", &p, "-n", node, "--"];
        args.extend_from_slice(cmd);
        minik(home.path(), &args)
    };
    let worker = format!("{p}-m02");
    // Each node's kubeadm configuration names its role and own address.
    let (_, init_cfg, _) = ssh(&p, &["cat", "/var/lib/minik/kubeadm.yaml"]);
    let (_, join_cfg, _) = ssh(&worker, &["cat", "/var/lib/minik/kubeadm.yaml"]);
    assert!(init_cfg.contains("kind: InitConfiguration"), "{init_cfg}");
    assert!(join_cfg.contains("kind: JoinConfiguration"), "{join_cfg}");
    // The pod network really applied: routes to the other node's pod CIDR, and the NAT rule.
    let (_, routes, _) = ssh(&p, &["ip", "route"]);
    assert!(routes.contains("10.244.1.0/24 via"), "{routes}");
    let (_, routes, _) = ssh(&worker, &["ip", "route"]);
    assert!(routes.contains("10.244.0.0/24 via"), "{routes}");
    let (code, _, _) = ssh(
        &p,
        &[
            "iptables",
            "-t",
            "nat",
            "-C",
            "POSTROUTING",
            "-s",
            "10.244.0.0/16",
            "!",
            "-d",
            "10.244.0.0/16",
            "-j",
            "MASQUERADE",
        ],
    );
    assert_eq!(code, 0, "masquerade rule missing");
    let (_, unit, _) = ssh(&p, &["systemctl", "is-enabled", "minik-net.service"]);
    assert_eq!(unit.trim(), "enabled");
    // The kubeconfig context points at the published API port.
    let view = Command::new("kubectl")
        .args(["config", "view", "-o", "json", "--kubeconfig"])
        .arg(home.path().join("kubeconfig"))
        .output()
        .unwrap();
    let view: serde_json::Value = serde_json::from_slice(&view.stdout).unwrap();
    assert_eq!(view["current-context"], p.as_str());
    let server = view["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == p.as_str())
        .unwrap()["cluster"]["server"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(server.starts_with("https://127.0.0.1:"), "{server}");
    // Restart: no kubeadm rerun, addresses checked, routes back after the reboot.
    assert_eq!(minik(home.path(), &["stop", "-p", &p]).0, 0);
    let (code, _, stderr) = minik(home.path(), &["start", "-p", &p, "--wait=false"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stderr.contains("kubeadm"),
        "restart ran kubeadm steps: {stderr}"
    );
    let (_, routes, _) = ssh(&worker, &["ip", "route"]);
    assert!(
        routes.contains("10.244.0.0/24 via"),
        "routes restored by minik-net.service at boot: {routes}"
    );
    // Delete removes the context.
    assert_eq!(minik(home.path(), &["delete", "-p", &p]).0, 0);
    let kc = std::fs::read_to_string(home.path().join("kubeconfig")).unwrap_or_default();
    assert!(!kc.contains(&format!("name: {p}")), "{kc}");
    cleanup(home.path());
}

#[cfg(feature = "e2e-kubernetes")]
#[test]
fn real_cluster_lifecycle() {
    /// The nested-container test image (tests/make-test-image.sh), in the docker store.
    const HELLO_IMAGE: &str = "localhost/minik-test/hello:1";
    let dir = std::env::var("MINIK_KUBERNETES_FROM").expect(
        "--features e2e-kubernetes needs MINIK_KUBERNETES_FROM=DIR with kubeadm, kubelet and kubectl (docs/kubernetes.md)",
    );
    let home = tempfile::tempdir().unwrap();
    let p = format!("e2e-k8s-{}", std::process::id() % 100000);
    let with_dir = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_minik"))
            .args(args)
            .env("MINIK_HOME", home.path())
            .env("KUBECONFIG", home.path().join("kubeconfig"))
            .env("MINIK_KUBERNETES_FROM", &dir)
            .env("CI", "true")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let version = std::fs::read_to_string(Path::new(&dir).join("VERSION"))
        .map(|v| v.trim().to_string())
        .unwrap_or(VERSION.into());
    with_dir(&[
        "start",
        "-p",
        &p,
        "--nodes",
        "2",
        "--kubernetes-version",
        &version,
    ]);
    let nodes = with_dir(&["kubectl", "-p", &p, "--", "get", "nodes", "--no-headers"]);
    assert_eq!(
        nodes.lines().filter(|l| l.contains(" Ready")).count(),
        2,
        "{nodes}"
    );
    // A workload: an image loaded from the local store runs as a pod on the cluster, with a
    // volume from the default StorageClass.
    let with_stdin = |args: &[&str], input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_minik"))
            .args(args)
            .env("MINIK_HOME", home.path())
            .env("KUBECONFIG", home.path().join("kubeconfig"))
            .env("CI", "true")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    with_dir(&["image", "load", "-p", &p, HELLO_IMAGE]);
    with_stdin(
        &["kubectl", "-p", &p, "--", "apply", "-f", "-"],
        &format!(
            "apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: hello-data, namespace: default}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 16Mi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: hello, namespace: default}}
spec:
  restartPolicy: Never
  containers:
  - name: hello
    image: {HELLO_IMAGE}
    imagePullPolicy: Never
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes:
  - name: data
    persistentVolumeClaim: {{claimName: hello-data}}
"
        ),
    );
    with_dir(&[
        "kubectl",
        "-p",
        &p,
        "--",
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/hello",
        "--timeout=180s",
    ]);
    let logs = with_dir(&["kubectl", "-p", &p, "--", "logs", "hello"]);
    assert!(logs.contains("hello from minik"), "{logs}");
    let pvc = with_dir(&[
        "kubectl",
        "-p",
        &p,
        "--",
        "get",
        "pvc",
        "hello-data",
        "-o",
        "jsonpath={.status.phase}",
    ]);
    assert_eq!(pvc.trim(), "Bound");
    with_dir(&["stop", "-p", &p]);
    with_dir(&["start", "-p", &p]);
    with_dir(&["kubectl", "-p", &p, "--", "get", "--raw", "/readyz"]);
    with_dir(&["pause", "-p", &p]);
    with_dir(&["unpause", "-p", &p]);
    with_dir(&["delete", "-p", &p]);
    let contexts = std::fs::read_to_string(home.path().join("kubeconfig")).unwrap_or_default();
    assert!(!contexts.contains(&format!("name: {p}")), "{contexts}");
}
