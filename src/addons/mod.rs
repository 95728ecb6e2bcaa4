//! Addons: optional cluster components kept as data (addons/NAME/ in the source tree, embedded
//! at build time), rendered here and applied over the `Runner` ([`apply`]).
//!
//! Each addon directory is a kustomize base (`kustomization.yaml`: `resources` in order plus a
//! `minik.io/addon: NAME` label) and minik's metadata (`addon.yaml`). minik renders the small
//! kustomize subset it uses itself, strictly (anything else in a kustomization is refused), and
//! a test checks the result equals `kubectl kustomize`. Nothing in a manifest varies per
//! cluster (minik's service and pod subnets are fixed), so there is no templating; the only
//! per-cluster text is the note printed after enabling (`{profile}`, `{control_plane_ip}`,
//! `{http_port}`, `{https_port}`).

pub mod apply;
pub mod profile;

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

crate::errors::layer_error!(
    /// An addon could not be found, applied or removed (reasons: `crate::errors`).
    AddonError,
    /// What went wrong with an addon.
    AddonKind {
        /// Applying or removing it failed, or its pods did not become ready.
        Failed,
        /// The profile's nodes are not running (or are paused).
        NotRunning,
        /// The profile has no Kubernetes.
        Unsupported,
        /// No addon of that name.
        Unknown,
        /// A bug: the embedded catalog is broken.
        Bug,
    }
);

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/addon_files.rs"));
}

/// The label every addon object carries; its value is the addon's name.
pub const LABEL: &str = "minik.io/addon";

/// Pods an addon waits for: a namespace and a label selector.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodSelector {
    pub namespace: String,
    pub selector: String,
}

/// An object some other part of minik created that the addon replaces (deleted before the
/// first apply when it does not carry the addon's label).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TakeOver {
    pub kind: String,
    pub name: String,
}

/// A file the addon writes into every node (and removes on disable).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFileSpec {
    /// Absolute path in the node.
    pub path: String,
    /// File of the addon directory holding the contents.
    pub source: String,
}

/// `addon.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub description: String,
    /// Enabled on new Kubernetes profiles (see [`defaults`]).
    #[serde(default)]
    pub default: bool,
    /// Every image the manifests use, each `name:tag@sha256:digest`.
    #[serde(default)]
    pub images: Vec<String>,
    /// Pods that must be Ready before enabling is done.
    #[serde(default)]
    pub ready: Vec<PodSelector>,
    /// Addons enabled first (and that cannot be disabled while this one is on).
    #[serde(default)]
    pub requires: Vec<String>,
    #[serde(default)]
    pub takes_over: Vec<TakeOver>,
    #[serde(default)]
    pub node_files: Vec<NodeFileSpec>,
    /// Printed after enabling; `{profile}`, `{control_plane_ip}`, `{http_port}` and
    /// `{https_port}` (the control plane's published host ports) are replaced.
    #[serde(default)]
    pub notes: Option<String>,
    /// The Kubernetes versions the pinned component supports, by its own documentation.
    #[serde(default)]
    pub kubernetes: Option<Supported>,
    /// The provisioner name this addon runs (`rancher.io/local-path`): disabling it waits until
    /// the PersistentVolumes it made are gone, and refuses while claims still hold some.
    #[serde(default)]
    pub provisioner: Option<String>,
}

/// `kubernetes:` of `addon.yaml`: the minors (`"1.28"`) a pinned version supports, either end
/// open, and where upstream says so.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Supported {
    #[serde(default)]
    pub min: Option<String>,
    #[serde(default)]
    pub max: Option<String>,
    pub source: String,
}

