//! Tests of kubeconfig.rs. Results are checked with the real kubectl (`kubectl config view -o
//! json`, `kubectl config get-contexts`): these tests fail, not skip, when kubectl is missing
//! (`.ci/run` installs it; `MINIK_TEST_KUBECTL` may name another binary).

use super::*;
use crate::errors::{Classified, Reason};

/// The reason and advice `main` reports for a kubeconfig error.
fn classify(err: &KubeconfigError) -> (&'static Reason, Option<String>) {
    (err.reason(), err.advice())
}
use serde_json::json;
use std::process::Command;

const PROFILE: &str = "minik";
const SERVER: &str = "https://127.0.0.1:40123";

/// What kubeadm writes to /etc/kubernetes/admin.conf (certificate data shortened).
const ADMIN_CONF: &str = "\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EtREFUQQ==
    server: https://minik:6443
  name: minik
contexts:
- context:
    cluster: minik
    user: kubernetes-admin
  name: kubernetes-admin@minik
current-context: kubernetes-admin@minik
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Q0VSVC1EQVRB
    client-key-data: S0VZLURBVEE=
";

/// A busy user kubeconfig: foreign clusters and contexts, an exec-plugin user, a stale entry
/// for the profile, unknown fields at the top level and inside entries, preferences and
/// extensions.
const BUSY: &str = r#"apiVersion: v1
kind: Config
preferences:
  colors: true
  extensions:
  - name: pref-ext
    extension:
      a: 1
clusters:
- name: prod
  cluster:
    server: https://prod.example.com:443
    certificate-authority-data: UFJPRC1DQQ==
    x-vendor-field: keep-me
    extensions:
    - name: vendor.example.com/info
      extension:
        region: eu-west-1
- name: minik
  cluster:
    server: https://127.0.0.1:1111
    insecure-skip-tls-verify: true
- name: staging
  cluster:
    server: https://staging.example.com
    certificate-authority: ../certs/staging-ca.crt
users:
- name: eks-admin
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [eks, get-token, --cluster-name, prod]
      env:
      - name: AWS_PROFILE
        value: prod
      interactiveMode: IfAvailable
- name: minik
  user:
    token: stale-token
- name: staging-user
  user:
    client-certificate: relative/client.crt
    client-key: relative/client.key
    x-user-unknown: 42
contexts:
- name: prod
  context:
    cluster: prod
    user: eks-admin
    namespace: team-a
- name: minik
  context:
    cluster: minik
    user: minik
- name: staging
  context:
    cluster: staging
    user: staging-user
current-context: prod
extensions:
- name: top-ext
  extension:
    hello: world
x-top-unknown:
  nested: [1, 2, 3]
"#;

