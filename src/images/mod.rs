//! Images in the nodes' containerd (namespace `k8s.io`, where the kubelet looks), over the
//! `Runner` only, so it works on every driver and on `--no-kubernetes` profiles.
//!
//! `load` copies images from the local engine's store (`docker save` through the engine API) or
//! from an archive file into every node, streaming: the source is read once and fanned out to
//! all nodes that need it at the same time ([`stream`]). Before that, each node is asked once
//! what it has (`ctr images ls`): a node that already holds the image (the CRI plugin names
//! every image it knows `sha256:<config digest>`, which is the id the engine reports) only gets
//! the missing names (`ctr images tag`), and one that has the image under the same name gets
//! nothing. If an import fails anywhere, every node is put back as it was (new names removed,
//! moved names pointed back), so nothing is left half-imported.

pub mod archive;
pub mod reference;
pub mod stream;

use crate::ui::Reporter;
use bytes::Bytes;
use futures_util::future::join_all;
use futures_util::{Stream, TryStreamExt};
use minik_driver_api::{Driver, ExecRequest, Runner, StdinSource};
use minik_driver_docker::DockerDriver;
use reference::{NodeImages, is_digest, normalize};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Instant;

/// What went wrong loading or naming images (reasons: `crate::errors`).
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// An archive file cannot be opened.
    #[error("{message}")]
    Unreadable { message: String, advice: String },
    /// An archive that is not a usable image archive.
    #[error("{message}")]
    BadArchive { message: String, advice: String },
    /// An image given by id or digest where a name is needed.
    #[error("{message}")]
    NotAName { message: String, advice: String },
    /// Images that are not in the engine's store.
    #[error("{message}")]
    NotInEngine { message: String, advice: String },
    /// Importing into a node failed (the nodes were put back as they were).
    #[error("{message}")]
    LoadFailed { message: String, advice: String },
}

/// The containerd namespace of the CRI plugin (and so of the kubelet).
pub const NAMESPACE: &str = "k8s.io";

/// An image to put into the nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Wanted {
    /// The name the nodes get (normalized, as containerd stores it).
    pub name: String,
    /// The name to ask the engine for (engine sources only).
    #[serde(skip)]
    pub export: String,
    /// The engine's id (config digest), when known: the key of the "already there" check.
    pub id: Option<String>,
    /// More names for the same image in the nodes: the registry digests the engine recorded
    /// when it pulled the image (`repo@sha256:...`), so pods that pin images by digest find it.
    pub aliases: Vec<String>,
}

/// Where images come from.
pub enum Source<'a> {
    /// The engine's store (docker or podman, through the Docker API).
    Engine(&'a DockerDriver),
    /// An archive file already checked with [`archive::inspect`].
    Archive(PathBuf),
}

/// What happened to one image on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The node had it under every name already: nothing was done.
    Present,
    /// The node had the image; only names were added.
    Tagged,
    /// The image was streamed in and imported.
    Imported,
}

/// The result of a load.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    /// Per image name: per node, what was done.
    pub images: BTreeMap<String, BTreeMap<String, Outcome>>,
    /// Bytes read from the source (0 when no node needed an import).
    pub bytes_streamed: u64,
    /// Number of node imports that ran.
    pub imports: usize,
}

/// `ctr -n k8s.io ARGS...`.
fn ctr(args: &[&str]) -> Vec<String> {
    ["ctr", "-n", NAMESPACE]
        .iter()
        .chain(args)
        .map(|s| s.to_string())
        .collect()
}

/// Runs `argv` in the node; a non-zero exit is an error naming the command's last line.
async fn must<R: Runner>(runner: &R, argv: Vec<String>) -> anyhow::Result<String> {
    let shown = argv.join(" ");
    let out = runner.exec(ExecRequest::new(argv)).await?;
    if out.success() {
        Ok(out.stdout_str())
    } else {
        Err(anyhow::anyhow!(
            "`{shown}` on {} exited with {}: {}",
            runner.node(),
            out.exit_code,
            out.last_error_line()
        ))
    }
}

