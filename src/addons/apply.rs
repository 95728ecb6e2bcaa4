//! Enabling and disabling addons, over the `Runner` only: the control plane's own kubectl
//! (`--kubeconfig /etc/kubernetes/admin.conf`) applies the rendered objects with server-side
//! apply (`--server-side --field-manager=minik --force-conflicts`), fed on stdin.
//!
//! Why the node's kubectl and not the kube crate from the host: it always matches the
//! cluster's version, it needs no route from the host to the API server (remote engines, VMs
//! behind user-mode networking), it resolves every kind (CRDs, aggregated APIs) the way users'
//! own `kubectl apply` does, and it runs over the same Runner as every other cluster step, so
//! the whole flow is exercised by the recording fake runner in the CLI tests.

use super::{Addon, LABEL, PodSelector, render_yaml};
use super::{AddonError, AddonKind};
use crate::cluster::health::ADMIN_CONF;
use crate::images::{self, Source, Wanted, reference};
use crate::ui::Reporter;
use futures_util::future::{join_all, try_join_all};
use k8s_openapi::api::core::v1::Pod;
use minik_driver_api::{Driver, ExecRequest, Output, Runner};
use minik_driver_docker::DockerDriver;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The cluster an addon is applied to.
pub struct Target<'a, D: Driver> {
    pub driver: &'a D,
    pub profile: &'a str,
    /// The first control plane (where kubectl runs).
    pub control_plane: String,
    pub control_plane_ip: Option<String>,
    /// The first control plane's published ports (node port → host port on 127.0.0.1).
    pub control_plane_ports: BTreeMap<u16, u16>,
    /// Every node (node files go to each; images are checked in each).
    pub nodes: Vec<String>,
    /// The engine whose store addon images may be loaded from, and its name.
    pub engine: Option<(&'a DockerDriver, &'a str)>,
    /// The cluster's Kubernetes version (`v1.37.2`), for the addons' supported ranges.
    pub kubernetes: Option<&'a str>,
}

/// How long and whether to wait for an addon's pods.
#[derive(Debug, Clone, Copy)]
pub struct WaitOptions {
    pub wait: bool,
    pub timeout: Duration,
}

/// How often pods are polled while waiting.
const POLL: Duration = Duration::from_secs(2);
/// How long a pod may fail to pull its image before the wait gives up early.
const PULL_GIVE_UP: Duration = Duration::from_secs(90);

/// `kubectl --kubeconfig admin.conf ARGS` as argv.
pub fn kubectl(args: &[&str]) -> Vec<String> {
    ["kubectl", "--kubeconfig", ADMIN_CONF]
        .iter()
        .chain(args)
        .map(|s| s.to_string())
        .collect()
}

/// The argv that applies an addon's manifest (fed on stdin).
pub fn apply_argv() -> Vec<String> {
    kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=minik",
        "--force-conflicts",
        "-f",
        "-",
    ])
}

/// The argv that deletes an addon's objects (manifest on stdin).
pub fn delete_argv(timeout: Duration) -> Vec<String> {
    let t = format!("--timeout={}s", timeout.as_secs().max(1));
    kubectl(&["delete", "--ignore-not-found", "--wait=true", &t, "-f", "-"])
}

fn addon_error(addon: &str, profile: &str, what: String) -> anyhow::Error {
    AddonError::new(AddonKind::Failed, format!("addon {addon}: {what}"))
        .with_advice(format!(
            "See the pods with `minik kubectl -p {profile} -- get pods -A`; `minik addons disable -p {profile} {addon}` removes what was applied."
        ))
        .into()
}

/// A failed pull in one line: crictl repeats the registry's answer in several forms over
/// several lines; the last error line says it, cut to its last 240 characters.
fn pull_failure_text(out: &Output) -> String {
    let line = out.last_error_line();
    // The cause comes last ("…: dial tcp: lookup registry-1.docker.io: no such host").
    let count = line.chars().count();
    let line: String = if count > 240 {
        "…".chars().chain(line.chars().skip(count - 240)).collect()
    } else {
        line
    };
    format!("exit {}: {line}", out.exit_code)
}