fn kubectl_bin() -> String {
    std::env::var("MINIK_TEST_KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

/// Runs kubectl with `KUBECONFIG` set to `kubeconfig_env` (never the developer's own file).
fn kubectl(kubeconfig_env: &OsStr, args: &[&str]) -> String {
    let out = Command::new(kubectl_bin())
        .args(args)
        .env("KUBECONFIG", kubeconfig_env)
        .env("HOME", "/nonexistent")
        .output()
        .expect("kubectl is required by these tests (.ci/run installs it); set MINIK_TEST_KUBECTL to use another");
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `kubectl config view -o json --raw` of one file.
fn view(path: &Path) -> Value {
    serde_json::from_str(&kubectl(
        path.as_os_str(),
        &["config", "view", "-o", "json", "--raw"],
    ))
    .unwrap()
}

fn names(view: &Value, list: &str) -> Vec<String> {
    view[list]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|e| e["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The entries of `list` not named `except`, by name.
fn others(view: &Value, list: &str, except: &str) -> Vec<Value> {
    view[list]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] != except)
        .cloned()
        .collect()
}

/// The file as a generic tree (to see unknown fields, which kubectl drops from its view).
fn tree(path: &Path) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn exported() -> Kubeconfig {
    export(ADMIN_CONF, PROFILE, SERVER).unwrap()
}

/// A busy file plus `extra` generated foreign contexts (with their clusters and users).
fn busy_with_many(extra: usize) -> String {
    let mut doc: Value = serde_saphyr::from_str(BUSY).unwrap();
    for i in 0..extra {
        let name = format!("team-{i:03}");
        doc["clusters"].as_array_mut().unwrap().push(
            json!({"name": name, "cluster": {"server": format!("https://{name}.example:6443")}}),
        );
        doc["users"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": name, "user": {"token": format!("t{i}")}}));
        doc["contexts"].as_array_mut().unwrap().push(
            json!({"name": name, "context": {"cluster": name, "user": name, "namespace": "ns"}}),
        );
    }
    serde_saphyr::to_string(&doc).unwrap()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// ---- export ---------------------------------------------------------------------------------

#[test]
fn export_renames_everything_to_the_profile_and_sets_the_server() {
    let kc = exported();
    assert_eq!(kc.clusters.len(), 1);
    assert_eq!(kc.clusters[0].name, PROFILE);
    let cluster = kc.clusters[0].cluster.as_ref().unwrap();
    assert_eq!(cluster.server.as_deref(), Some(SERVER));
    assert_eq!(
        cluster.certificate_authority_data.as_deref(),
        Some("Q0EtREFUQQ==")
    );
    assert_eq!(kc.auth_infos[0].name, PROFILE);
    assert_eq!(
        kc.auth_infos[0]
            .auth_info
            .as_ref()
            .unwrap()
            .client_certificate_data
            .as_deref(),
        Some("Q0VSVC1EQVRB")
    );
    let context = kc.contexts[0].context.as_ref().unwrap();
    assert_eq!(
        (kc.contexts[0].name.as_str(), context.cluster.as_str()),
        (PROFILE, PROFILE)
    );
    assert_eq!(context.user.as_deref(), Some(PROFILE));
    assert_eq!(kc.current_context.as_deref(), Some(PROFILE));
    assert_eq!(local_server(40123), SERVER);

    // What kubectl makes of it, including the secret key data (written in plain text).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exported");
    std::fs::write(&file, to_yaml(&kc).unwrap()).unwrap();
    let v = view(&file);
    assert_eq!(v["current-context"], PROFILE);
    assert_eq!(v["clusters"][0]["cluster"]["server"], SERVER);
    assert_eq!(v["users"][0]["user"]["client-key-data"], "S0VZLURBVEE=");
}

#[test]
fn export_rejects_a_broken_admin_conf_with_the_bootstrap_reason() {
    for (conf, why) in [
        ("{{{", "cannot be parsed"),
        ("apiVersion: v1\nkind: Config\n", "has no current context"),
        (
            &ADMIN_CONF.replace("    user: kubernetes-admin", "    user: nobody") as &str,
            "has no user \"nobody\"",
        ),
        (
            &ADMIN_CONF.replace("    cluster: minik", "    cluster: other") as &str,
            "has no cluster \"other\"",
        ),
    ] {
        let err = export(conf, PROFILE, SERVER).unwrap_err();
        assert_eq!(classify(&err).0.id, "K8S_BOOTSTRAP", "{conf}");
        assert!(err.to_string().contains(why), "{err}");
    }
    assert!(export(ADMIN_CONF, PROFILE, "http://127.0.0.1:1").is_err());
}

// ---- target path ----------------------------------------------------------------------------

#[test]
fn target_path_follows_kubeconfig_then_home() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let home = dir.path().join("home");
    let list = |paths: &[&Path]| std::env::join_paths(paths).unwrap();

    // Nothing exists: the last entry.
    assert_eq!(target_path(Some(&list(&[&a, &b])), Some(&home)).unwrap(), b);
    // The first existing file wins, wherever it is in the list.
    std::fs::write(&c, "").unwrap();
    assert_eq!(
        target_path(Some(&list(&[&a, &b, &c])), Some(&home)).unwrap(),
        c
    );
    std::fs::write(&b, "").unwrap();
    assert_eq!(
        target_path(Some(&list(&[&a, &b, &c])), Some(&home)).unwrap(),
        b
    );
    // A directory is not a kubeconfig file.
    std::fs::create_dir(&a).unwrap();
    assert_eq!(target_path(Some(&list(&[&a, &c])), Some(&home)).unwrap(), c);
    // Empty entries and duplicates are dropped.
    let env = OsString::from(format!(
        "::{}::{}:{}:",
        c.display(),
        b.display(),
        c.display()
    ));
    assert_eq!(kubeconfig_paths(Some(&env)), vec![c.clone(), b.clone()]);
    // Unset or empty $KUBECONFIG: ~/.kube/config.
    assert_eq!(
        target_path(None, Some(&home)).unwrap(),
        home.join(".kube/config")
    );
    assert_eq!(
        target_path(Some(OsStr::new("")), Some(&home)).unwrap(),
        home.join(".kube/config")
    );
    let err = target_path(None, None).unwrap_err();
    assert_eq!(classify(&err).0.id, "HOST_KUBECONFIG");
}

// ---- merge ----------------------------------------------------------------------------------

#[test]
fn merge_into_a_missing_file_creates_it_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new-dir/.kube/config");
    merge_into(&path, &exported(), true, DEFAULT_LOCK_TIMEOUT).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert!(!KubeconfigLock::path_for(&path).exists(), "lock removed");
    let v = view(&path);
    assert_eq!(names(&v, "contexts"), [PROFILE]);
    assert_eq!(v["current-context"], PROFILE);
    let contexts = kubectl(path.as_os_str(), &["config", "get-contexts"]);
    let line = contexts.lines().find(|l| l.contains(PROFILE)).unwrap();
    assert!(line.starts_with('*'), "{contexts}");
}

#[test]
fn merge_keeps_every_foreign_entry_and_unknown_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, busy_with_many(60)).unwrap();
    let before_view = view(&path);
    let before_tree = tree(&path);

    merge_into(&path, &exported(), true, DEFAULT_LOCK_TIMEOUT).unwrap();

    // kubectl's view: every foreign entry identical, ours replaced in place, current switched.
    let after_view = view(&path);
    for list in LISTS {
        assert_eq!(
            others(&after_view, list, PROFILE),
            others(&before_view, list, PROFILE),
            "{list}"
        );
        assert_eq!(
            names(&after_view, list),
            names(&before_view, list),
            "{list}: same names"
        );
        assert_eq!(
            names(&tree(&path), list),
            names(&before_tree, list),
            "{list}: same order in the file"
        );
    }
    assert_eq!(names(&after_view, "contexts").len(), 63);
    let ours = after_view["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == PROFILE)
        .unwrap();
    assert_eq!(ours["cluster"]["server"], SERVER);
    assert!(
        ours["cluster"].get("insecure-skip-tls-verify").is_none(),
        "stale entry replaced, not merged"
    );
    let user = after_view["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == PROFILE)
        .unwrap();
    assert_eq!(user["user"]["client-key-data"], "S0VZLURBVEE=");
    assert!(user["user"].get("token").is_none());
    assert_eq!(after_view["current-context"], PROFILE);
    assert_eq!(after_view["preferences"], before_view["preferences"]);
    // The exec plugin user, as kubectl reads it.
    let eks = after_view["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "eks-admin")
        .unwrap();
    assert_eq!(eks["user"]["exec"]["command"], "aws");
    assert_eq!(
        eks["user"]["exec"]["args"],
        json!(["eks", "get-token", "--cluster-name", "prod"])
    );
    assert_eq!(
        eks["user"]["exec"]["env"],
        json!([{"name": "AWS_PROFILE", "value": "prod"}])
    );

    // The file itself: unknown fields at every level, relative paths not rewritten.
    let after_tree = tree(&path);
    for key in [
        "x-top-unknown",
        "extensions",
        "preferences",
        "apiVersion",
        "kind",
    ] {
        assert_eq!(after_tree[key], before_tree[key], "{key}");
    }
    for list in LISTS {
        assert_eq!(
            others(&after_tree, list, PROFILE),
            others(&before_tree, list, PROFILE),
            "{list}"
        );
    }
    let prod = &after_tree["clusters"][0]["cluster"];
    assert_eq!(prod["x-vendor-field"], "keep-me");
    assert_eq!(
        after_tree["clusters"][2]["cluster"]["certificate-authority"],
        "../certs/staging-ca.crt"
    );
    assert_eq!(after_tree["users"][2]["user"]["x-user-unknown"], 42);

    // get-contexts marks ours as current and still lists the foreign ones.
    let table = kubectl(path.as_os_str(), &["config", "get-contexts"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with('*') && l.split_whitespace().nth(1) == Some(PROFILE)),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().next() == Some("prod")),
        "{table}"
    );
    assert_eq!(
        kubectl(path.as_os_str(), &["config", "current-context"]).trim(),
        PROFILE
    );
}

#[test]
fn keep_context_leaves_current_context_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, BUSY).unwrap();
    merge_into(&path, &exported(), false, DEFAULT_LOCK_TIMEOUT).unwrap();
    assert_eq!(
        kubectl(path.as_os_str(), &["config", "current-context"]).trim(),
        "prod"
    );
    assert_eq!(
        endpoint_of(&path, PROFILE).unwrap().as_deref(),
        Some(SERVER)
    );
}

#[test]
fn merge_is_idempotent_and_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, BUSY).unwrap();
    merge_into(&path, &exported(), true, DEFAULT_LOCK_TIMEOUT).unwrap();
    let once = std::fs::read(&path).unwrap();
    merge_into(&path, &exported(), true, DEFAULT_LOCK_TIMEOUT).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), once);
}

