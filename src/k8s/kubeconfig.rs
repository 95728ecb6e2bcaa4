//! The user's kubeconfig: exporting the cluster's admin credentials under the profile's name,
//! merging them into the right file, and removing them again.
//!
//! Rules (kind's and client-go's, see shared reference kind.md §4 and minikube.md §7):
//! - cluster, user and context are all named after the profile; the server is
//!   `https://127.0.0.1:<published port>`;
//! - the file is the first existing entry of `$KUBECONFIG`, else its last entry, else
//!   `~/.kube/config` ([`target_path`]);
//! - writers take `<file>.lock`, created with O_EXCL exactly as client-go (kubectl) does, so
//!   minik and kubectl never interleave; minik waits for it up to a timeout;
//! - entries of the same name are replaced in place, everything else (foreign clusters, users
//!   with exec plugins, contexts, `preferences`, `extensions`, unknown fields at any level) is
//!   kept; the file is replaced atomically (temp file in the same directory, fsync, rename) with
//!   mode 0600, so a crash leaves the old file or the new one, never half of one.
//!
//! Why the merge edits a generic YAML tree rather than a parsed [`Kubeconfig`]: kube's types
//! are exact for the entries minik writes (built with them here), but lossy for someone else's:
//! a context without `cluster` (valid for kubectl) fails to parse, and a round trip adds
//! `user: null` and `provideClusterInfo: false`. Editing the tree keeps foreign entries exactly
//! as they were (keys are written in sorted order, as kubectl writes them). Also, kube's
//! `Kubeconfig::read_from` rewrites relative certificate and exec paths to absolute ones, a
//! side effect that must not be written back; nothing here uses it.
//!
//! The functions that write are blocking (file I/O and lock waits): from async code, call
//! them through `tokio::task::spawn_blocking`.

use kube::config::{Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext};
use serde_json::{Map, Value};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What went wrong with a kubeconfig (reasons: `crate::errors`).
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// A file or directory cannot be read, written or created, or there is no file to use.
    #[error("{0}")]
    File(String),
    /// The file is not a valid kubeconfig.
    #[error("{0}")]
    Invalid(String),
    /// Another program holds `<file>.lock`.
    #[error("{message}")]
    LockTimeout { message: String, advice: String },
    /// The control plane's admin.conf is not what kubeadm writes.
    #[error("{0}")]
    BadAdminConf(String),
    /// A bug: minik built something it cannot serialize or use.
    #[error("{0}")]
    Internal(String),
}

type Result<T, E = KubeconfigError> = std::result::Result<T, E>;

/// How long writers wait for another program's `<file>.lock` by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The three kinds of named entries in a kubeconfig, as their YAML list keys.
const LISTS: [&str; 3] = ["clusters", "users", "contexts"];

/// `https://127.0.0.1:<port>`: the API server as the host reaches it through the published port.
pub fn local_server(port: u16) -> String {
    format!("https://127.0.0.1:{port}")
}