fn failure_text(out: &Output) -> String {
    let text = format!("{}{}", out.stderr_str(), out.stdout_str());
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(5)..];
    format!("exit {}: {}", out.exit_code, tail.join(" | "))
}

/// Pods as `kubectl get pods -o json` prints them.
#[derive(Deserialize)]
struct PodItems {
    #[serde(default)]
    items: Vec<Pod>,
}

/// Whether the pods of one selector are ready: at least one pod, and every pod that is not a
/// finished job Ready. `Err` says what is missing (a container's waiting reason when there is
/// one, such as ErrImagePull).
pub fn judge(selector: &PodSelector, pods: &[Pod]) -> Result<(), String> {
    let live: Vec<&Pod> = pods
        .iter()
        .filter(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            phase != Some("Succeeded")
        })
        .collect();
    if live.is_empty() {
        return Err(format!(
            "no pod matches {} in namespace {} yet",
            selector.selector, selector.namespace
        ));
    }
    for pod in live {
        let name = pod.metadata.name.as_deref().unwrap_or("?");
        let status = pod.status.as_ref();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready {
            continue;
        }
        let waiting = status
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
            .chain(
                status
                    .and_then(|s| s.init_container_statuses.as_ref())
                    .into_iter()
                    .flatten(),
            )
            .find_map(|c| {
                let w = c.state.as_ref()?.waiting.as_ref()?;
                let reason = w.reason.clone()?;
                Some(match &w.message {
                    Some(m) => format!("{reason}: {m}"),
                    None => reason,
                })
            });
        let unscheduled = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| {
                c.iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "False")
            })
            .map(|c| c.message.clone().unwrap_or_else(|| "not scheduled".into()));
        let phase = status
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Unknown".into());
        let why = waiting
            .or(unscheduled)
            .unwrap_or_else(|| format!("phase {phase}"));
        return Err(format!(
            "pod {}/{name} is not Ready: {why}",
            selector.namespace
        ));
    }
    Ok(())
}

/// Checks the pods of every selector once.
async fn check_ready<R: Runner>(cp: &R, addon: &Addon) -> Result<(), String> {
    for sel in &addon.meta.ready {
        let argv = kubectl(&[
            "get",
            "pods",
            "-n",
            &sel.namespace,
            "-l",
            &sel.selector,
            "-o",
            "json",
        ]);
        let out = cp
            .exec(ExecRequest::new(argv))
            .await
            .map_err(|e| e.to_string())?;
        if !out.success() {
            return Err(format!("listing pods failed: {}", failure_text(&out)));
        }
        let pods: PodItems = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("kubectl printed pods that do not parse: {e}"))?;
        judge(sel, &pods.items)?;
    }
    Ok(())
}