#[test]
fn duplicate_entries_of_the_profile_collapse_into_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    let dup = BUSY.replace(
        "- name: staging\n  cluster:",
        "- name: minik\n  cluster:\n    server: https://dup\n- name: staging\n  cluster:",
    );
    std::fs::write(&path, dup).unwrap();
    merge_into(&path, &exported(), true, DEFAULT_LOCK_TIMEOUT).unwrap();
    // The file keeps its order (kubectl's view sorts by name, so look at the file itself).
    assert_eq!(
        names(&tree(&path), "clusters"),
        ["prod", PROFILE, "staging"]
    );
    assert_eq!(
        names(&view(&path), "clusters"),
        [PROFILE, "prod", "staging"]
    );
}

#[test]
fn kubeconfig_list_merges_into_the_first_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let (missing, first, second) = (
        dir.path().join("missing"),
        dir.path().join("first"),
        dir.path().join("second"),
    );
    std::fs::write(&first, BUSY).unwrap();
    let other = "apiVersion: v1\nkind: Config\nclusters:\n- name: lab\n  cluster:\n    server: https://lab:6443\n\
                 users:\n- name: lab\n  user:\n    token: x\ncontexts:\n- name: lab\n  context:\n    cluster: lab\n    user: lab\n\
                 current-context: lab\n";
    std::fs::write(&second, other).unwrap();
    let env = std::env::join_paths([&missing, &first, &second]).unwrap();

    let target = target_path(Some(&env), None).unwrap();
    assert_eq!(target, first);
    merge_into(&target, &exported(), true, DEFAULT_LOCK_TIMEOUT).unwrap();

    assert!(!missing.exists());
    assert_eq!(
        std::fs::read_to_string(&second).unwrap(),
        other,
        "other files untouched"
    );
    let names_out = kubectl(&env, &["config", "get-contexts", "-o", "name"]);
    let mut listed: Vec<&str> = names_out.lines().collect();
    listed.sort();
    assert_eq!(listed, ["lab", PROFILE, "prod", "staging"]);
    assert_eq!(
        kubectl(&env, &["config", "current-context"]).trim(),
        PROFILE
    );
    let merged: Value = serde_json::from_str(&kubectl(
        &env,
        &["config", "view", "-o", "json", "--raw", "--minify"],
    ))
    .unwrap();
    assert_eq!(merged["clusters"][0]["cluster"]["server"], SERVER);
}