/// Builds the profile's kubeconfig from kubeadm's `admin.conf` (read from the first control
/// plane): its current context's cluster and user, all three renamed to `profile`, the server
/// set to `server` (e.g. [`local_server`]), and `current-context: profile`.
///
/// Fails with `K8S_BOOTSTRAP` when admin.conf is not what kubeadm writes.
pub fn export(admin_conf_yaml: &str, profile: &str, server: &str) -> Result<Kubeconfig> {
    let bad = |why: String| {
        KubeconfigError::BadAdminConf(format!("the control plane's admin.conf {why}"))
    };
    if !server.starts_with("https://") {
        return Err(KubeconfigError::Internal(format!(
            "kubeconfig server {server:?} is not an https URL"
        )));
    }
    let admin = Kubeconfig::from_yaml(admin_conf_yaml)
        .map_err(|e| bad(format!("cannot be parsed: {e}")))?;
    let context = match (&admin.current_context, admin.contexts.as_slice()) {
        (Some(name), contexts) if !name.is_empty() => contexts.iter().find(|c| &c.name == name),
        (_, [only]) => Some(only),
        _ => None,
    }
    .and_then(|c| c.context.as_ref())
    .ok_or_else(|| bad("has no current context".into()))?;
    let cluster = admin
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| bad(format!("has no cluster {:?}", context.cluster)))?;
    let user_name = context.user.clone().unwrap_or_default();
    let user = admin
        .auth_infos
        .iter()
        .find(|u| u.name == user_name)
        .and_then(|u| u.auth_info.clone())
        .ok_or_else(|| bad(format!("has no user {user_name:?}")))?;

    let mut cluster = cluster;
    cluster.server = Some(server.to_string());
    Ok(Kubeconfig {
        api_version: Some("v1".into()),
        kind: Some("Config".into()),
        clusters: vec![NamedCluster {
            name: profile.into(),
            cluster: Some(cluster),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: profile.into(),
            auth_info: Some(user),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: profile.into(),
            context: Some(Context {
                cluster: profile.into(),
                user: Some(profile.into()),
                namespace: context.namespace.clone(),
                extensions: None,
                other: Default::default(),
            }),
            other: Default::default(),
        }],
        current_context: Some(profile.into()),
        ..Kubeconfig::default()
    })
}

/// The `$KUBECONFIG` list: split on the OS list separator, empty entries and duplicates
/// dropped (client-go's rule).
pub fn kubeconfig_paths(kubeconfig_env: Option<&OsStr>) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = Vec::new();
    if let Some(value) = kubeconfig_env {
        for p in std::env::split_paths(value) {
            if !p.as_os_str().is_empty() && !paths.contains(&p) {
                paths.push(p);
            }
        }
    }
    paths
}

/// The file to write: the first existing file of `$KUBECONFIG` (`kubeconfig_env`), else its
/// last entry, else `<home>/.kube/config`. Fails with `HOST_KUBECONFIG` when there is neither a
/// `$KUBECONFIG` nor a home directory.
pub fn target_path(kubeconfig_env: Option<&OsStr>, home: Option<&Path>) -> Result<PathBuf> {
    let paths = kubeconfig_paths(kubeconfig_env);
    if let Some(existing) = paths.iter().find(|p| p.is_file()) {
        return Ok(existing.clone());
    }
    if let Some(last) = paths.last() {
        return Ok(last.clone());
    }
    match home {
        Some(home) => Ok(home.join(".kube").join("config")),
        None => Err(KubeconfigError::File(
            "cannot find the home directory for ~/.kube/config; set KUBECONFIG".into(),
        )),
    }
}

/// [`target_path`] for this process's `$KUBECONFIG` and home directory.
pub fn target_path_from_env() -> Result<PathBuf> {
    let env = std::env::var_os("KUBECONFIG");
    target_path(env.as_deref(), dirs::home_dir().as_deref())
}

/// Merges `config` into the user's kubeconfig file (`$KUBECONFIG`'s first entry or
/// `~/.kube/config`) off the async runtime, waiting up to [`DEFAULT_LOCK_TIMEOUT`] for its lock;
/// returns the file's path.
pub async fn merge_into_target(config: Kubeconfig, set_current: bool) -> anyhow::Result<PathBuf> {
    tokio::task::spawn_blocking(move || {
        let path = target_path_from_env()?;
        merge_into(&path, &config, set_current, DEFAULT_LOCK_TIMEOUT)?;
        anyhow::Ok(path)
    })
    .await
    .map_err(|e| KubeconfigError::Internal(format!("kubeconfig writer panicked: {e}")))?
}