/// Makes the addon's images available to the nodes when they are not already: a node holding
/// the pinned image under another name (an OCI archive preloaded into the node image) gets the
/// pinned name; otherwise, when the engine's store has the image *and* recorded the pinned
/// digest when it pulled it, it is loaded like `minik image load`. When neither, the nodes pull
/// it from its registry when a pod needs it; that is said, not treated as an error.
///
/// When no copy of the pinned image can be had without a registry, a local build of the pinned
/// version present on every node ([`crate::addons::local_build_of`]: preloaded into the node
/// image from a `--kubernetes-from` directory, or loaded with `minik image load`) is used in
/// its place, and said so; the returned map (image name → reference) holds those substitutes
/// for [`Addon::with_images`]. Only when neither exists is the pinned image pulled now.
async fn ensure_images<D: Driver>(
    t: &Target<'_, D>,
    addon: &Addon,
    reporter: &Reporter,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut substitutes = BTreeMap::new();
    if addon.meta.images.is_empty() {
        return Ok(substitutes);
    }
    let runners: Vec<D::Runner> = t.nodes.iter().map(|n| t.driver.runner(n)).collect();
    let listings = try_join_all(runners.iter().map(images::list)).await?;
    for image in &addon.meta.images {
        let pinned = reference::normalize(image);
        let Some(digest) = reference::digest_of(&pinned) else {
            ensure_unpinned(t, addon, &pinned, &runners, &listings, reporter).await?;
            continue;
        };
        let repo = reference::repository(&pinned);
        let digest_ref = format!("{repo}@{digest}");
        let tag_ref = pinned.split('@').next().unwrap_or(&pinned).to_string();
        let mut missing = Vec::new();
        for ((node, runner), listing) in t.nodes.iter().zip(&runners).zip(&listings) {
            if listing.get(&digest_ref).is_some() {
                continue;
            }
            // The very manifest (or index) the pin names, under another name.
            if let Some(from) = listing.name_for_target(digest, &digest_ref) {
                let argv: Vec<String> = [
                    "ctr",
                    "-n",
                    images::NAMESPACE,
                    "images",
                    "tag",
                    "--force",
                    from,
                    &digest_ref,
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                if runner.exec(ExecRequest::new(argv)).await?.success() {
                    continue;
                }
            }
            missing.push(node.clone());
        }
        if missing.is_empty() {
            continue;
        }
        let from_engine = match t.engine {
            Some((engine, engine_name)) => {
                match images::resolve_in_engine(engine, engine_name, std::slice::from_ref(&tag_ref))
                    .await
                {
                    Ok(found) if found[0].aliases.contains(&digest_ref) => {
                        let wanted = Wanted {
                            aliases: vec![digest_ref.clone()],
                            ..found[0].clone()
                        };
                        images::load(
                            t.driver,
                            &missing,
                            &Source::Engine(engine),
                            &[wanted],
                            reporter,
                        )
                        .await?;
                        true
                    }
                    Ok(_) => {
                        reporter.warn(&format!(
                            "{tag_ref} in {engine_name} is not the pinned build {digest}; the nodes will pull the pinned one"
                        ));
                        false
                    }
                    Err(_) => false,
                }
            }
            None => false,
        };
        if !from_engine {
            if let Some(local) = crate::addons::local_build_of(&pinned)
                .filter(|l| listings.iter().all(|listing| listing.get(l).is_some()))
            {
                reporter.info(&format!(
                    "{}: {tag_ref} is not in the nodes; using the local build {local} they hold (built from source, not the pinned {digest})",
                    addon.name
                ));
                substitutes.insert(crate::addons::image_name(image).to_string(), local);
                continue;
            }
            // Pull now, before anything is applied: an image nobody has and no registry
            // serves (offline, air-gapped) fails the addon here and leaves the cluster as it
            // was, instead of replacing working objects with pods stuck in ImagePullBackOff.
            if let Some(out) = pull_where_missing(t, &runners, &missing, &digest_ref).await? {
                return Err(addon_error(
                    &addon.name,
                    t.profile,
                    format!(
                        "image {image} is not in the nodes{} and cannot be pulled ({}); nothing was applied (preload it with `minik image load`, or pull it into the engine, or replace it with `--images {}=REFERENCE`, then enable again)",
                        t.engine
                            .map(|(_, n)| format!(" or in {n}'s store"))
                            .unwrap_or_default(),
                        pull_failure_text(&out),
                        crate::addons::image_name(image)
                    ),
                ));
            }
        }
    }
    Ok(substitutes)
}

/// [`ensure_images`] for an image not pinned by digest (one replaced with `--images`): nodes
/// without it get it from the engine's store when it is there, else pull it now; an image in
/// neither place fails the addon before anything is applied.
async fn ensure_unpinned<D: Driver>(
    t: &Target<'_, D>,
    addon: &Addon,
    name: &str,
    runners: &[D::Runner],
    listings: &[images::reference::NodeImages],
    reporter: &Reporter,
) -> anyhow::Result<()> {
    let missing: Vec<String> = t
        .nodes
        .iter()
        .zip(listings)
        .filter(|(_, l)| l.get(name).is_none())
        .map(|(n, _)| n.clone())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if let Some((engine, engine_name)) = t.engine
        && let Ok(found) = images::resolve_in_engine(engine, engine_name, &[name.to_string()]).await
    {
        images::load(
            t.driver,
            &missing,
            &Source::Engine(engine),
            &found,
            reporter,
        )
        .await?;
        return Ok(());
    }
    if let Some(out) = pull_where_missing(t, runners, &missing, name).await? {
        return Err(addon_error(
            &addon.name,
            t.profile,
            format!(
                "image {name} is not in the nodes{} and cannot be pulled ({}); nothing was applied (load it with `minik image load -p {} {name}`, or name another with `--images {}=REFERENCE`)",
                t.engine
                    .map(|(_, n)| format!(" or in {n}'s store"))
                    .unwrap_or_default(),
                pull_failure_text(&out),
                t.profile,
                crate::addons::image_name(name)
            ),
        ));
    }
    Ok(())
}

/// `crictl pull reference` on each node in `missing`; the output of the first that fails.
async fn pull_where_missing<D: Driver>(
    t: &Target<'_, D>,
    runners: &[D::Runner],
    missing: &[String],
    reference: &str,
) -> anyhow::Result<Option<Output>> {
    for (node, runner) in t.nodes.iter().zip(runners) {
        if !missing.contains(node) {
            continue;
        }
        let argv = vec![
            "crictl".to_string(),
            "pull".to_string(),
            reference.to_string(),
        ];
        let out = runner.exec(ExecRequest::new(argv)).await?;
        if !out.success() {
            return Ok(Some(out));
        }
    }
    Ok(None)
}

/// Deletes objects the addon takes over from minik's bootstrap (e.g. the imageless `standard`
/// StorageClass), unless they are already this addon's.
async fn take_over<R: Runner>(cp: &R, addon: &Addon, profile: &str) -> anyhow::Result<()> {
    for obj in &addon.meta.takes_over {
        let out = cp
            .exec(ExecRequest::new(kubectl(&[
                "get",
                &obj.kind,
                &obj.name,
                "--ignore-not-found",
                "-o",
                "json",
            ])))
            .await?;
        if !out.success() {
            return Err(addon_error(
                &addon.name,
                profile,
                format!(
                    "cannot read {}/{}: {}",
                    obj.kind,
                    obj.name,
                    failure_text(&out)
                ),
            ));
        }
        if out.stdout_str().trim().is_empty() {
            continue;
        }
        let current: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if current["metadata"]["labels"][LABEL].as_str() == Some(addon.name.as_str()) {
            continue;
        }
        let out = cp
            .exec(ExecRequest::new(kubectl(&[
                "delete",
                &obj.kind,
                &obj.name,
                "--ignore-not-found",
            ])))
            .await?;
        if !out.success() {
            return Err(addon_error(
                &addon.name,
                profile,
                format!(
                    "cannot replace {}/{}: {}",
                    obj.kind,
                    obj.name,
                    failure_text(&out)
                ),
            ));
        }
    }
    Ok(())
}

/// How long the API server may take to serve the kinds of an addon's CRDs.
const CRD_ESTABLISHED: Duration = Duration::from_secs(60);

/// `kubectl apply` of some of an addon's objects.
async fn apply_objects<'a, R: Runner>(
    cp: &R,
    addon: &Addon,
    profile: &str,
    objects: impl IntoIterator<Item = &'a serde_json::Value>,
) -> anyhow::Result<()> {
    let out = cp
        .exec(ExecRequest::new(apply_argv()).stdin_bytes(render_yaml(objects)))
        .await?;
    if !out.success() {
        return Err(addon_error(
            &addon.name,
            profile,
            format!("kubectl apply failed: {}", failure_text(&out)),
        ));
    }
    Ok(())
}

