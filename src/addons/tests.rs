//! Offline validation of every addon: rendered, parsed into typed k8s-openapi objects (and
//! back, so a misspelt field cannot hide), compared with snapshots, with the real
//! `kubectl kustomize` (these tests fail, not skip, when kubectl is missing), and checked for
//! pinned images.

use super::*;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use std::path::PathBuf;

fn kubectl_bin() -> String {
    std::env::var("MINIK_TEST_KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

fn addons_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("addons")
}

fn snapshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/addons")
}

/// Removes nulls, which typed serialization drops, and writes every number as a float (a
/// schema's `minimum: 0` comes back from k8s-openapi's f64 as `0.0`, the same value).
fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Number(n) => n
            .as_f64()
            .map_or_else(|| v.clone(), |f| serde_json::json!(f)),
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        v => v.clone(),
    }
}

/// Deserializes into `T` and serializes back; the result must equal the input, so every
/// field is one the type knows (k8s-openapi ignores unknown fields on the way in).
fn round_trip<T>(obj: &Value) -> Result<(), String>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let typed: T = serde_json::from_value(obj.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    if strip_nulls(&back) != strip_nulls(obj) {
        return Err(format!(
            "fields lost in the typed round trip:\n  in:  {}\n  out: {}",
            obj, back
        ));
    }
    Ok(())
}

fn typed_check(obj: &Value) -> Result<(), String> {
    let api = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    match (api, kind) {
        ("v1", "Namespace") => round_trip::<Namespace>(obj),
        ("v1", "ServiceAccount") => round_trip::<ServiceAccount>(obj),
        ("v1", "ConfigMap") => round_trip::<ConfigMap>(obj),
        ("v1", "Secret") => round_trip::<Secret>(obj),
        ("v1", "Service") => round_trip::<Service>(obj),
        ("apps/v1", "Deployment") => round_trip::<Deployment>(obj),
        ("batch/v1", "Job") => round_trip::<Job>(obj),
        ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<Role>(obj),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trip::<ClusterRole>(obj),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => round_trip::<RoleBinding>(obj),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            round_trip::<ClusterRoleBinding>(obj)
        }
        ("storage.k8s.io/v1", "StorageClass") => round_trip::<StorageClass>(obj),
        ("networking.k8s.io/v1", "IngressClass") => round_trip::<IngressClass>(obj),
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
            round_trip::<ValidatingWebhookConfiguration>(obj)
        }
        ("apiregistration.k8s.io/v1", "APIService") => round_trip::<APIService>(obj),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            round_trip::<CustomResourceDefinition>(obj)
        }
        // Gateway API kinds have no k8s-openapi type: the fields minik relies on, checked by
        // hand (the real-cluster suite applies them against the CRDs' schemas).
        ("gateway.networking.k8s.io/v1", "GatewayClass") => {
            match obj["spec"]["controllerName"].as_str() {
                Some(c) if c.contains('/') => Ok(()),
                _ => Err("GatewayClass without a spec.controllerName DOMAIN/PATH".into()),
            }
        }
        ("gateway.networking.k8s.io/v1", "Gateway") => {
            let listeners = obj["spec"]["listeners"].as_array();
            let ok = obj["spec"]["gatewayClassName"].is_string()
                && listeners.is_some_and(|l| {
                    !l.is_empty()
                        && l.iter().all(|l| {
                            l["name"].is_string() && l["port"].is_u64() && l["protocol"].is_string()
                        })
                });
            if ok {
                Ok(())
            } else {
                Err(
                    "Gateway needs spec.gatewayClassName and listeners with name, port, protocol"
                        .into(),
                )
            }
        }
        _ => Err(format!("no typed check for {api} {kind}: add it here")),
    }
}

#[test]
fn the_catalog_has_the_required_addons_with_their_defaults() {
    let all = catalog().unwrap();
    let names: Vec<&str> = all.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "dashboard",
            "default-storageclass",
            "ingress",
            "metrics-server",
            "registry",
            "storage-provisioner"
        ]
    );
    assert_eq!(
        defaults().unwrap(),
        ["default-storageclass", "storage-provisioner"]
    );
    for a in all {
        assert!(!a.objects.is_empty(), "{} renders nothing", a.name);
        for r in &a.meta.requires {
            find(r).unwrap();
        }
    }
}