/// Merges `new`'s clusters, users and contexts into the kubeconfig at `path` (created when
/// missing), replacing same-named entries and keeping everything else. When `set_current`,
/// `current-context` becomes `new`'s current context (or its first context); otherwise it is
/// left alone (`--keep-context`).
///
/// Waits up to `lock_timeout` for `<path>.lock` (`HOST_LOCK_TIMEOUT` after that). Fails with
/// `HOST_KUBECONFIG`, leaving the file untouched, when it cannot be parsed or written.
pub fn merge_into(
    path: &Path,
    new: &Kubeconfig,
    set_current: bool,
    lock_timeout: Duration,
) -> Result<()> {
    merge_into_with(path, new, set_current, lock_timeout, None)
}

fn merge_into_with(
    path: &Path,
    new: &Kubeconfig,
    set_current: bool,
    lock_timeout: Duration,
    fault: Option<&dyn Fn() -> std::io::Result<()>>,
) -> Result<()> {
    let entries = typed_entries(new)?;
    let current = new
        .current_context
        .clone()
        .or_else(|| new.contexts.first().map(|c| c.name.clone()));
    if set_current && current.is_none() {
        return Err(KubeconfigError::Internal(
            "the kubeconfig to merge has no context".into(),
        ));
    }
    let _lock = KubeconfigLock::acquire(path, lock_timeout)?;
    let mut doc = read_tree(path)?;
    let top = top_level(&mut doc, path)?;
    for (list_key, items) in LISTS.iter().zip(entries) {
        let list = named_list(top, list_key, path)?;
        for item in items {
            upsert(list, item);
        }
    }
    top.entry("apiVersion").or_insert_with(|| Value::from("v1"));
    top.entry("kind").or_insert_with(|| Value::from("Config"));
    if set_current && let Some(current) = current {
        top.insert("current-context".into(), Value::from(current));
    }
    write_tree(path, &doc, fault)
}

/// Removes the profile's cluster, user and context from the kubeconfig at `path`, and clears
/// `current-context` only if it named the profile. Returns whether anything changed (a missing
/// file, or one without the entries, is left as it is).
pub fn remove_from(path: &Path, profile: &str, lock_timeout: Duration) -> Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    let _lock = KubeconfigLock::acquire(path, lock_timeout)?;
    let mut doc = read_tree(path)?;
    let top = top_level(&mut doc, path)?;
    let mut changed = false;
    for list_key in LISTS {
        if let Some(Value::Array(list)) = top.get_mut(list_key) {
            let before = list.len();
            list.retain(|item| entry_name(item) != Some(profile));
            changed |= list.len() != before;
        }
    }
    if top.get("current-context").and_then(Value::as_str) == Some(profile) {
        // kubectl's spelling of "no current context".
        top.insert("current-context".into(), Value::from(""));
        changed = true;
    }
    if changed {
        write_tree(path, &doc, None)?;
    }
    Ok(changed)
}

/// Sets the server of the profile's cluster (`minik update-context`), and the current context
/// when `set_current`. Returns false, without writing, when the profile's context or cluster is
/// missing: the caller then exports the whole entry again.
pub fn update_server(
    path: &Path,
    profile: &str,
    server: &str,
    set_current: bool,
    lock_timeout: Duration,
) -> Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    let _lock = KubeconfigLock::acquire(path, lock_timeout)?;
    let mut doc = read_tree(path)?;
    let top = top_level(&mut doc, path)?;
    let Some(cluster_name) = context_cluster(top, profile) else {
        return Ok(false);
    };
    let Some(Value::Array(clusters)) = top.get_mut("clusters") else {
        return Ok(false);
    };
    let Some(Value::Object(cluster)) = clusters
        .iter_mut()
        .find(|c| entry_name(c) == Some(cluster_name.as_str()))
        .and_then(|c| c.get_mut("cluster"))
    else {
        return Ok(false);
    };
    cluster.insert("server".into(), Value::from(server));
    if set_current {
        top.insert("current-context".into(), Value::from(profile));
    }
    write_tree(path, &doc, None)?;
    Ok(true)
}