/// What a node's containerd holds now.
pub async fn list<R: Runner>(runner: &R) -> anyhow::Result<NodeImages> {
    let out = must(runner, ctr(&["images", "ls"])).await?;
    Ok(NodeImages::parse(&out))
}

/// What to do on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Present,
    /// Add these names, copying them from `from` (a name of the same image).
    Tag {
        from: String,
        names: Vec<String>,
    },
    Import,
}

/// Decides, from what a node holds, what each wanted image needs there.
fn plan(before: &NodeImages, wanted: &[Wanted]) -> Vec<Step> {
    wanted
        .iter()
        .map(|w| {
            let Some(target) = w.id.as_deref().and_then(|id| before.target_of_id(id)) else {
                return Step::Import;
            };
            let names: Vec<String> = std::iter::once(&w.name)
                .chain(&w.aliases)
                .filter(|n| before.get(n).is_none_or(|i| i.target != target))
                .cloned()
                .collect();
            if names.is_empty() {
                return Step::Present;
            }
            match before.name_for_target(target, "") {
                Some(from) => Step::Tag {
                    from: from.to_string(),
                    names,
                },
                None => Step::Import,
            }
        })
        .collect()
}

/// A stream of the source's bytes for the images at `indices`.
async fn open_source(
    source: &Source<'_>,
    wanted: &[Wanted],
    indices: &[usize],
) -> anyhow::Result<Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>> {
    match source {
        Source::Engine(engine) => {
            let names: Vec<String> = indices.iter().map(|&i| wanted[i].export.clone()).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let stream = engine
                .engine()
                .docker()
                .export_images(&refs)
                .map_err(std::io::Error::other);
            Ok(Box::pin(stream))
        }
        Source::Archive(path) => {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| ImageError::Unreadable {
                    message: format!("cannot open {}: {e}", path.display()),
                    advice: "Check the path given to --archive.".into(),
                })?;
            Ok(Box::pin(stream::file_stream(file)))
        }
    }
}

/// The snapshotter the node's CRI plugin uses (`None`: containerd's default).
async fn snapshotter<R: Runner>(runner: &R) -> Option<String> {
    let out = runner
        .run(&["containerd", "config", "dump"])
        .await
        .ok()
        .filter(|o| o.success())?;
    reference::parse_snapshotter(&out.stdout_str())
}

/// Imports the stream coming through `input` into one node, then makes sure every wanted name
/// (and alias) exists.
async fn import_into<R: Runner>(
    runner: &R,
    input: stream::ChannelReader,
    wanted: &[&Wanted],
) -> anyhow::Result<()> {
    let snap = snapshotter(runner).await;
    let mut args = vec!["images".to_string(), "import".to_string()];
    if let Some(s) = snap {
        args.push(format!("--snapshotter={s}"));
    }
    args.push("-".into());
    let argv: Vec<String> = ctr(&[]).into_iter().chain(args).collect();
    let mut request = ExecRequest::new(argv);
    request.stdin = StdinSource::Stream(Box::new(input));
    let started = Instant::now();
    let out = runner.exec(request).await?;
    tracing::debug!(
        node = runner.node(),
        seconds = started.elapsed().as_secs_f64(),
        "ctr images import finished"
    );
    if !out.success() {
        anyhow::bail!(
            "`ctr images import` on {} exited with {}: {}",
            runner.node(),
            out.exit_code,
            out.last_error_line()
        );
    }
    let after = list(runner).await?;
    for w in wanted {
        let Some(image) = after.get(&w.name) else {
            anyhow::bail!(
                "node {} has no image {} after the import (the source named it differently)",
                runner.node(),
                w.name
            );
        };
        let target = image.target.clone();
        for alias in &w.aliases {
            if after.get(alias).is_none_or(|i| i.target != target) {
                must(runner, ctr(&["images", "tag", "--force", &w.name, alias])).await?;
            }
        }
    }
    Ok(())
}