/// Enables one addon: images, objects taken over, node files, server-side apply (its
/// CustomResourceDefinitions first, until Established), then (with
/// `wait`) its pods Ready within the timeout.
pub async fn enable<D: Driver>(
    t: &Target<'_, D>,
    addon: &Addon,
    wait: WaitOptions,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    if let (Some(range), Some(version)) = (&addon.meta.kubernetes, t.kubernetes)
        && let Some(warning) = range.warning(&addon.name, version)
    {
        reporter.warn(&warning);
    }
    let cp = t.driver.runner(&t.control_plane);
    let substitutes = ensure_images(t, addon, reporter).await?;
    let substituted;
    let addon = if substitutes.is_empty() {
        addon
    } else {
        substituted = addon.with_images(&substitutes);
        &substituted
    };
    let step = reporter.step("addon-apply", format!("Applying addon {}", addon.name));
    let r = async {
        take_over(&cp, addon, t.profile).await?;
        try_join_all(t.nodes.iter().map(|n| {
            let runner = t.driver.runner(n);
            async move {
                for (path, contents) in &addon.node_files {
                    runner.copy_to(path, contents.as_bytes(), 0o644).await?;
                }
                anyhow::Ok(())
            }
        }))
        .await?;
        let (crds, rest) = addon.split_crds();
        if !crds.is_empty() {
            apply_objects(&cp, addon, t.profile, crds.iter().copied()).await?;
            let mut wait = vec![
                "wait".to_string(),
                "--for=condition=Established".into(),
                format!("--timeout={}s", CRD_ESTABLISHED.as_secs()),
            ];
            wait.extend(
                crds.iter()
                    .map(|c| format!("crd/{}", c["metadata"]["name"].as_str().unwrap_or_default())),
            );
            let wait: Vec<&str> = wait.iter().map(String::as_str).collect();
            let out = cp.exec(ExecRequest::new(kubectl(&wait))).await?;
            if !out.success() {
                return Err(addon_error(
                    &addon.name,
                    t.profile,
                    format!(
                        "its CustomResourceDefinitions were not established: {}",
                        failure_text(&out)
                    ),
                ));
            }
        }
        apply_objects(&cp, addon, t.profile, rest).await
    }
    .await;
    step.finish_with(r)?;
    if !wait.wait || addon.meta.ready.is_empty() {
        return Ok(());
    }
    let step = reporter.step(
        "addon-wait",
        format!("Waiting for the pods of addon {}", addon.name),
    );
    let started = Instant::now();
    // A pod in image pull back-off this long will not start within the wait either (no
    // network, no copy of the image anywhere): say so now instead of at the timeout.
    let mut backing_off_since: Option<Instant> = None;
    let last = loop {
        match check_ready(&cp, addon).await {
            Ok(()) => {
                step.done();
                return Ok(());
            }
            Err(e) if started.elapsed() >= wait.timeout => break e,
            Err(e) if e.contains("ImagePullBackOff") || e.contains("ErrImagePull") => {
                let since = *backing_off_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= PULL_GIVE_UP {
                    break e;
                }
                tokio::time::sleep(POLL).await;
            }
            Err(_) => {
                backing_off_since = None;
                tokio::time::sleep(POLL).await;
            }
        }
    };
    step.fail(&last);
    Err(addon_error(
        &addon.name,
        t.profile,
        format!("not ready after {}s: {last}", wait.timeout.as_secs()),
    ))
}