#[test]
fn symlinked_kubeconfig_keeps_its_link() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("dotfiles/kubeconfig");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    std::fs::write(&real, BUSY).unwrap();
    let link = dir.path().join("config");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    merge_into(&link, &exported(), true, DEFAULT_LOCK_TIMEOUT).unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(view(&real)["current-context"], PROFILE);
    assert_eq!(mode(&real), 0o600);
}

#[test]
fn existing_file_is_rewritten_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, BUSY).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    merge_into(&path, &exported(), true, DEFAULT_LOCK_TIMEOUT).unwrap();
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn unparsable_file_is_left_untouched_with_a_clear_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (content, why) in [
        ("clusters: [\n", "cannot parse"),
        ("- just\n- a list\n", "top level is not a mapping"),
        ("clusters: nope\n", "`clusters` is not a list"),
        ("a: 1\n---\nb: 2\n", "2 YAML documents"),
    ] {
        let path = dir.path().join("config");
        std::fs::write(&path, content).unwrap();
        let err = merge_into(&path, &exported(), true, DEFAULT_LOCK_TIMEOUT).unwrap_err();
        assert_eq!(classify(&err).0.id, "HOST_KUBECONFIG", "{content}");
        assert!(err.to_string().contains(why), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "names the file: {err}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
        assert!(
            !KubeconfigLock::path_for(&path).exists(),
            "lock released on error"
        );
    }
}

