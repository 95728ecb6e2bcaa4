//! CLI tests of `minik addons` and `minik image` against the in-file fake engine (hidden
//! `--driver fake`): state kept in the profile, the exact commands and stdin each node gets
//! (the fake runner records argv, and stdin as text or `<N bytes>` for streams), refusals with
//! their reasons. What nodes answer (`ctr images ls`, `kubectl get pods -o json`) is scripted.

use crate::common::{Env, Out};
use minik_driver_api::fake::Recorded;
use std::path::PathBuf;

const KUBECTL: &[&str] = &["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"];
const LS: &[&str] = &["ctr", "-n", "k8s.io", "images", "ls"];
const IMPORT: &[&str] = &["ctr", "-n", "k8s.io", "images", "import"];

impl Env {
    /// Scripts the fake nodes' answer to commands starting with `prefix`; a failing answer
    /// says `boom` on stderr.
    fn answer(&self, node: &str, prefix: &[&str], exit_code: i64, stdout: &str) {
        let stderr = if exit_code == 0 { "" } else { "boom\n" };
        self.respond_with(node, prefix, exit_code, stdout, stderr);
    }
    /// A Kubernetes profile started end to end on the fake engine (no API server: --wait=false).
    fn kubernetes(&self, name: &str, nodes: u32, extra: &[&str]) -> Out {
        let n = nodes.to_string();
        let mut args = vec![
            "-p",
            name,
            "start",
            "--driver",
            "fake",
            "--nodes",
            &n,
            "--kubernetes-version",
            "v1.35.0",
            "--wait=false",
        ];
        args.extend_from_slice(extra);
        self.minik(&args)
    }
    /// Every pod any addon waits for answers Ready.
    fn pods_ready(&self) {
        let mut prefix = KUBECTL.to_vec();
        prefix.extend(["get", "pods"]);
        self.answer(
            "*",
            &prefix,
            0,
            r#"{"apiVersion":"v1","kind":"List","items":[{"metadata":{"name":"p-1"},"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}]}"#,
        );
    }
}