/// The server of the profile's context in the kubeconfig at `path`, if there is one (status
/// compares it with the published port: Configured or Misconfigured).
pub fn endpoint_of(path: &Path, profile: &str) -> Result<Option<String>> {
    let mut doc = read_tree(path)?;
    let top = top_level(&mut doc, path)?;
    let Some(cluster_name) = context_cluster(top, profile) else {
        return Ok(None);
    };
    let server = top
        .get("clusters")
        .and_then(Value::as_array)
        .and_then(|list| {
            list.iter()
                .find(|c| entry_name(c) == Some(cluster_name.as_str()))
        })
        .and_then(|c| c.get("cluster"))
        .and_then(|c| c.get("server"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(server)
}

/// The kubeconfig component of `minik status`, as minikube names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeconfigStatus {
    /// The profile's context points at the expected server.
    Configured,
    /// The context is missing, points elsewhere, or the file cannot be read.
    Misconfigured,
}

impl KubeconfigStatus {
    /// `Configured` / `Misconfigured`.
    pub fn as_str(self) -> &'static str {
        match self {
            KubeconfigStatus::Configured => "Configured",
            KubeconfigStatus::Misconfigured => "Misconfigured",
        }
    }
}

/// Configured when the profile's server in `path` is `expected_server`.
pub fn status(path: &Path, profile: &str, expected_server: &str) -> KubeconfigStatus {
    match endpoint_of(path, profile) {
        Ok(Some(server)) if server == expected_server => KubeconfigStatus::Configured,
        _ => KubeconfigStatus::Misconfigured,
    }
}

/// Serializes a kubeconfig as YAML (`apiVersion: v1`, `kind: Config` filled in), e.g. for a
/// temporary file given to `kubectl --kubeconfig`. Keys are sorted; output is deterministic.
pub fn to_yaml(config: &Kubeconfig) -> Result<String> {
    let mut value = serde_json::to_value(config)
        .map_err(|e| KubeconfigError::Internal(format!("cannot serialize the kubeconfig: {e}")))?;
    if let Value::Object(top) = &mut value {
        top.entry("apiVersion").or_insert_with(|| Value::from("v1"));
        top.entry("kind").or_insert_with(|| Value::from("Config"));
    }
    yaml_string(&value)
}

/// The profile's entries of `new` as generic trees, in [`LISTS`] order.
fn typed_entries(new: &Kubeconfig) -> Result<[Vec<Value>; 3]> {
    fn values<T: serde::Serialize>(items: &[T]) -> Result<Vec<Value>> {
        items
            .iter()
            .map(|i| {
                serde_json::to_value(i).map_err(|e| {
                    KubeconfigError::Internal(format!("cannot serialize the kubeconfig: {e}"))
                })
            })
            .collect()
    }
    Ok([
        values(&new.clusters)?,
        values(&new.auth_infos)?,
        values(&new.contexts)?,
    ])
}

fn entry_name(item: &Value) -> Option<&str> {
    item.get("name").and_then(Value::as_str)
}

/// Replaces the first entry of the same name in place (keeping the file's order, so diffs
/// stay small) and drops any later duplicates; appends when there is none.
fn upsert(list: &mut Vec<Value>, item: Value) {
    let Some(name) = entry_name(&item).map(str::to_string) else {
        return;
    };
    match list
        .iter()
        .position(|e| entry_name(e) == Some(name.as_str()))
    {
        Some(first) => {
            list[first] = item;
            let mut index = 0;
            list.retain(|e| {
                let keep = index <= first || entry_name(e) != Some(name.as_str());
                index += 1;
                keep
            });
        }
        None => list.push(item),
    }
}

fn context_cluster(top: &Map<String, Value>, profile: &str) -> Option<String> {
    top.get("contexts")?
        .as_array()?
        .iter()
        .find(|c| entry_name(c) == Some(profile))?
        .get("context")?
        .get("cluster")?
        .as_str()
        .map(str::to_string)
}