#[test]
fn empty_file_is_treated_as_empty_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, "\n# nothing yet\n").unwrap();
    merge_into(&path, &exported(), true, DEFAULT_LOCK_TIMEOUT).unwrap();
    assert_eq!(names(&view(&path), "users"), [PROFILE]);
}

// ---- crash safety ---------------------------------------------------------------------------

#[test]
fn crash_between_write_and_rename_leaves_the_old_file_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, BUSY).unwrap();
    let crash = || Err(std::io::Error::other("simulated crash before rename"));
    let err =
        merge_into_with(&path, &exported(), true, DEFAULT_LOCK_TIMEOUT, Some(&crash)).unwrap_err();
    assert_eq!(classify(&err).0.id, "HOST_KUBECONFIG");
    assert!(err.to_string().contains("simulated crash"), "{err}");

    // The old file, byte for byte, still valid for kubectl; the new content only in the
    // leftover temporary file, as after a real crash.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), BUSY);
    assert_eq!(
        kubectl(path.as_os_str(), &["config", "current-context"]).trim(),
        "prod"
    );
    let leftovers: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".minik-kubeconfig-")
        })
        .collect();
    assert_eq!(leftovers.len(), 1);
    assert_eq!(
        mode(&leftovers[0]),
        0o600,
        "even the leftover holds credentials at 0600"
    );
    assert!(
        std::fs::read_to_string(&leftovers[0])
            .unwrap()
            .contains(SERVER)
    );
    assert!(!KubeconfigLock::path_for(&path).exists(), "lock released");

    // The next run is not disturbed by the leftover.
    merge_into(&path, &exported(), true, DEFAULT_LOCK_TIMEOUT).unwrap();
    assert_eq!(view(&path)["current-context"], PROFILE);
}

#[test]
fn the_old_file_is_replaced_not_rewritten_in_place() {
    // A hard link to the old inode keeps the old content: the write went to a new file that
    // was renamed over the name, so readers never see a partially written file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, BUSY).unwrap();
    let old = dir.path().join("old-inode");
    std::fs::hard_link(&path, &old).unwrap();
    merge_into(&path, &exported(), true, DEFAULT_LOCK_TIMEOUT).unwrap();
    assert_eq!(std::fs::read_to_string(&old).unwrap(), BUSY);
    assert_ne!(std::fs::read_to_string(&path).unwrap(), BUSY);
}

// ---- locking --------------------------------------------------------------------------------