/// Puts a node's image names back as `before` had them: names added since are removed, names
/// moved are pointed back at their old image (through another name of it, such as the CRI
/// plugin's id name). Best effort: returns what could not be restored.
pub async fn restore<R: Runner>(runner: &R, before: &NodeImages) -> Vec<String> {
    let mut problems = Vec::new();
    let now = match list(runner).await {
        Ok(n) => n,
        Err(e) => return vec![format!("{e:#}")],
    };
    let added: Vec<&str> = now
        .images
        .iter()
        .filter(|i| before.get(&i.reference).is_none())
        .map(|i| i.reference.as_str())
        .collect();
    for old in &before.images {
        match now.get(&old.reference) {
            Some(cur) if cur.target == old.target => {}
            _ => match now.name_for_target(&old.target, &old.reference) {
                Some(from) => {
                    if let Err(e) = must(
                        runner,
                        ctr(&["images", "tag", "--force", from, &old.reference]),
                    )
                    .await
                    {
                        problems.push(format!("{e:#}"));
                    }
                }
                None => problems.push(format!(
                    "{} on {} could not be pointed back at {}",
                    old.reference,
                    runner.node(),
                    old.target
                )),
            },
        }
    }
    if !added.is_empty() {
        let mut args = vec!["images", "rm"];
        args.extend(added);
        if let Err(e) = must(runner, ctr(&args)).await {
            problems.push(format!("{e:#}"));
        }
    }
    // The CRI plugin names imported images by id on its own, a moment after the import: remove
    // such a name that showed up meanwhile.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    if let Ok(last) = list(runner).await {
        let late: Vec<&str> = last
            .images
            .iter()
            .filter(|i| before.get(&i.reference).is_none() && now.get(&i.reference).is_none())
            .map(|i| i.reference.as_str())
            .collect();
        if !late.is_empty() {
            let mut args = vec!["images", "rm"];
            args.extend(late);
            if let Err(e) = must(runner, ctr(&args)).await {
                problems.push(format!("{e:#}"));
            }
        }
    }
    problems
}