fn top_level<'a>(doc: &'a mut Value, path: &Path) -> Result<&'a mut Map<String, Value>> {
    if doc.is_null() {
        *doc = Value::Object(Map::new());
    }
    doc.as_object_mut().ok_or_else(|| {
        KubeconfigError::Invalid(format!(
            "{} is not a kubeconfig: its top level is not a mapping",
            path.display()
        ))
    })
}

fn named_list<'a>(
    top: &'a mut Map<String, Value>,
    key: &str,
    path: &Path,
) -> Result<&'a mut Vec<Value>> {
    let slot = top.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut().ok_or_else(|| {
        KubeconfigError::Invalid(format!(
            "{} is not a valid kubeconfig: `{key}` is not a list",
            path.display()
        ))
    })
}

/// Reads the file as a YAML tree. Missing or empty file: an empty tree (Null).
fn read_tree(path: &Path) -> Result<Value> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Value::Null),
        Err(e) => {
            return Err(KubeconfigError::File(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let mut docs: Vec<Value> = serde_saphyr::from_multiple(&text)
        .map_err(|e| KubeconfigError::Invalid(format!("cannot parse {}: {e}", path.display())))?;
    match docs.len() {
        0 => Ok(Value::Null),
        1 => Ok(docs.remove(0)),
        n => Err(KubeconfigError::Invalid(format!(
            "{} holds {n} YAML documents; a kubeconfig file must hold one",
            path.display()
        ))),
    }
}

fn yaml_string(value: &Value) -> Result<String> {
    let mut options = serde_saphyr::SerializerOptions::default();
    // Long base64 certificate data stays one plain scalar, as kubectl writes it.
    options.prefer_block_scalars = false;
    serde_saphyr::to_string_with_options(value, options)
        .map_err(|e| KubeconfigError::Internal(format!("cannot serialize the kubeconfig: {e}")))
}

fn write_tree(
    path: &Path,
    doc: &Value,
    fault: Option<&dyn Fn() -> std::io::Result<()>>,
) -> Result<()> {
    let yaml = yaml_string(doc)?;
    replace_file(path, yaml.as_bytes(), fault)
        .map_err(|e| KubeconfigError::File(format!("cannot write {}: {e}", path.display())))
}

/// Atomically replaces `path` with `contents`, mode 0600: a temporary file in the same
/// directory, fsync, rename, fsync of the directory. A symlinked kubeconfig keeps its link:
/// the link's target is replaced.
///
/// This is [`crate::state::write_atomic`]'s protocol plus symlink handling and a fault hook
/// (`fault`, tests only) that runs between the write and the rename: an error there leaves the
/// temporary file behind, as a crash at that moment would.
fn replace_file(
    path: &Path,
    contents: &[u8],
    fault: Option<&dyn Fn() -> std::io::Result<()>>,
) -> std::io::Result<()> {
    let target = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    // tempfile creates the file 0600 on Unix, so the credentials are never readable by others.
    let mut tmp = tempfile::Builder::new()
        .prefix(".minik-kubeconfig-")
        .suffix(".tmp")
        .tempfile_in(&dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    if let Some(fault) = fault
        && let Err(e) = fault()
    {
        let _ = tmp.keep();
        return Err(e);
    }
    tmp.persist(&target).map_err(|e| e.error)?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// client-go's kubeconfig lock: the file `<kubeconfig>.lock`, created with O_EXCL and removed
/// when the value is dropped. kubectl fails at once on a held lock; minik waits a little.
#[derive(Debug)]
pub struct KubeconfigLock {
    path: PathBuf,
}

impl KubeconfigLock {
    /// The lock file's path for a kubeconfig.
    pub fn path_for(kubeconfig: &Path) -> PathBuf {
        let mut name = OsString::from(kubeconfig.as_os_str());
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Creates the lock file, retrying while another program holds it, for up to `timeout`
    /// (then `HOST_LOCK_TIMEOUT`, naming the lock file). Creates the kubeconfig's directory
    /// if needed.
    pub fn acquire(kubeconfig: &Path, timeout: Duration) -> Result<KubeconfigLock> {
        let path = Self::path_for(kubeconfig);
        let start = Instant::now();
        let mut created_dir = false;
        loop {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(&path) {
                Ok(_) => return Ok(KubeconfigLock { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let waited = start.elapsed();
                    if waited >= timeout {
                        return Err(lock_timeout_error(&path, waited));
                    }
                    std::thread::sleep((timeout - waited).min(Duration::from_millis(50)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !created_dir => {
                    created_dir = true;
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir).map_err(|e| {
                            KubeconfigError::File(format!(
                                "cannot create the directory {}: {e}",
                                dir.display()
                            ))
                        })?;
                    }
                }
                Err(e) => {
                    return Err(KubeconfigError::File(format!(
                        "cannot create the lock file {}: {e}",
                        path.display()
                    )));
                }
            }
        }
    }

    /// The lock file this value holds.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for KubeconfigLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn lock_timeout_error(lock: &Path, waited: Duration) -> KubeconfigError {
    let age = std::fs::metadata(lock)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .map(|age| format!(" (it is {}s old)", age.as_secs()))
        .unwrap_or_default();
    KubeconfigError::LockTimeout {
        message: format!(
            "timed out after {:.1}s waiting for the kubeconfig lock {}{age}: another program (kubectl, kind, minikube, \
             another minik) is writing the same kubeconfig",
            waited.as_secs_f64(),
            lock.display()
        ),
        advice: format!(
            "Retry when the other program is done. If none is running, the lock is stale: remove {} and retry.",
            lock.display()
        ),
    }
}

/// Whether the kubeconfig file minik writes to has the profile's context pointing at
/// `https://127.0.0.1:<api_port>`.
pub async fn status_of_profile(profile: &str, api_port: Option<u16>) -> KubeconfigStatus {
    let Some(port) = api_port else {
        return KubeconfigStatus::Misconfigured;
    };
    let profile = profile.to_string();
    tokio::task::spawn_blocking(move || match target_path_from_env() {
        Ok(path) => status(&path, &profile, &local_server(port)),
        Err(_) => KubeconfigStatus::Misconfigured,
    })
    .await
    .unwrap_or(KubeconfigStatus::Misconfigured)
}

/// The kubeconfig files to clean: every `$KUBECONFIG` entry, else `~/.kube/config`.
fn kubeconfig_files() -> Vec<PathBuf> {
    let paths = kubeconfig_paths(std::env::var_os("KUBECONFIG").as_deref());
    if !paths.is_empty() {
        return paths;
    }
    dirs::home_dir()
        .map(|home| vec![home.join(".kube").join("config")])
        .unwrap_or_default()
}

/// Removes the profile's cluster, user and context from every kubeconfig file (current-context
/// is cleared only where it named the profile). Returns the files changed and the first
/// failure; a failure on one file does not stop the others.
pub async fn remove_profile_everywhere(name: &str) -> (Vec<PathBuf>, anyhow::Result<()>) {
    let mut changed = Vec::new();
    let mut first_error = None;
    for path in kubeconfig_files() {
        let profile = name.to_string();
        let file = path.clone();
        let result =
            tokio::task::spawn_blocking(move || remove_from(&file, &profile, DEFAULT_LOCK_TIMEOUT))
                .await
                .unwrap_or_else(|e| {
                    Err(KubeconfigError::Internal(format!(
                        "kubeconfig cleanup stopped: {e}"
                    )))
                });
        match result {
            Ok(true) => changed.push(path),
            Ok(false) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    (changed, first_error.map_or(Ok(()), |e| Err(e.into())))
}

#[cfg(test)]
#[path = "kubeconfig_tests.rs"]
mod tests;