impl Supported {
    /// A warning when Kubernetes `version` (`v1.37.2` or `1.37`) is outside the range; `None`
    /// inside it or when a version does not parse.
    pub fn warning(&self, addon: &str, version: &str) -> Option<String> {
        let minor = |v: &str| -> Option<(u32, u32)> {
            let mut parts = v.trim_start_matches('v').split('.');
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
        };
        let have = minor(version)?;
        let min = self.min.as_deref().and_then(minor);
        let max = self.max.as_deref().and_then(minor);
        let outside = min.is_some_and(|m| have < m) || max.is_some_and(|m| have > m);
        if !outside {
            return None;
        }
        let range = match (&self.min, &self.max) {
            (Some(a), Some(b)) if a == b => format!("Kubernetes {a} only"),
            (Some(a), Some(b)) => format!("Kubernetes {a} to {b}"),
            (Some(a), None) => format!("Kubernetes {a} and newer"),
            (None, Some(b)) => format!("Kubernetes up to {b}"),
            (None, None) => return None,
        };
        Some(format!(
            "{addon}: its pinned version supports {range} ({}); this cluster runs {version}, where it may not work",
            self.source
        ))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Kustomization {
    api_version: String,
    kind: String,
    #[serde(default)]
    labels: Vec<LabelSet>,
    #[serde(default)]
    sort_options: Option<SortOptions>,
    resources: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LabelSet {
    pairs: BTreeMap<String, String>,
    #[serde(default)]
    include_selectors: bool,
    #[serde(default)]
    include_templates: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SortOptions {
    order: String,
}

/// One addon, rendered.
#[derive(Debug, Clone)]
pub struct Addon {
    pub name: String,
    pub meta: Meta,
    /// The objects, in apply order, labels added.
    pub objects: Vec<Value>,
    /// `(path in the node, contents)`.
    pub node_files: Vec<(String, String)>,
}

impl Addon {
    /// The objects as one multi-document YAML stream (what `kubectl apply -f -` gets, and
    /// what the snapshots in tests/snapshots/addons hold).
    pub fn manifest(&self) -> String {
        render_yaml(&self.objects)
    }

    /// The CustomResourceDefinitions among the objects, then everything else. Objects of a
    /// kind a CRD defines (a Gateway) cannot be applied in the same call as the CRD: the API
    /// server must first serve the new kind, so [`apply::enable`] applies the CRDs, waits for
    /// them to be Established, then applies the rest.
    pub fn split_crds(&self) -> (Vec<&Value>, Vec<&Value>) {
        self.objects
            .iter()
            .partition(|o| o["kind"] == "CustomResourceDefinition")
    }

    /// `kind/name` (with namespace) of each object, for messages.
    pub fn object_names(&self) -> Vec<String> {
        self.objects
            .iter()
            .map(|o| {
                let kind = o["kind"].as_str().unwrap_or("?");
                let name = o["metadata"]["name"].as_str().unwrap_or("?");
                match o["metadata"]["namespace"].as_str() {
                    Some(ns) => format!("{kind}/{name} -n {ns}"),
                    None => format!("{kind}/{name}"),
                }
            })
            .collect()
    }
}

/// The name `--images` and `--registries` use for an addon image: the last component of its
/// repository (`docker.io/rancher/local-path-provisioner:v0.0.30@sha256:…` →
/// `local-path-provisioner`).
pub fn image_name(reference: &str) -> &str {
    let repo = crate::images::reference::repository(reference);
    repo.rsplit('/').next().unwrap_or(repo)
}

/// Where a local build of an addon image lives (`hack/build-addon-images.sh` names its builds
/// so): `localhost/minik-addons/<image name>:<pinned tag>`.
pub const LOCAL_BUILDS: &str = "localhost/minik-addons";

/// The name a local build of `reference` (built from source at the version it pins) carries:
/// `docker.io/rancher/local-path-provisioner:v0.0.30@sha256:…` →
/// `localhost/minik-addons/local-path-provisioner:v0.0.30`. `None` for a reference without a tag.
pub fn local_build_of(reference: &str) -> Option<String> {
    let named = reference.split('@').next().unwrap_or(reference);
    let repo = crate::images::reference::repository(named);
    let tag = named.strip_prefix(repo)?.strip_prefix(':')?;
    (!tag.is_empty()).then(|| format!("{LOCAL_BUILDS}/{}:{tag}", image_name(repo)))
}

/// Image replacements for one addon: `--images NAME=REFERENCE` and `--registries NAME=HOST`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageOverrides {
    pub images: BTreeMap<String, String>,
    pub registries: BTreeMap<String, String>,
}

impl ImageOverrides {
    pub fn is_empty(&self) -> bool {
        self.images.is_empty() && self.registries.is_empty()
    }
}

impl Addon {
    /// `(name, default reference)` of each image, in `addon.yaml` order.
    pub fn image_names(&self) -> Vec<(&str, &str)> {
        self.meta
            .images
            .iter()
            .map(|i| (image_name(i), i.as_str()))
            .collect()
    }

    /// The reference each image name resolves to under `o`: the `--images` one, else the
    /// default; then the `--registries` host in place of the registry. Unknown names are an
    /// error naming the valid ones.
    pub fn resolve_images(&self, o: &ImageOverrides) -> Result<BTreeMap<String, String>, String> {
        let names = self.image_names();
        for n in o.images.keys().chain(o.registries.keys()) {
            if !names.iter().any(|(name, _)| name == n) {
                let valid: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
                return Err(if valid.is_empty() {
                    format!("addon {} has no images, so no image {n:?}", self.name)
                } else {
                    format!(
                        "addon {} has no image {n:?}; its images: {}",
                        self.name,
                        valid.join(", ")
                    )
                });
            }
        }
        for (n, r) in o.images.iter().chain(o.registries.iter()) {
            if r.is_empty() || r.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("{n}={r:?}: not an image reference or registry"));
            }
        }
        let mut out = BTreeMap::new();
        for (name, default) in names {
            let mut r = o
                .images
                .get(name)
                .cloned()
                .unwrap_or_else(|| default.to_string());
            if let Some(host) = o.registries.get(name) {
                let full = crate::images::reference::normalize(&r);
                let path = full.split_once('/').map_or(full.as_str(), |(_, p)| p);
                r = format!("{}/{path}", host.trim_end_matches('/'));
            }
            out.insert(name.to_string(), r);
        }
        Ok(out)
    }

    /// This addon with each image replaced by `resolved` (name → reference, from
    /// [`Addon::resolve_images`]): in the objects (also inside ConfigMap text such as the
    /// local-path helper pod) and in `meta.images`.
    pub fn with_images(&self, resolved: &BTreeMap<String, String>) -> Addon {
        fn replace(v: &mut Value, from: &str, to: &str) {
            match v {
                Value::String(s) if s.contains(from) => *s = s.replace(from, to),
                Value::Array(items) => items.iter_mut().for_each(|i| replace(i, from, to)),
                Value::Object(map) => map.values_mut().for_each(|i| replace(i, from, to)),
                _ => {}
            }
        }
        let mut out = self.clone();
        for image in out.meta.images.iter_mut() {
            let Some(to) = resolved.get(image_name(image)) else {
                continue;
            };
            if to == image {
                continue;
            }
            for o in out.objects.iter_mut() {
                replace(o, image, to);
            }
            *image = to.clone();
        }
        out
    }
}

/// Objects as a YAML stream, one document each.
pub fn render_yaml<'a>(objects: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(o).unwrap_or_default());
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// The embedded files of addon `name`: `(file name, text)`.
fn files_of(name: &str) -> BTreeMap<&'static str, &'static str> {
    let prefix = format!("{name}/");
    embedded::FILES
        .iter()
        .filter_map(|(path, text)| path.strip_prefix(&prefix).map(|f| (f, *text)))
        .collect()
}

/// Renders addon directory `name` from `files` (file name → text). Errors name the file.
pub fn render(name: &str, files: &BTreeMap<&str, &str>) -> Result<Addon, String> {
    let get = |f: &str| {
        files
            .get(f)
            .copied()
            .ok_or_else(|| format!("addon {name}: missing {f}"))
    };
    let meta: Meta = serde_saphyr::from_str(get("addon.yaml")?)
        .map_err(|e| format!("addon {name}: addon.yaml: {e}"))?;
    let k: Kustomization = serde_saphyr::from_str(get("kustomization.yaml")?)
        .map_err(|e| format!("addon {name}: kustomization.yaml: {e}"))?;
    if k.api_version != "kustomize.config.k8s.io/v1beta1" || k.kind != "Kustomization" {
        return Err(format!(
            "addon {name}: kustomization.yaml is not a v1beta1 Kustomization"
        ));
    }
    if k.sort_options.as_ref().is_none_or(|s| s.order != "fifo") {
        return Err(format!(
            "addon {name}: kustomization.yaml must keep the resource order (sortOptions.order: fifo)"
        ));
    }
    let mut labels = BTreeMap::new();
    for set in &k.labels {
        if set.include_selectors || set.include_templates {
            return Err(format!(
                "addon {name}: labels with includeSelectors/includeTemplates are not supported"
            ));
        }
        labels.extend(set.pairs.clone());
    }
    if labels.get(LABEL).map(String::as_str) != Some(name) {
        return Err(format!(
            "addon {name}: kustomization.yaml must set label {LABEL}: {name}"
        ));
    }
    let mut objects = Vec::new();
    for resource in &k.resources {
        let text = get(resource)?;
        let docs: Vec<Value> = serde_saphyr::from_multiple(text)
            .map_err(|e| format!("addon {name}: {resource}: {e}"))?;
        for mut doc in docs.into_iter().filter(|d| !d.is_null()) {
            let ok = doc["apiVersion"].is_string()
                && doc["kind"].is_string()
                && doc["metadata"]["name"].is_string();
            if !ok {
                return Err(format!(
                    "addon {name}: {resource}: a document lacks apiVersion, kind or metadata.name"
                ));
            }
            let meta = doc["metadata"]
                .as_object_mut()
                .ok_or_else(|| format!("addon {name}: {resource}: metadata is not a map"))?;
            let entry = meta
                .entry("labels")
                .or_insert_with(|| Value::Object(Default::default()));
            let map = entry
                .as_object_mut()
                .ok_or_else(|| format!("addon {name}: {resource}: labels is not a map"))?;
            for (k, v) in &labels {
                map.insert(k.clone(), Value::String(v.clone()));
            }
            objects.push(doc);
        }
    }
    let mut node_files = Vec::new();
    for f in &meta.node_files {
        if !f.path.starts_with('/') {
            return Err(format!(
                "addon {name}: node file {} is not absolute",
                f.path
            ));
        }
        node_files.push((f.path.clone(), get(&f.source)?.to_string()));
    }
    Ok(Addon {
        name: name.to_string(),
        meta,
        objects,
        node_files,
    })
}

/// Every addon, sorted by name (parsed once; the data is part of the binary, so an error here
/// is a bug caught by the unit tests).
pub fn catalog() -> Result<&'static [Addon], String> {
    static CATALOG: OnceLock<Result<Vec<Addon>, String>> = OnceLock::new();
    CATALOG
        .get_or_init(|| {
            let mut names: Vec<&str> = embedded::FILES
                .iter()
                .filter_map(|(p, _)| p.split_once('/').map(|(d, _)| d))
                .collect();
            names.sort();
            names.dedup();
            names.into_iter().map(|n| render(n, &files_of(n))).collect()
        })
        .as_deref()
        .map_err(Clone::clone)
}