/// The recorded kubectl commands (argv after the kubeconfig) on `node`, with their stdin.
fn kubectl_calls(log: &[Recorded], node: &str) -> Vec<(String, Option<String>)> {
    log.iter()
        .filter(|r| {
            r.node == node
                && r.argv
                    .starts_with(&KUBECTL.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        })
        .map(|r| (r.argv[3..].join(" "), r.stdin.clone()))
        .collect()
}

const APPLY: &str = "apply --server-side --field-manager=minik --force-conflicts -f -";

#[test]
fn new_profiles_record_and_apply_the_default_addons_plus_start_addons() {
    let env = Env::new();
    env.kubernetes("a", 1, &["--addons", "metrics-server"])
        .expect(0);
    let p = env.profile("a");
    assert_eq!(p["addons"]["storage-provisioner"], true);
    assert_eq!(p["addons"]["default-storageclass"], true);
    assert_eq!(p["addons"]["metrics-server"], true);
    assert_eq!(p["addons"]["ingress"], false);
    let calls = kubectl_calls(&env.log(), "a");
    let applied: Vec<&str> = calls
        .iter()
        .filter(|(c, _)| c == APPLY)
        .map(|(_, stdin)| stdin.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(applied.len(), 3, "{calls:#?}");
    // Requirements first: the provisioner before the class that uses it.
    let sp = applied
        .iter()
        .position(|m| m.contains("minik.io/addon: storage-provisioner"))
        .unwrap();
    let sc = applied
        .iter()
        .position(|m| m.contains("minik.io/addon: default-storageclass"))
        .unwrap();
    assert!(sp < sc);
    assert!(applied.iter().any(|m| m.contains("kind: APIService")));
    // The bootstrap's class is looked at before the addon takes the name over.
    assert!(
        calls
            .iter()
            .any(|(c, _)| c == "get StorageClass standard --ignore-not-found -o json")
    );

    let list = env.minik(&["-p", "a", "addons", "list", "-o", "json"]);
    list.expect(0);
    let v: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let enabled: Vec<&str> = v["addons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["enabled"] == true)
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        enabled,
        [
            "default-storageclass",
            "metrics-server",
            "storage-provisioner"
        ]
    );
    let text = env.minik(&["-p", "a", "addons", "list"]);
    assert!(text.stdout.contains("ingress") && text.stdout.contains("disabled"));
}

#[test]
fn enable_applies_waits_and_disable_deletes_everything() {
    let env = Env::new();
    env.kubernetes("e", 1, &[]).expect(0);
    env.pods_ready();
    let out = env.minik(&["-p", "e", "addons", "enable", "metrics-server"]);
    out.expect(0);
    assert!(
        out.stdout.contains("top nodes"),
        "notes printed: {}",
        out.stdout
    );
    assert_eq!(env.profile("e")["addons"]["metrics-server"], true);
    let calls = kubectl_calls(&env.log(), "e");
    let manifest = calls
        .iter()
        .rev()
        .find(|(c, _)| c == APPLY)
        .and_then(|(_, s)| s.clone())
        .unwrap();
    assert!(manifest.contains("name: v1beta1.metrics.k8s.io"));
    assert!(
        calls
            .iter()
            .any(|(c, _)| c == "get pods -n kube-system -l k8s-app=metrics-server -o json")
    );

    env.minik(&["-p", "e", "addons", "disable", "metrics-server"])
        .expect(0);
    assert_eq!(env.profile("e")["addons"]["metrics-server"], false);
    let calls = kubectl_calls(&env.log(), "e");
    let (cmd, stdin) = calls.last().unwrap();
    assert!(
        cmd.starts_with("delete --ignore-not-found --wait=true"),
        "{cmd}"
    );
    // Every object the addon applied is in the delete.
    assert_eq!(stdin.as_deref(), Some(manifest.as_str()));

    // A restart re-applies what is enabled (the defaults here), not what was disabled.
    let before = env.log().len();
    env.minik(&["-p", "e", "stop"]).expect(0);
    env.minik(&["-p", "e", "start", "--wait=false"]).expect(0);
    let reapplied: Vec<String> = env.log()[before..]
        .iter()
        .filter(|r| r.argv.len() > 3 && r.argv[3..].join(" ") == APPLY)
        .map(|r| r.stdin.clone().unwrap_or_default())
        .collect();
    assert_eq!(reapplied.len(), 2);
    assert!(reapplied.iter().all(|m| !m.contains("metrics-server")));
}

#[test]
fn a_pod_that_cannot_pull_fails_the_wait_with_its_reason() {
    let env = Env::new();
    env.kubernetes("w", 1, &[]).expect(0);
    let mut prefix = KUBECTL.to_vec();
    prefix.extend(["get", "pods"]);
    env.answer(
        "*",
        &prefix,
        0,
        r#"{"items":[{"metadata":{"name":"metrics-server-1"},"status":{"phase":"Pending","containerStatuses":[{"name":"m","image":"x","imageID":"","ready":false,"restartCount":0,"state":{"waiting":{"reason":"ImagePullBackOff","message":"Back-off pulling image"}}}]}}]}"#,
    );
    let out = env.minik(&[
        "-p",
        "w",
        "addons",
        "enable",
        "metrics-server",
        "--wait-timeout",
        "1s",
    ]);
    out.expect(102).reason("K8S_ADDON");
    assert!(out.stderr.contains("ImagePullBackOff"), "{}", out.stderr);
    // The objects were applied: the addon counts as enabled (disable removes it).
    assert_eq!(env.profile("w")["addons"]["metrics-server"], true);
}

#[test]
fn enabling_needs_a_running_unpaused_kubernetes_profile() {
    let env = Env::new();
    env.minik(&["-p", "s", "start", "--driver", "fake", "--no-kubernetes"])
        .expect(0);
    env.minik(&["-p", "s", "addons", "enable", "ingress"])
        .expect(88)
        .reason("GUEST_UNSUPPORTED");
    env.minik(&["-p", "s", "start", "--addons", "ingress"])
        .expect(88);
    env.minik(&[
        "-p",
        "s2",
        "start",
        "--driver",
        "fake",
        "--no-kubernetes",
        "--addons",
        "ingress",
    ])
    .expect(14)
    .reason("MK_USAGE");

    env.kubernetes("k", 1, &[]).expect(0);
    env.minik(&["-p", "k", "addons", "enable", "nope"])
        .expect(14)
        .reason("MK_USAGE");
    env.kubernetes("k2", 1, &["--addons", "nope"]).expect(14);
    // Paused: `minik pause` leaves a marker in every node.
    let state_file = env.engine().path().to_path_buf();
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    state["nodes"]["k"]["files"]["/var/lib/minik/paused"] = serde_json::json!("abc\n");
    std::fs::write(&state_file, serde_json::to_vec(&state).unwrap()).unwrap();
    let out = env.minik(&["-p", "k", "addons", "enable", "ingress"]);
    out.expect(86).reason("GUEST_NOT_RUNNING");
    assert!(
        out.stderr.contains("paused") && out.stderr.contains("minik unpause"),
        "{}",
        out.stderr
    );
    state["nodes"]["k"]["files"]
        .as_object_mut()
        .unwrap()
        .remove("/var/lib/minik/paused");
    std::fs::write(&state_file, serde_json::to_vec(&state).unwrap()).unwrap();
    env.minik(&["-p", "k", "stop"]).expect(0);
    let out = env.minik(&["-p", "k", "addons", "enable", "ingress"]);
    out.expect(86).reason("GUEST_NOT_RUNNING");
    assert_eq!(env.profile("k")["addons"]["ingress"], false);
}

#[test]
fn ingress_notes_give_the_published_host_ports() {
    let env = Env::new();
    env.kubernetes("i", 1, &[]).expect(0);
    let out = env.minik(&["-p", "i", "addons", "enable", "ingress", "--wait=false"]);
    out.expect(0);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.engine().path()).unwrap()).unwrap();
    let ports = &state["nodes"]["i"]["ports"];
    let (http, https) = (
        ports["80"].as_u64().unwrap(),
        ports["443"].as_u64().unwrap(),
    );
    assert_ne!(http, https);
    assert!(
        out.stdout.contains(&format!("http://127.0.0.1:{http}/"))
            && out.stdout.contains(&format!("https://127.0.0.1:{https}/"))
            && out.stdout.contains("http://192.168.49.2/"),
        "{}",
        out.stdout
    );
    // Traefik 3.6 supports minik's default version: no warning.
    assert!(
        !out.stderr.contains("its pinned version supports"),
        "{}",
        out.stderr
    );
    // The Gateway API CRDs are applied first and waited for, then the rest (a Gateway cannot
    // be applied before the API server serves its kind).
    let calls = kubectl_calls(&env.log(), "i");
    let crds = calls
        .iter()
        .position(|(c, s)| {
            c == APPLY
                && s.as_deref().is_some_and(|s| {
                    s.contains("kind: CustomResourceDefinition") && !s.contains("\nkind: Gateway\n")
                })
        })
        .expect("the CRDs are applied on their own");
    let established = calls
        .iter()
        .position(|(c, _)| {
            c.starts_with("wait --for=condition=Established")
                && c.contains("crd/gateways.gateway.networking.k8s.io")
        })
        .expect("the CRDs are waited for");
    let rest = calls
        .iter()
        .position(|(c, s)| {
            c == APPLY
                && s.as_deref().is_some_and(|s| {
                    s.contains("\nkind: Gateway\n") && !s.contains("CustomResourceDefinition")
                })
        })
        .expect("the rest is applied after");
    assert!(crds < established && established < rest, "{calls:?}");
    // Dashboard 2.7 does not support it: enabling warns (and still enables).
    let out = env.minik(&["-p", "i", "addons", "enable", "dashboard", "--wait=false"]);
    out.expect(0);
    assert!(
        out.stderr
            .contains("dashboard: its pinned version supports Kubernetes"),
        "{}",
        out.stderr
    );
}