#[test]
fn lock_held_by_another_process_times_out_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, BUSY).unwrap();
    let lock = KubeconfigLock::path_for(&path);
    // Another process takes the lock the client-go way (O_EXCL: `set -C` in sh) and holds it.
    let mut holder = Command::new("sh")
        .args([
            "-c",
            "set -C; : > \"$0\" && exec sleep 30",
            lock.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lock.exists() {
        assert!(
            Instant::now() < deadline,
            "the holder never created the lock"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let start = Instant::now();
    let err = merge_into(&path, &exported(), true, Duration::from_millis(300)).unwrap_err();
    let waited = start.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();

    let (reason, advice) = classify(&err);
    assert_eq!(reason.id, "HOST_LOCK_TIMEOUT");
    let message = err.to_string();
    assert!(
        message.contains(&lock.display().to_string()),
        "names the lock file: {message}"
    );
    assert!(message.contains("timed out after 0.3s"), "{message}");
    assert!(
        advice
            .unwrap()
            .contains(&format!("remove {}", lock.display()))
    );
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(lock.exists(), "someone else's lock is never removed");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        BUSY,
        "file untouched"
    );

    // remove_from and update_server wait for the same lock.
    let err = remove_from(&path, "prod", Duration::from_millis(50)).unwrap_err();
    assert_eq!(classify(&err).0.id, "HOST_LOCK_TIMEOUT");
    let err = update_server(&path, PROFILE, SERVER, false, Duration::from_millis(50)).unwrap_err();
    assert_eq!(classify(&err).0.id, "HOST_LOCK_TIMEOUT");
}

#[test]
fn waits_for_a_lock_released_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, BUSY).unwrap();
    let lock = KubeconfigLock::path_for(&path);
    std::fs::write(&lock, "").unwrap();
    let releaser = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            std::fs::remove_file(lock).unwrap();
        })
    };
    merge_into(&path, &exported(), true, Duration::from_secs(10)).unwrap();
    releaser.join().unwrap();
    assert!(!lock.exists());
    assert_eq!(view(&path)["current-context"], PROFILE);
}

#[test]
fn kubectl_honours_our_lock_and_we_honour_its_scheme() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, BUSY).unwrap();
    let held = KubeconfigLock::acquire(&path, DEFAULT_LOCK_TIMEOUT).unwrap();
    assert_eq!(held.path(), KubeconfigLock::path_for(&path));
    let out = Command::new(kubectl_bin())
        .args(["config", "set-context", "blocked", "--cluster", "prod"])
        .env("KUBECONFIG", &path)
        .output()
        .expect("kubectl is required by these tests (.ci/run installs it)");
    assert!(
        !out.status.success(),
        "kubectl wrote while minik held the lock"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(".lock"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(held);
    kubectl(
        path.as_os_str(),
        &["config", "set-context", "unblocked", "--cluster", "prod"],
    );
    // And kubectl can read and extend what minik wrote.
    merge_into(&path, &exported(), true, DEFAULT_LOCK_TIMEOUT).unwrap();
    kubectl(
        path.as_os_str(),
        &["config", "set-context", "after", "--cluster", PROFILE],
    );
    let listed = kubectl(path.as_os_str(), &["config", "get-contexts", "-o", "name"]);
    for name in ["unblocked", PROFILE, "after", "prod"] {
        assert!(listed.lines().any(|l| l == name), "{name} in {listed}");
    }
}

// ---- remove, update, status -----------------------------------------------------------------

#[test]
fn remove_drops_the_three_entries_and_clears_only_its_own_current_context() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, busy_with_many(10)).unwrap();
    merge_into(&path, &exported(), true, DEFAULT_LOCK_TIMEOUT).unwrap();
    let before = view(&path);

    assert!(remove_from(&path, PROFILE, DEFAULT_LOCK_TIMEOUT).unwrap());
    let after = view(&path);
    for list in LISTS {
        assert!(
            !names(&after, list).contains(&PROFILE.to_string()),
            "{list}"
        );
        assert_eq!(
            others(&after, list, PROFILE),
            others(&before, list, PROFILE),
            "{list}"
        );
    }
    assert_eq!(after["current-context"], "");
    assert_eq!(tree(&path)["x-top-unknown"], json!({"nested": [1, 2, 3]}));
    let table = kubectl(path.as_os_str(), &["config", "get-contexts"]);
    assert!(
        !table.lines().any(|l| l.starts_with('*')),
        "no current context: {table}"
    );
    assert_eq!(mode(&path), 0o600);

    // Nothing left to remove: no write at all.
    let bytes = std::fs::read(&path).unwrap();
    assert!(!remove_from(&path, PROFILE, DEFAULT_LOCK_TIMEOUT).unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn remove_keeps_a_current_context_that_points_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, BUSY).unwrap();
    assert!(remove_from(&path, PROFILE, DEFAULT_LOCK_TIMEOUT).unwrap());
    assert_eq!(
        kubectl(path.as_os_str(), &["config", "current-context"]).trim(),
        "prod"
    );
    assert_eq!(names(&view(&path), "contexts"), ["prod", "staging"]);
}