/// Disables one addon: deletes every object it applied (namespaces with their contents) and
/// removes its node files.
pub async fn disable<D: Driver>(
    t: &Target<'_, D>,
    addon: &Addon,
    timeout: Duration,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    let cp = t.driver.runner(&t.control_plane);
    if let Some(provisioner) = &addon.meta.provisioner {
        let step = reporter.step(
            "addon-volumes",
            format!("Waiting for the volumes of {provisioner} to go"),
        );
        step.finish_with(
            wait_for_own_volumes(&cp, t.profile, &addon.name, provisioner, timeout).await,
        )?;
    }
    let step = reporter.step("addon-delete", format!("Removing addon {}", addon.name));
    let r = async {
        let out = cp
            .exec(ExecRequest::new(delete_argv(timeout)).stdin_bytes(addon.manifest()))
            .await?;
        if !out.success() {
            return Err(addon_error(
                &addon.name,
                t.profile,
                format!("kubectl delete failed: {}", failure_text(&out)),
            ));
        }
        let results = join_all(t.nodes.iter().map(|n| {
            let runner = t.driver.runner(n);
            async move {
                for (path, _) in &addon.node_files {
                    runner.run(&["rm", "-f", path]).await?;
                }
                anyhow::Ok(())
            }
        }))
        .await;
        results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
        anyhow::Ok(())
    }
    .await;
    step.finish_with(r)
}