#[test]
fn registry_trusts_the_in_cluster_mirror_on_every_node() {
    let env = Env::new();
    env.kubernetes("r", 2, &[]).expect(0);
    env.minik(&["-p", "r", "addons", "enable", "registry", "--wait=false"])
        .expect(0);
    for node in ["r", "r-m02"] {
        let hosts = env
            .engine()
            .file(node, "/etc/containerd/certs.d/localhost:5000/hosts.toml")
            .unwrap_or_default();
        assert!(hosts.contains("http://10.96.0.50:80"), "{node}: {hosts}");
    }
    env.minik(&["-p", "r", "addons", "disable", "registry"])
        .expect(0);
    for node in ["r", "r-m02"] {
        assert!(env.log().iter().any(|c| c.node == node
            && c.argv
                == [
                    "rm",
                    "-f",
                    "/etc/containerd/certs.d/localhost:5000/hosts.toml"
                ]));
    }
}

#[test]
fn default_storageclass_replaces_the_bootstrap_class_and_is_required() {
    let env = Env::new();
    let mut get = KUBECTL.to_vec();
    get.extend(["get", "StorageClass", "standard"]);
    env.answer(
        "*",
        &get,
        0,
        r#"{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"standard","labels":{"app.kubernetes.io/managed-by":"minik"}},"provisioner":"kubernetes.io/host-path"}"#,
    );
    env.kubernetes("d", 1, &[]).expect(0);
    let calls = kubectl_calls(&env.log(), "d");
    let deleted = calls
        .iter()
        .position(|(c, _)| c == "delete StorageClass standard --ignore-not-found")
        .expect("the bootstrap class is deleted");
    let applied = calls
        .iter()
        .position(|(c, s)| {
            c == APPLY
                && s.as_deref()
                    .unwrap_or_default()
                    .contains("provisioner: rancher.io/local-path")
        })
        .unwrap();
    assert!(deleted < applied);
    // storage-provisioner cannot go while the class that needs it is on.
    env.minik(&["-p", "d", "addons", "disable", "storage-provisioner"])
        .expect(14)
        .reason("MK_USAGE");
}