/// The catalog, as an error with a reason when it does not load.
pub fn all() -> anyhow::Result<&'static [Addon]> {
    catalog().map_err(|e| AddonError::new(AddonKind::Bug, e).into())
}

/// Finds an addon; MK_USAGE listing the known ones otherwise.
pub fn find(name: &str) -> anyhow::Result<&'static Addon> {
    let all = all()?;
    all.iter().find(|a| a.name == name).ok_or_else(|| {
        let known: Vec<&str> = all.iter().map(|a| a.name.as_str()).collect();
        AddonError::new(AddonKind::Unknown, format!("unknown addon {name:?}"))
            .with_advice(format!(
                "Known addons: {} (`minik addons list`).",
                known.join(", ")
            ))
            .into()
    })
}

/// The addons on by default, for new profiles.
pub fn defaults() -> anyhow::Result<Vec<String>> {
    Ok(all()?
        .iter()
        .filter(|a| a.meta.default)
        .map(|a| a.name.clone())
        .collect())
}

/// `names` plus everything they require, requirements first, each once.
pub fn with_requirements(names: &[String]) -> anyhow::Result<Vec<String>> {
    fn visit(name: &str, out: &mut Vec<String>, depth: usize) -> anyhow::Result<()> {
        if out.iter().any(|n| n == name) {
            return Ok(());
        }
        if depth > 8 {
            return Err(AddonError::new(
                AddonKind::Bug,
                format!("addon requirements loop at {name}"),
            )
            .into());
        }
        let addon = find(name)?;
        for r in &addon.meta.requires {
            visit(r, out, depth + 1)?;
        }
        out.push(name.to_string());
        Ok(())
    }
    let mut out = Vec::new();
    for n in names {
        visit(n, &mut out, 0)?;
    }
    Ok(out)
}

/// Every image a set of objects runs (containers, init containers, and the images named in
/// ConfigMap data that spawns pods, like the local-path helper pod template).
pub fn images_used(objects: &[Value]) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "image"
                        && let Some(s) = v.as_str()
                    {
                        out.push(s.to_string());
                    }
                    walk(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::String(s) => {
                // Embedded YAML (ConfigMap data): `image: NAME` lines.
                for line in s.lines() {
                    if let Some(rest) = line.trim().strip_prefix("image:") {
                        out.push(rest.trim().trim_matches('"').to_string());
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for o in objects {
        walk(o, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