/// Before a provisioner is removed: no PersistentVolume it made may stay behind. Volumes whose
/// claim is gone are deleted by the provisioner itself (reclaim policy Delete): wait for that.
/// Volumes still bound to a claim refuse the disable, naming the claims.
async fn wait_for_own_volumes<R: Runner>(
    cp: &R,
    profile: &str,
    addon: &str,
    provisioner: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let out = cp
            .exec(ExecRequest::new(kubectl(&["get", "pv", "-o", "json"])))
            .await?;
        if !out.success() {
            return Err(addon_error(
                addon,
                profile,
                format!("kubectl get pv failed: {}", failure_text(&out)),
            ));
        }
        let own = own_volumes(&out.stdout, provisioner);
        if own.is_empty() {
            return Ok(());
        }
        let claimed: Vec<&str> = own
            .iter()
            .filter(|v| v.phase == "Bound")
            .map(|v| v.claim.as_str())
            .collect();
        if !claimed.is_empty() {
            return Err(AddonError::new(
                AddonKind::Failed,
                format!(
                    "addon {addon}: its volumes still hold the data of claims {}; disabling it would leave them behind",
                    claimed.join(", ")
                ),
            )
            .with_advice(format!(
                "Delete those claims (their data goes with them) with `minik kubectl -p {profile} -- delete pvc -n NAMESPACE NAME`, then disable again."
            ))
            .into());
        }
        if std::time::Instant::now() >= deadline {
            let names: Vec<&str> = own.iter().map(|v| v.name.as_str()).collect();
            return Err(addon_error(
                addon,
                profile,
                format!(
                    "volumes {} are still there after {}s: the provisioner did not remove them",
                    names.join(", "),
                    timeout.as_secs()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// One PersistentVolume a provisioner made.
#[derive(Debug, PartialEq, Eq)]
struct OwnVolume {
    name: String,
    phase: String,
    /// `namespace/name` of its claim.
    claim: String,
}

/// The volumes in `kubectl get pv -o json` that `provisioner` made (annotation
/// `pv.kubernetes.io/provisioned-by`).
fn own_volumes(json: &[u8], provisioner: &str) -> Vec<OwnVolume> {
    let list: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|pv| {
            pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == provisioner
        })
        .map(|pv| OwnVolume {
            name: pv["metadata"]["name"].as_str().unwrap_or("?").to_string(),
            phase: pv["status"]["phase"].as_str().unwrap_or("").to_string(),
            claim: format!(
                "{}/{}",
                pv["spec"]["claimRef"]["namespace"].as_str().unwrap_or("?"),
                pv["spec"]["claimRef"]["name"].as_str().unwrap_or("?")
            ),
        })
        .collect()
}

/// [`own_volumes`] as plain tuples (name, phase, claim), for the unit tests.
#[cfg(test)]
pub(super) fn own_volumes_for_tests(
    json: &[u8],
    provisioner: &str,
) -> Vec<(String, String, String)> {
    own_volumes(json, provisioner)
        .into_iter()
        .map(|v| (v.name, v.phase, v.claim))
        .collect()
}

/// The note to print after enabling, with the profile, the control plane's address and its
/// published HTTP/HTTPS host ports filled in.
pub fn notes(
    addon: &Addon,
    profile: &str,
    control_plane_ip: Option<&str>,
    ports: &BTreeMap<u16, u16>,
) -> Option<String> {
    let port = |p: u16| {
        ports
            .get(&p)
            .map_or_else(|| "PORT".to_string(), |h| h.to_string())
    };
    addon.meta.notes.as_ref().map(|n| {
        n.replace("{profile}", profile)
            .replace(
                "{control_plane_ip}",
                control_plane_ip.unwrap_or("CONTROL-PLANE-IP"),
            )
            .replace("{http_port}", &port(minik_driver_api::HTTP_PORT))
            .replace("{https_port}", &port(minik_driver_api::HTTPS_PORT))
            .trim_end()
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_pull_is_one_line_ending_in_its_cause() {
        let fatal = format!(
            "time=\"2026-12-03T15:48:26Z\" level=error msg=\"pulling image: failed to pull {}: dial tcp: lookup registry-1.docker.io on 192.168.49.1:53: no such host\"",
            "x".repeat(400)
        );
        let out = Output {
            exit_code: 1,
            stdout: Vec::new(),
            stderr: format!("E1203 15:48:26 remote_image.go:334] PullImage failed\n{fatal}\n")
                .into_bytes(),
        };
        let text = pull_failure_text(&out);
        assert!(text.starts_with("exit 1: …"), "{text}");
        assert!(text.ends_with("no such host\""), "{text}");
        assert!(
            !text.contains('\n') && !text.contains("remote_image.go"),
            "{text}"
        );
        assert!(text.chars().count() < 260, "{}", text.len());
    }

    fn pods(json: &str) -> Vec<Pod> {
        serde_json::from_str::<PodItems>(json).unwrap().items
    }

    fn sel() -> PodSelector {
        PodSelector {
            namespace: "kube-system".into(),
            selector: "k8s-app=metrics-server".into(),
        }
    }

    #[test]
    fn judges_pod_readiness_with_the_reason() {
        assert!(judge(&sel(), &[]).unwrap_err().contains("no pod matches"));
        let ready = pods(
            r#"{"items":[{"metadata":{"name":"m-1"},"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}]}"#,
        );
        assert_eq!(judge(&sel(), &ready), Ok(()));
        let pulling = pods(
            r#"{"items":[{"metadata":{"name":"m-1"},"status":{"phase":"Pending","conditions":[{"type":"Ready","status":"False"}],
              "containerStatuses":[{"name":"c","image":"x","imageID":"","ready":false,"restartCount":0,
                "state":{"waiting":{"reason":"ErrImagePull","message":"dial tcp: no route"}}}]}}]}"#,
        );
        let e = judge(&sel(), &pulling).unwrap_err();
        assert!(
            e.contains("kube-system/m-1") && e.contains("ErrImagePull: dial tcp"),
            "{e}"
        );
        let unscheduled = pods(
            r#"{"items":[{"metadata":{"name":"m-2"},"status":{"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False","message":"0/1 nodes are available"}]}}]}"#,
        );
        assert!(
            judge(&sel(), &unscheduled)
                .unwrap_err()
                .contains("0/1 nodes")
        );
        // A finished job pod does not count; alone, it means no live pod.
        let done = pods(r#"{"items":[{"metadata":{"name":"j"},"status":{"phase":"Succeeded"}}]}"#);
        assert!(judge(&sel(), &done).is_err());
    }

    #[test]
    fn argv_uses_server_side_apply_with_minik_as_manager() {
        let a = apply_argv().join(" ");
        assert_eq!(
            a,
            "kubectl --kubeconfig /etc/kubernetes/admin.conf apply --server-side --field-manager=minik --force-conflicts -f -"
        );
        assert!(
            delete_argv(Duration::from_secs(90))
                .join(" ")
                .contains("delete --ignore-not-found --wait=true --timeout=90s -f -")
        );
    }
}