// ---- image load / ls / rm ------------------------------------------------------------------

/// A docker-save archive of one image: (tar bytes, config id).
fn archive(tag: &str) -> (Vec<u8>, String) {
    use sha2::Digest;
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let hex = hex::encode(sha2::Sha256::digest(config));
    let manifest =
        format!(r#"[{{"Config":"{hex}.json","RepoTags":["{tag}"],"Layers":["l/layer.tar"]}}]"#);
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in [
        (format!("{hex}.json"), config.to_vec()),
        ("l/layer.tar".to_string(), vec![0u8; 20480]),
        ("manifest.json".to_string(), manifest.into_bytes()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, data.as_slice()).unwrap();
    }
    (b.into_inner().unwrap(), format!("sha256:{hex}"))
}

fn ls_output(rows: &[(&str, &str)]) -> String {
    let mut s = String::from("REF TYPE DIGEST SIZE PLATFORMS LABELS\n");
    for (r, t) in rows {
        s.push_str(&format!(
            "{r} application/vnd.docker.distribution.manifest.v2+json {t} 20.0 KiB linux/amd64 -\n"
        ));
    }
    s
}

fn target(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn write_archive(env: &Env, tag: &str) -> (PathBuf, usize, String) {
    let (bytes, id) = archive(tag);
    let path = env.home().join("app.tar");
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes.len(), id)
}

#[test]
fn image_load_streams_the_archive_into_every_node_once() {
    let env = Env::new();
    env.minik(&[
        "-p",
        "i",
        "start",
        "--driver",
        "fake",
        "--no-kubernetes",
        "--nodes",
        "3",
    ])
    .expect(0);
    let (path, size, _) = write_archive(&env, "app:1");
    // The nodes hold the name already, but not this image (no id name): import.
    env.answer(
        "*",
        LS,
        0,
        &ls_output(&[("docker.io/library/app:1", &target('0'))]),
    );
    let out = env.minik(&[
        "-p",
        "i",
        "image",
        "load",
        "--archive",
        path.to_str().unwrap(),
    ]);
    out.expect(0);
    assert!(
        out.stdout
            .contains("docker.io/library/app:1: imported into i, i-m02, i-m03"),
        "{}",
        out.stdout
    );
    for node in ["i", "i-m02", "i-m03"] {
        let cmds: Vec<(String, Option<String>)> = env
            .log()
            .iter()
            .filter(|r| r.node == node)
            .map(|r| (r.argv.join(" "), r.stdin.clone()))
            .collect();
        let first = cmds.iter().position(|(c, _)| *c == LS.join(" ")).unwrap();
        let cmds = &cmds[first..];
        let order: Vec<&str> = cmds.iter().map(|(c, _)| c.as_str()).collect();
        let import = order
            .iter()
            .position(|c| c.starts_with(&IMPORT.join(" ")))
            .unwrap();
        assert!(order[..import].contains(&"containerd config dump"));
        assert_eq!(order[import + 1], LS.join(" "), "checked after the import");
        // The whole file went in, as a stream.
        assert_eq!(
            cmds[import].1.as_deref(),
            Some(format!("<{size} bytes>").as_str())
        );
    }
}

#[test]
fn image_load_of_an_image_the_nodes_have_copies_nothing() {
    let env = Env::new();
    env.minik(&[
        "-p",
        "j",
        "start",
        "--driver",
        "fake",
        "--no-kubernetes",
        "--nodes",
        "2",
    ])
    .expect(0);
    let (path, _, id) = write_archive(&env, "app:1");
    // Same image under the same name (the CRI plugin's id name points at it): nothing to do.
    env.answer(
        "*",
        LS,
        0,
        &ls_output(&[
            ("docker.io/library/app:1", &target('7')),
            (&id, &target('7')),
        ]),
    );
    let out = env.minik(&[
        "-p",
        "j",
        "image",
        "load",
        "--archive",
        path.to_str().unwrap(),
        "-o",
        "json",
    ]);
    out.expect(0);
    let result: serde_json::Value = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "result")
        .unwrap();
    assert_eq!(result["imports"], 0);
    assert_eq!(result["bytes_streamed"], 0);
    assert_eq!(
        result["images"]["docker.io/library/app:1"]["j-m02"],
        "present"
    );
    assert!(!env.log().iter().any(|r| {
        r.argv
            .starts_with(&IMPORT.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }));

    // The same image under another name in one node: only a tag there.
    env.answer(
        "j-m02",
        LS,
        0,
        &ls_output(&[
            ("docker.io/library/old:1", &target('7')),
            (&id, &target('7')),
        ]),
    );
    env.minik(&[
        "-p",
        "j",
        "image",
        "load",
        "--archive",
        path.to_str().unwrap(),
    ])
    .expect(0);
    assert!(env.log().iter().any(|r| r.node == "j-m02"
        && r.argv.join(" ")
            == "ctr -n k8s.io images tag --force docker.io/library/old:1 docker.io/library/app:1"));
}

#[test]
fn image_load_refuses_bad_input_before_touching_a_node() {
    let env = Env::new();
    env.minik(&["-p", "b", "start", "--driver", "fake", "--no-kubernetes"])
        .expect(0);
    let before = env.log().len();
    let bad = env.home().join("bad.tar");
    std::fs::write(&bad, b"this is not a tar archive, not even close to one").unwrap();
    let out = env.minik(&[
        "-p",
        "b",
        "image",
        "load",
        "--archive",
        bad.to_str().unwrap(),
    ]);
    out.expect(90).reason("GUEST_IMAGE_LOAD");
    assert!(out.stderr.contains("not a tar archive"), "{}", out.stderr);
    std::fs::write(&bad, [0x1f, 0x8b, 8, 0]).unwrap();
    let out = env.minik(&[
        "-p",
        "b",
        "image",
        "load",
        "--archive",
        bad.to_str().unwrap(),
    ]);
    out.expect(90);
    assert!(out.stderr.contains("gunzip"), "{}", out.stderr);
    // No engine here (DOCKER_HOST points nowhere): the image is not found anywhere.
    env.minik(&["-p", "b", "image", "load", "some/app:1"])
        .expect(89)
        .reason("GUEST_IMAGE_NOT_FOUND");
    assert_eq!(env.log().len(), before, "no node was asked anything");
    env.minik(&["-p", "b", "image", "load"]).expect(14);
}

#[test]
fn a_failed_import_restores_every_node() {
    let env = Env::new();
    env.minik(&[
        "-p",
        "f",
        "start",
        "--driver",
        "fake",
        "--no-kubernetes",
        "--nodes",
        "2",
    ])
    .expect(0);
    let (path, _, _) = write_archive(&env, "app:1");
    env.answer(
        "*",
        LS,
        0,
        &ls_output(&[("docker.io/library/app:1", &target('0'))]),
    );
    env.answer("f-m02", IMPORT, 1, "");
    let out = env.minik(&[
        "-p",
        "f",
        "image",
        "load",
        "--archive",
        path.to_str().unwrap(),
    ]);
    out.expect(90).reason("GUEST_IMAGE_LOAD");
    assert!(out.stderr.contains("put back as it was"), "{}", out.stderr);
    // Both nodes were listed again to restore them.
    for node in ["f", "f-m02"] {
        let lists = env
            .log()
            .iter()
            .filter(|r| r.node == node && r.argv.join(" ") == LS.join(" "))
            .count();
        assert!(lists >= 2, "{node}: {lists}");
    }
}

#[test]
fn image_ls_and_rm() {
    let env = Env::new();
    env.minik(&[
        "-p",
        "l",
        "start",
        "--driver",
        "fake",
        "--no-kubernetes",
        "--nodes",
        "2",
    ])
    .expect(0);
    let id = target('1');
    env.answer(
        "*",
        LS,
        0,
        &ls_output(&[
            ("docker.io/library/app:1", &target('7')),
            (&id, &target('7')),
        ]),
    );
    env.answer(
        "l-m02",
        LS,
        0,
        &ls_output(&[
            ("docker.io/library/app:1", &target('7')),
            (&id, &target('7')),
            ("x/y:2", &target('8')),
        ]),
    );
    let out = env.minik(&["-p", "l", "image", "ls", "-o", "json"]);
    out.expect(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["images"][0]["name"], "docker.io/library/app:1");
    assert_eq!(v["images"][0]["nodes"], serde_json::json!(["l", "l-m02"]));
    assert_eq!(v["images"][0]["id"], id.as_str());
    assert_eq!(v["images"][1]["nodes"], serde_json::json!(["l-m02"]));
    let text = env.minik(&["-p", "l", "image", "ls"]);
    assert!(text.stdout.contains("docker.io/library/app:1") && text.stdout.contains("all"));

    env.minik(&["-p", "l", "image", "rm", "app:1"]).expect(0);
    for node in ["l", "l-m02"] {
        assert!(env.log().iter().any(|r| r.node == node
            && r.argv.join(" ")
                == format!("ctr -n k8s.io images rm docker.io/library/app:1 {id}")));
    }
    env.minik(&["-p", "l", "image", "rm", "nothere:1"])
        .expect(89)
        .reason("GUEST_IMAGE_NOT_FOUND");
}

/// Addon failures during `start` are warnings; an addon whose requirement failed is skipped,
/// so the bootstrap's StorageClass stays when the provisioner could not be applied.
#[test]
fn start_survives_a_failing_addon_and_skips_its_dependents() {
    let env = Env::new();
    let mut apply = KUBECTL.to_vec();
    apply.extend(["apply", "--server-side"]);
    env.answer("*", &apply, 1, "");
    let out = env.kubernetes("x", 1, &[]);
    out.expect(0);
    assert!(
        out.stderr.contains("addon storage-provisioner")
            && out
                .stderr
                .contains("default-storageclass: skipped because storage-provisioner failed"),
        "{}",
        out.stderr
    );
    let calls = kubectl_calls(&env.log(), "x");
    assert!(
        !calls
            .iter()
            .any(|(c, _)| c.starts_with("delete StorageClass"))
    );
    assert_eq!(calls.iter().filter(|(c, _)| c == APPLY).count(), 1);
}

/// Addon images: a node holding the pinned manifest under another name gets the pinned name;
/// one that has nothing says the image will be pulled (no engine store to load from here).
#[test]
fn addon_images_are_named_from_a_preloaded_copy_or_reported_as_pulled() {
    let env = Env::new();
    env.kubernetes("m", 2, &[]).expect(0);
    let digest = "sha256:89258156d0e9af60403eafd44da9676fd66f600c7934d468ccc17e42b199aee2";
    // Node m has the pinned image (say, from an OCI archive preloaded into the node image).
    env.answer(
        "m",
        LS,
        0,
        &ls_output(&[(
            "registry.k8s.io/metrics-server/metrics-server:v0.8.0",
            digest,
        )]),
    );
    let out = env.minik(&[
        "-p",
        "m",
        "addons",
        "enable",
        "metrics-server",
        "--wait=false",
    ]);
    out.expect(0);
    let pinned = format!("registry.k8s.io/metrics-server/metrics-server@{digest}");
    assert!(env.log().iter().any(|r| r.node == "m"
        && r.argv.join(" ")
            == format!(
                "ctr -n k8s.io images tag --force registry.k8s.io/metrics-server/metrics-server:v0.8.0 {pinned}"
            )));
    // Node m-m02 has no copy: it pulls the pinned image before anything is applied.
    assert!(
        env.log()
            .iter()
            .any(|r| r.node == "m-m02" && r.argv.join(" ") == format!("crictl pull {pinned}")),
        "{:?}",
        env.log()
    );
}

/// Offline: an image in no node, not in the engine and not pullable fails the addon before
/// anything is applied (nothing replaces the cluster's objects), naming the image.
#[test]
fn addon_whose_image_cannot_be_pulled_fails_before_applying() {
    let env = Env::new();
    env.kubernetes("m", 1, &[]).expect(0);
    env.answer("m", &["crictl", "pull"], 1, "");
    let out = env.minik(&[
        "-p",
        "m",
        "addons",
        "enable",
        "metrics-server",
        "--wait=false",
    ]);
    out.expect(102).reason("K8S_ADDON");
    assert!(
        out.stderr.contains("metrics-server") && out.stderr.contains("cannot be pulled"),
        "{}",
        out.stderr
    );
    assert!(
        !env.log().iter().any(|r| r.argv.iter().any(|a| a == "apply")
            && r.stdin
                .as_deref()
                .unwrap_or_default()
                .contains("metrics-server")),
        "nothing applied: {:?}",
        env.log()
    );
}

#[test]
fn images_flag_replaces_an_addon_image_everywhere_and_is_remembered() {
    const LPP: &str = "docker.io/rancher/local-path-provisioner:v0.0.30@sha256:9b914881170048f80ae9302f36e5b99b4a6b18af73a38adc1c66d12f65d360be";
    let env = Env::new();
    // The names and defaults `--images` takes.
    let out = env.minik(&["addons", "images", "storage-provisioner"]);
    out.expect(0);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["local-path-provisioner", LPP]),
        "{}",
        out.stdout
    );
    let out = env.minik(&["addons", "images", "storage-provisioner", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["images"][0]["name"], "local-path-provisioner");
    assert_eq!(v["images"][0]["default"], LPP);

    env.kubernetes("i", 1, &[]).expect(0);
    // An unknown image name is refused before anything is touched, naming the valid ones.
    let before = env.log().len();
    let out = env.minik(&[
        "-p",
        "i",
        "addons",
        "enable",
        "storage-provisioner",
        "--images",
        "provisioner=localhost/x:1",
    ]);
    out.expect(14).reason("MK_USAGE");
    assert!(
        out.stderr.contains("its images: local-path-provisioner"),
        "{}",
        out.stderr
    );
    assert_eq!(env.log().len(), before, "nothing ran");
    for bad in ["local-path-provisioner", "=x", "local-path-provisioner="] {
        env.minik(&[
            "-p",
            "i",
            "addons",
            "enable",
            "storage-provisioner",
            "--images",
            bad,
        ])
        .expect(14);
    }

    let local = "localhost/minik-addons/local-path-provisioner:v0.0.30";
    env.minik(&[
        "-p",
        "i",
        "addons",
        "enable",
        "storage-provisioner",
        "--wait=false",
        "--images",
        &format!("local-path-provisioner={local}"),
    ])
    .expect(0);
    let applied = |env: &Env| {
        kubectl_calls(&env.log(), "i")
            .iter()
            .rev()
            .find(|(c, s)| {
                c == APPLY
                    && s.as_deref()
                        .is_some_and(|m| m.contains("minik.io/addon: storage-provisioner"))
            })
            .and_then(|(_, s)| s.clone())
            .unwrap()
    };
    let manifest = applied(&env);
    // The Deployment and the helper pod template inside the ConfigMap.
    assert_eq!(manifest.matches(local).count(), 2, "{manifest}");
    assert!(!manifest.contains(LPP), "{manifest}");
    // Not in the node: it was pulled under the replacement's name before the apply.
    assert!(
        env.log()
            .iter()
            .any(|r| r.node == "i" && r.argv == ["crictl", "pull", local]),
        "{:#?}",
        env.log()
    );
    assert_eq!(
        env.profile("i")["addon_images"]["storage-provisioner"]["local-path-provisioner"],
        local
    );
    // A restart applies the replacement again.
    env.minik(&["-p", "i", "stop"]).expect(0);
    env.minik(&["-p", "i", "start", "--wait=false"]).expect(0);
    assert!(applied(&env).contains(local));

    // --registries keeps path, tag and digest; enabling without flags restores the defaults.
    env.minik(&[
        "-p",
        "i",
        "addons",
        "enable",
        "storage-provisioner",
        "--wait=false",
        "--registries",
        "local-path-provisioner=mirror.example:5000",
    ])
    .expect(0);
    assert!(applied(&env).contains(
        "mirror.example:5000/rancher/local-path-provisioner:v0.0.30@sha256:9b914881170048f80ae9302f36e5b99b4a6b18af73a38adc1c66d12f65d360be"
    ));
    env.minik(&[
        "-p",
        "i",
        "addons",
        "enable",
        "storage-provisioner",
        "--wait=false",
    ])
    .expect(0);
    assert!(applied(&env).contains(LPP));
    assert!(env.profile("i").get("addon_images").is_none());
}

/// An archive whose image name holds terminal escape sequences (set the window title, clear
/// the screen): whatever minik prints about it, the sequences are escaped, never raw.
#[test]
fn image_names_with_terminal_escapes_are_printed_escaped() {
    let env = Env::new();
    env.minik(&["-p", "esc", "start", "--driver", "fake", "--no-kubernetes"])
        .expect(0);
    // JSON escapes in manifest.json: the name read from it holds the raw characters.
    let (path, _, _) = write_archive(&env, r"evil\u001b]0;owned\u0007\u001b[2J:1");
    env.answer("*", LS, 0, &ls_output(&[]));
    let out = env.minik(&[
        "-p",
        "esc",
        "image",
        "load",
        "--archive",
        path.to_str().unwrap(),
    ]);
    for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "raw control characters on {stream}: {text:?}"
        );
    }
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("\\x1b"),
        "the name is shown, escaped: {out:?}"
    );
}