/// Loads `wanted` from `source` into `nodes` (running nodes of one profile). See the module
/// documentation. `reporter` shows the steps.
pub async fn load<D: Driver>(
    driver: &D,
    nodes: &[String],
    source: &Source<'_>,
    wanted: &[Wanted],
    reporter: &Reporter,
) -> anyhow::Result<LoadReport> {
    let runners: Vec<D::Runner> = nodes.iter().map(|n| driver.runner(n)).collect();
    let step = reporter.step(
        "image-check",
        format!("Checking what {} node(s) already have", nodes.len()),
    );
    let listed = join_all(runners.iter().map(list)).await;
    let mut befores = Vec::new();
    for (node, r) in nodes.iter().zip(listed) {
        match r {
            Ok(l) => befores.push(l),
            Err(e) => {
                let e = load_failed(format!("cannot list the images of node {node}: {e:#}"));
                step.fail(&format!("{e:#}"));
                return Err(e);
            }
        }
    }
    step.done();
    let plans: Vec<Vec<Step>> = befores.iter().map(|b| plan(b, wanted)).collect();

    // Nodes that need the same images imported share one read of the source.
    let mut groups: BTreeMap<Vec<usize>, Vec<usize>> = BTreeMap::new();
    for (n, steps) in plans.iter().enumerate() {
        let needs: Vec<usize> = match source {
            // An archive is imported whole.
            Source::Archive(_) if steps.contains(&Step::Import) => (0..wanted.len()).collect(),
            _ => steps
                .iter()
                .enumerate()
                .filter(|(_, s)| **s == Step::Import)
                .map(|(i, _)| i)
                .collect(),
        };
        if !needs.is_empty() {
            groups.entry(needs).or_default().push(n);
        }
    }
    let mut report = LoadReport::default();
    for (w, image) in wanted.iter().enumerate() {
        let per_node = report.images.entry(image.name.clone()).or_default();
        for (n, node) in nodes.iter().enumerate() {
            let outcome = match &plans[n][w] {
                Step::Present => Outcome::Present,
                Step::Tag { .. } => Outcome::Tagged,
                Step::Import => Outcome::Imported,
            };
            per_node.insert(node.clone(), outcome);
        }
    }
    for (needs, members) in &groups {
        for &n in members {
            for &w in needs {
                report
                    .images
                    .entry(wanted[w].name.clone())
                    .or_default()
                    .insert(nodes[n].clone(), Outcome::Imported);
            }
        }
    }
    report.imports = groups.values().map(Vec::len).sum();

    // Tags first (cheap), then the imports, all nodes at once.
    let tagging = plans.iter().enumerate().flat_map(|(n, steps)| {
        steps.iter().filter_map(move |s| match s {
            Step::Tag { from, names } => Some((n, from.clone(), names.clone())),
            _ => None,
        })
    });
    let tag_jobs: Vec<_> = tagging.collect();
    let mut failures: Vec<String> = Vec::new();
    if !tag_jobs.is_empty() {
        let results = join_all(tag_jobs.iter().map(|(n, from, names)| {
            let runner = &runners[*n];
            async move {
                for name in names {
                    must(runner, ctr(&["images", "tag", "--force", from, name])).await?;
                }
                anyhow::Ok(())
            }
        }))
        .await;
        failures.extend(
            results
                .into_iter()
                .filter_map(|r| r.err().map(|e| format!("{e:#}"))),
        );
    }
    if failures.is_empty() && !groups.is_empty() {
        let count: usize = groups.values().map(Vec::len).sum();
        let names: Vec<&str> = groups
            .keys()
            .flatten()
            .map(|&i| wanted[i].name.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut step = reporter.step(
            "image-import",
            format!("Importing {} into {count} node(s)", names.join(", ")),
        );
        let started = Instant::now();
        let results = join_all(groups.iter().map(|(needs, members)| {
            let runners = &runners;
            async move {
                let (txs, readers) = stream::channels(members.len());
                let source = open_source(source, wanted, needs).await?;
                let images: Vec<&Wanted> = needs.iter().map(|&i| &wanted[i]).collect();
                let pump_started = Instant::now();
                let pump = async {
                    let r = stream::pump(source, txs).await;
                    tracing::debug!(
                        seconds = pump_started.elapsed().as_secs_f64(),
                        "image stream read to the end"
                    );
                    r
                };
                let imports = join_all(
                    members
                        .iter()
                        .zip(readers)
                        .map(|(&n, reader)| import_into(&runners[n], reader, &images)),
                );
                let (pumped, imported) = tokio::join!(pump, imports);
                let mut errors: Vec<String> = Vec::new();
                // A source that failed explains the nodes' failures: name it first.
                if let Err(e) = &pumped {
                    errors.push(format!("reading the images: {e}"));
                }
                errors.extend(
                    imported
                        .into_iter()
                        .filter_map(|r| r.err().map(|e| format!("{e:#}"))),
                );
                match pumped {
                    Ok(bytes) if errors.is_empty() => anyhow::Ok(bytes),
                    _ => anyhow::bail!("{}", errors.join("; ")),
                }
            }
        }))
        .await;
        for r in results {
            match r {
                Ok(bytes) => report.bytes_streamed += bytes,
                Err(e) => failures.push(format!("{e:#}")),
            }
        }
        if failures.is_empty() {
            let mb = report.bytes_streamed as f64 / 1e6;
            let secs = started.elapsed().as_secs_f64().max(0.001);
            step.set_title(format!(
                "Imported {} into {count} node(s): {mb:.1} MB streamed, {:.0} MB/s",
                names.join(", "),
                mb / secs
            ));
            step.done();
        } else {
            step.fail(&failures.join("; "));
        }
    }
    if failures.is_empty() {
        return Ok(report);
    }
    // Put every node back as it was.
    let restored = join_all(
        runners
            .iter()
            .zip(&befores)
            .map(|(runner, before)| restore(runner, before)),
    )
    .await;
    let leftovers: Vec<String> = restored.into_iter().flatten().collect();
    let mut message = format!("loading failed: {}", failures.join("; "));
    if leftovers.is_empty() {
        message.push_str(" (every node was put back as it was)");
    } else {
        message.push_str(&format!(
            " (could not fully restore: {})",
            leftovers.join("; ")
        ));
    }
    Err(load_failed(message))
}

fn load_failed(message: String) -> anyhow::Error {
    ImageError::LoadFailed {
        message,
        advice:
            "Check the image or archive named above; `minik image ls` shows what the nodes hold."
                .into(),
    }
    .into()
}

/// Resolves image names in the engine's store: id, the name to export, the name the nodes get,
/// and the registry digests to add. All missing images are named in one error, before
/// anything is sent anywhere.
pub async fn resolve_in_engine(
    engine: &DockerDriver,
    engine_name: &str,
    args: &[String],
) -> anyhow::Result<Vec<Wanted>> {
    let docker = engine.engine().ready().await?;
    let mut wanted = Vec::new();
    let mut missing = Vec::new();
    for arg in args {
        if is_digest(arg) || arg.contains('@') || arg.starts_with("sha256:") {
            return Err(ImageError::NotAName {
                message: format!(
                    "{arg}: images are loaded by name (NAME[:TAG]), not by id or digest"
                ),
                advice: format!("Give it a name first: `{engine_name} tag {arg} NAME:TAG`."),
            }
            .into());
        }
        let inspect = match docker.inspect_image(arg).await {
            Ok(i) => i,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                missing.push(arg.clone());
                continue;
            }
            Err(e) => {
                return Err(engine
                    .engine()
                    .error(format!("inspect image {arg}"), e)
                    .into());
            }
        };
        let id = inspect.id.clone().filter(|i| !i.is_empty()).map(|i| {
            if i.starts_with("sha256:") {
                i
            } else {
                format!("sha256:{i}")
            }
        });
        // An id prefix (`docker save ID` would give the nodes an unnamed image).
        if id
            .as_deref()
            .is_some_and(|i| i.trim_start_matches("sha256:").starts_with(arg.as_str()))
        {
            return Err(ImageError::NotAName {
                message: format!("{arg}: images are loaded by name (NAME[:TAG]), not by id"),
                advice: format!("Give it a name first: `{engine_name} tag {arg} NAME:TAG`."),
            }
            .into());
        }
        let tags = inspect.repo_tags.clone().unwrap_or_default();
        let export = tags
            .iter()
            .find(|t| normalize(t) == normalize(arg))
            .cloned()
            .or_else(|| minik_driver_podman::image::pick_qualified(arg, &tags))
            .unwrap_or_else(|| arg.clone());
        let name = normalize(&export);
        let aliases = inspect
            .repo_digests
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|d| normalize(d))
            .filter(|d| reference::digest_of(d).is_some())
            .collect();
        wanted.push(Wanted {
            name,
            export,
            id,
            aliases,
        });
    }
    if !missing.is_empty() {
        return Err(ImageError::NotInEngine {
            message: format!(
                "{} not in {engine_name}'s image store: {}",
                if missing.len() == 1 {
                    "image"
                } else {
                    "images"
                },
                missing.join(", ")
            ),
            advice: format!(
                "Build or pull it first (`{engine_name} images` lists what is there), or load a file with --archive."
            ),
        }
        .into());
    }
    Ok(wanted)
}