#[test]
fn remove_from_a_missing_file_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent/config");
    assert!(!remove_from(&path, PROFILE, DEFAULT_LOCK_TIMEOUT).unwrap());
    assert!(!path.exists());
    assert!(!dir.path().join("absent").exists());
}

#[test]
fn endpoint_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    assert_eq!(endpoint_of(&path, PROFILE).unwrap(), None, "missing file");
    assert_eq!(
        status(&path, PROFILE, SERVER),
        KubeconfigStatus::Misconfigured
    );

    std::fs::write(&path, BUSY).unwrap();
    assert_eq!(
        endpoint_of(&path, PROFILE).unwrap().as_deref(),
        Some("https://127.0.0.1:1111")
    );
    assert_eq!(
        endpoint_of(&path, "prod").unwrap().as_deref(),
        Some("https://prod.example.com:443")
    );
    assert_eq!(endpoint_of(&path, "nope").unwrap(), None);
    assert_eq!(
        status(&path, PROFILE, SERVER),
        KubeconfigStatus::Misconfigured
    );

    merge_into(&path, &exported(), false, DEFAULT_LOCK_TIMEOUT).unwrap();
    assert_eq!(status(&path, PROFILE, SERVER), KubeconfigStatus::Configured);
    assert_eq!(KubeconfigStatus::Configured.as_str(), "Configured");
    assert_eq!(KubeconfigStatus::Misconfigured.as_str(), "Misconfigured");

    std::fs::write(&path, "clusters: [").unwrap();
    assert_eq!(
        status(&path, PROFILE, SERVER),
        KubeconfigStatus::Misconfigured
    );
    assert_eq!(
        classify(&endpoint_of(&path, PROFILE).unwrap_err()).0.id,
        "HOST_KUBECONFIG"
    );
}

#[test]
fn update_server_repairs_a_drifted_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, BUSY).unwrap();
    let before = view(&path);
    assert!(update_server(&path, PROFILE, SERVER, true, DEFAULT_LOCK_TIMEOUT).unwrap());
    let after = view(&path);
    assert_eq!(
        endpoint_of(&path, PROFILE).unwrap().as_deref(),
        Some(SERVER)
    );
    assert_eq!(after["current-context"], PROFILE);
    // Only the server changed: the rest of the entry (insecure-skip-tls-verify) stays.
    let ours = after["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == PROFILE)
        .unwrap();
    assert_eq!(ours["cluster"]["insecure-skip-tls-verify"], true);
    assert_eq!(
        others(&after, "clusters", PROFILE),
        others(&before, "clusters", PROFILE)
    );

    assert!(!update_server(&path, "ghost", SERVER, true, DEFAULT_LOCK_TIMEOUT).unwrap());
    assert!(
        !update_server(
            &dir.path().join("absent"),
            PROFILE,
            SERVER,
            true,
            DEFAULT_LOCK_TIMEOUT
        )
        .unwrap()
    );
}

#[test]
fn long_certificate_data_stays_on_one_line() {
    // Real certificate data is ~1.5 KB of base64: written as one plain scalar, as kubectl does.
    let long = "QUJD".repeat(500);
    let conf = ADMIN_CONF.replace("Q0EtREFUQQ==", &long);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    merge_into(
        &path,
        &export(&conf, PROFILE, SERVER).unwrap(),
        true,
        DEFAULT_LOCK_TIMEOUT,
    )
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(&format!("    certificate-authority-data: {long}\n")),
        "{text}"
    );
    assert_eq!(
        view(&path)["clusters"][0]["cluster"]["certificate-authority-data"],
        long.as_str()
    );
}