#[test]
fn every_object_parses_into_its_typed_k8s_openapi_struct() {
    for a in catalog().unwrap() {
        for obj in &a.objects {
            if let Err(e) = typed_check(obj) {
                panic!(
                    "addon {}: {} {}: {e}",
                    a.name, obj["kind"], obj["metadata"]["name"]
                );
            }
            assert_eq!(
                obj["metadata"]["labels"][LABEL].as_str(),
                Some(a.name.as_str())
            );
        }
        // The YAML kubectl gets parses back to the same objects.
        let back: Vec<Value> = serde_saphyr::from_multiple(&a.manifest())
            .unwrap()
            .into_iter()
            .filter(|v: &Value| !v.is_null())
            .collect();
        assert_eq!(back, a.objects, "addon {}: YAML round trip", a.name);
    }
}

#[test]
fn images_are_pinned_by_tag_and_digest_and_listed_exactly() {
    for a in catalog().unwrap() {
        let mut listed = a.meta.images.clone();
        listed.sort();
        assert_eq!(
            images_used(&a.objects),
            listed,
            "addon {}: addon.yaml images differ from the manifests'",
            a.name
        );
        for image in &listed {
            let (name, digest) = image
                .split_once('@')
                .unwrap_or_else(|| panic!("{image}: no digest"));
            assert!(
                crate::images::reference::is_digest(digest),
                "{image}: bad digest"
            );
            let last = name.rsplit('/').next().unwrap();
            assert!(last.contains(':'), "{image}: no tag");
            assert!(
                crate::images::reference::has_domain(name),
                "{image}: name the registry"
            );
        }
        // Pods that must use a preloaded or loaded image never force a pull.
        let text = a.manifest();
        assert!(
            !text.contains("imagePullPolicy: Always"),
            "addon {}",
            a.name
        );
    }
}

/// The snapshot of each addon: tests/snapshots/addons/<addon>.snap holds the rendered
/// manifest byte for byte below insta's header. After an intended change:
/// `INSTA_UPDATE=always cargo test --lib addons`, then review `git diff tests/snapshots`.
#[test]
fn rendered_addons_match_snapshots() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../tests/snapshots/addons");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| {
        for a in catalog().unwrap() {
            let rendered = a.manifest();
            // insta trims trailing whitespace: what it cannot see is checked here.
            assert!(
                rendered.ends_with('\n') && !rendered.ends_with("\n\n") && !rendered.contains('\r'),
                "{}: one final newline, no CR",
                a.name
            );
            insta::assert_snapshot!(a.name.as_str(), rendered);
        }
    });
    // No stale snapshots.
    for entry in std::fs::read_dir(snapshot_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(addon) = name.strip_suffix(".snap") {
            assert!(find(addon).is_ok(), "stale snapshot {name}");
        }
    }
}

/// The real kustomize (inside kubectl) renders each addon directory to the same objects.
#[test]
fn kubectl_kustomize_renders_the_same_objects() {
    for a in catalog().unwrap() {
        let dir = addons_dir().join(&a.name);
        let out = std::process::Command::new(kubectl_bin())
            .arg("kustomize")
            .arg(&dir)
            .env("KUBECONFIG", "/dev/null")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} (kubectl is required): {e}", kubectl_bin()));
        assert!(
            out.status.success(),
            "kubectl kustomize {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Vec<Value> = serde_saphyr::from_multiple(&String::from_utf8_lossy(&out.stdout))
            .unwrap()
            .into_iter()
            .filter(|v: &Value| !v.is_null())
            .collect();
        assert_eq!(
            theirs.len(),
            a.objects.len(),
            "addon {}: object count",
            a.name
        );
        for (t, m) in theirs.iter().zip(&a.objects) {
            assert_eq!(
                strip_nulls(t),
                strip_nulls(m),
                "addon {}: kustomize and minik differ",
                a.name
            );
        }
    }
}

#[test]
fn the_embedded_catalog_is_the_source_tree() {
    for a in catalog().unwrap() {
        let dir = addons_dir().join(&a.name);
        for (file, text) in files_of(&a.name) {
            let on_disk = std::fs::read_to_string(dir.join(file)).unwrap();
            assert_eq!(on_disk, text, "{}/{file}: rebuild to embed it", a.name);
        }
    }
}

#[test]
fn requirements_come_first_once() {
    assert_eq!(
        with_requirements(&["default-storageclass".into(), "storage-provisioner".into()]).unwrap(),
        ["storage-provisioner", "default-storageclass"]
    );
    assert!(find("nope").is_err());
}