/// The images of an archive, checked; a bad archive is refused before anything is sent.
pub fn resolve_archive(path: &Path) -> anyhow::Result<Vec<Wanted>> {
    let images = archive::inspect(path).map_err(|e| ImageError::BadArchive {
        message: format!("{} is not a usable image archive: {e}", path.display()),
        advice:
            "Create it with `docker save NAME:TAG -o FILE.tar` (or `podman save`), uncompressed."
                .into(),
    })?;
    Ok(images
        .into_iter()
        .map(|i| Wanted {
            export: i.name.clone(),
            name: i.name,
            id: i.id,
            aliases: Vec::new(),
        })
        .collect())
}

/// One image as `image ls` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ListedImage {
    pub name: String,
    /// The CRI plugin's id (config digest), when known.
    pub id: Option<String>,
    pub size: String,
    /// The nodes that have it.
    pub nodes: Vec<String>,
}

/// Merges the nodes' listings into one row per name.
pub fn merge_listings(listings: &[(String, NodeImages)]) -> Vec<ListedImage> {
    let mut rows: BTreeMap<String, ListedImage> = BTreeMap::new();
    for (node, images) in listings {
        for image in images.named() {
            let row = rows
                .entry(image.reference.clone())
                .or_insert_with(|| ListedImage {
                    name: image.reference.clone(),
                    id: images.id_for_target(&image.target).map(str::to_string),
                    size: image.size.clone(),
                    nodes: Vec::new(),
                });
            row.nodes.push(node.clone());
        }
    }
    rows.into_values().collect()
}

/// Removes `name` from one node: the name, and the image's id name when no other name is left
/// (so the CRI plugin forgets it and containerd frees the space). Returns whether the node had
/// it.
pub async fn remove<R: Runner>(runner: &R, name: &str) -> anyhow::Result<bool> {
    let before = list(runner).await?;
    let Some(image) = before.get(name) else {
        return Ok(false);
    };
    let mut refs = vec![name.to_string()];
    // When no other tag is left for the image, its digest names and the CRI plugin's id name
    // go too (as `crictl rmi` removes an image), so containerd can free it.
    let other_tags = before.named().any(|i| {
        i.target == image.target
            && i.reference != name
            && reference::digest_of(&i.reference).is_none()
    });
    if !other_tags {
        refs.extend(
            before
                .images
                .iter()
                .filter(|i| i.target == image.target && i.reference != name)
                .map(|i| i.reference.clone()),
        );
    }
    let mut args = vec!["images", "rm"];
    args.extend(refs.iter().map(String::as_str));
    must(runner, ctr(&args)).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(rows: &[(&str, &str)]) -> NodeImages {
        NodeImages {
            images: rows
                .iter()
                .map(|(r, t)| reference::NodeImage {
                    reference: r.to_string(),
                    target: t.to_string(),
                    size: "1 MiB".into(),
                })
                .collect(),
        }
    }

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn want(name: &str, id: char, aliases: &[&str]) -> Wanted {
        Wanted {
            name: name.into(),
            export: name.into(),
            id: Some(d(id)),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn plans_import_tag_or_nothing() {
        let node = images(&[
            ("docker.io/library/app:1", &d('t')),
            (&d('a'), &d('t')),
            ("docker.io/library/other:1", &d('u')),
        ]);
        // Same name, same image: nothing.
        assert_eq!(
            plan(&node, &[want("docker.io/library/app:1", 'a', &[])]),
            vec![Step::Present]
        );
        // Same image under a new name: tag only.
        assert_eq!(
            plan(&node, &[want("docker.io/library/app:2", 'a', &[])]),
            vec![Step::Tag {
                from: "docker.io/library/app:1".into(),
                names: vec!["docker.io/library/app:2".into()],
            }]
        );
        // A pinned digest alias missing: tag it.
        let alias = format!("docker.io/library/app@{}", d('r'));
        assert!(matches!(
            &plan(&node, &[want("docker.io/library/app:1", 'a', &[&alias])])[0],
            Step::Tag { names, .. } if names == &vec![alias.clone()]
        ));
        // The name points at another image, and the wanted id is unknown: import.
        assert_eq!(
            plan(&node, &[want("docker.io/library/other:1", 'z', &[])]),
            vec![Step::Import]
        );
        // No id known (an OCI archive without config): import.
        let mut unknown = want("x:1", 'a', &[]);
        unknown.id = None;
        assert_eq!(plan(&node, &[unknown]), vec![Step::Import]);
    }

    #[test]
    fn merges_node_listings() {
        let a = images(&[("docker.io/library/app:1", &d('t')), (&d('a'), &d('t'))]);
        let b = images(&[("docker.io/library/app:1", &d('t')), ("x:2", &d('u'))]);
        let rows = merge_listings(&[("n1".into(), a), ("n2".into(), b)]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, "docker.io/library/app:1");
        assert_eq!(rows[0].nodes, vec!["n1", "n2"]);
        assert_eq!(rows[0].id, Some(d('a')));
        assert_eq!(rows[1].nodes, vec!["n2"]);
    }
}