#[test]
fn strict_rendering_refuses_what_it_does_not_implement() {
    let meta = "description: x\n";
    let base = |k: &'static str| -> BTreeMap<&'static str, &'static str> {
        BTreeMap::from([
            ("addon.yaml", meta),
            ("kustomization.yaml", k),
            (
                "a.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n",
            ),
        ])
    };
    let ok = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nlabels:\n  - pairs:\n      minik.io/addon: t\nsortOptions:\n  order: fifo\nresources:\n  - a.yaml\n";
    let addon = render("t", &base(ok)).unwrap();
    assert_eq!(addon.objects[0]["metadata"]["labels"][LABEL], "t");
    let images = ok.replace("resources:", "images:\n  - name: x\nresources:");
    let images: &'static str = Box::leak(images.into_boxed_str());
    assert!(
        render("t", &base(images)).is_err(),
        "unknown kustomize fields are refused"
    );
    let legacy = ok.replace("sortOptions:\n  order: fifo\n", "");
    let legacy: &'static str = Box::leak(legacy.into_boxed_str());
    assert!(render("t", &base(legacy)).unwrap_err().contains("fifo"));
}

#[test]
fn a_local_build_is_named_after_the_pinned_tag() {
    assert_eq!(
        local_build_of(
            "docker.io/rancher/local-path-provisioner:v0.0.30@sha256:9b914881170048f80ae9302f36e5b99b4a6b18af73a38adc1c66d12f65d360be"
        )
        .as_deref(),
        Some("localhost/minik-addons/local-path-provisioner:v0.0.30")
    );
    assert_eq!(
        local_build_of("registry.k8s.io/metrics-server/metrics-server:v0.8.0").as_deref(),
        Some("localhost/minik-addons/metrics-server:v0.8.0")
    );
    // No tag, no version to build: no local build name.
    assert_eq!(
        local_build_of(
            "docker.io/library/registry@sha256:9b914881170048f80ae9302f36e5b99b4a6b18af73a38adc1c66d12f65d360be"
        ),
        None
    );
    assert_eq!(local_build_of("localhost:5000/x"), None);
}

#[test]
fn supported_ranges_warn_outside_only() {
    let range = super::Supported {
        min: Some("1.28".into()),
        max: Some("1.32".into()),
        source: "upstream's table".into(),
    };
    assert_eq!(range.warning("ingress", "v1.30.1"), None);
    assert_eq!(range.warning("ingress", "v1.32.0"), None);
    let w = range.warning("ingress", "v1.37.2").unwrap();
    assert!(
        w.contains("supports Kubernetes 1.28 to 1.32 (upstream's table)"),
        "{w}"
    );
    assert!(w.contains("v1.37.2"), "{w}");
    assert!(range.warning("ingress", "v1.27.9").is_some());
    assert_eq!(range.warning("ingress", "not-a-version"), None);
    let open = super::Supported {
        min: Some("1.31".into()),
        max: None,
        source: "s".into(),
    };
    assert_eq!(open.warning("metrics-server", "v1.37.2"), None);
    assert!(
        open.warning("metrics-server", "v1.30.0")
            .unwrap()
            .contains("1.31 and newer")
    );
}

#[test]
fn the_shipped_ranges_flag_only_the_aged_dashboard_on_the_default_version() {
    let default = crate::k8s::version::KubernetesVersion::resolve("stable")
        .unwrap()
        .to_string();
    let warns = |name: &str| {
        let addon = super::all()
            .unwrap()
            .iter()
            .find(|a| a.name == name)
            .unwrap();
        addon
            .meta
            .kubernetes
            .as_ref()
            .and_then(|k| k.warning(name, &default))
    };
    assert_eq!(warns("ingress"), None, "Traefik 3.6 supports it");
    assert!(warns("dashboard").is_some(), "Dashboard 2.7 is for 1.25");
    assert_eq!(warns("metrics-server"), None);
}

#[test]
fn own_volumes_are_those_the_provisioner_annotated() {
    let json = br#"{"items":[
      {"metadata":{"name":"pvc-1","annotations":{"pv.kubernetes.io/provisioned-by":"rancher.io/local-path"}},
       "spec":{"claimRef":{"namespace":"default","name":"data"}},"status":{"phase":"Bound"}},
      {"metadata":{"name":"pvc-2","annotations":{"pv.kubernetes.io/provisioned-by":"rancher.io/local-path"}},
       "spec":{"claimRef":{"namespace":"ns","name":"gone"}},"status":{"phase":"Released"}},
      {"metadata":{"name":"manual"},"spec":{},"status":{"phase":"Available"}}
    ]}"#;
    let own = super::apply::own_volumes_for_tests(json, "rancher.io/local-path");
    assert_eq!(
        own,
        vec![
            (
                "pvc-1".to_string(),
                "Bound".to_string(),
                "default/data".to_string()
            ),
            (
                "pvc-2".to_string(),
                "Released".to_string(),
                "ns/gone".to_string()
            ),
        ]
    );
    assert!(super::apply::own_volumes_for_tests(b"not json", "x").is_empty());
}
