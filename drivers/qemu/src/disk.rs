//! VM base disks: made from a node image through a container engine, cached per node image
//! and VM recipe, shared by profiles through hard links.
//!
//! The VM layer (vm-image/, embedded in the binary) is built `FROM` the node image with the
//! engine's build API: it adds a kernel, an initrd, sshd and the boot-time setup unit, and its
//! last step (`make-disk`, as root inside the build container) copies the image's root
//! filesystem into an ext4 image with `mkfs.ext4 -d`. minik then copies the three result files
//! out of a created (never started) container through the archive API, converts the ext4 image
//! to qcow2 with `qemu-img convert`, and removes the container and the build image. Nothing
//! needs root or a loop mount on the host, and owners and modes come out exact because the
//! files never pass through an unprivileged extraction.
//!
//! A cached disk is never changed in place: a rebuild writes a new directory and renames it
//! over the old one. Profiles hard-link (or copy) the files into their own directory, and the
//! nodes' overlays point there, so a rebuild or a cache cleanup never breaks an existing node.

use crate::layout::{BaseFiles, write_atomic};
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
};
use futures_util::TryStreamExt;
use minik_driver_api::DriverError;
use minik_driver_docker::{DockerDriver, context};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/vm_image_files.rs"));
}

/// The directory inside the VM build image that holds the results.
const RESULT_DIR: &str = "/minik-vm";
/// The raw ext4 image `make-disk` writes.
const RAW_NAME: &str = "rootfs.ext4";

/// The embedded VM layer recipe: (path relative to vm-image/, contents, unix mode).
pub fn recipe_files() -> &'static [(&'static str, &'static [u8], u32)] {
    embedded::FILES
}

/// A short hash of the VM layer recipe.
pub fn recipe_hash() -> String {
    context::recipe_hash(recipe_files())
}

/// The cache directory name of the base disk made from node image `image` with this recipe:
/// the image reference made file-name safe, plus the VM recipe hash. minik's own node image
/// tags already carry the node recipe's hash, so both recipes are covered.
pub fn disk_name(image: &str) -> String {
    format!("{}{}", disk_prefix(image), recipe_hash())
}

/// [`disk_name`] without the recipe hash: what the disks of `image` from every recipe share.
fn disk_prefix(image: &str) -> String {
    let safe: String = image
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.');
    // Long references are cut and identified by a hash of the whole.
    let safe = if safe.len() > 80 {
        let digest = hex::encode(Sha256::digest(image.as_bytes()));
        format!("{}-{}", &safe[..60], &digest[..12])
    } else {
        safe.to_string()
    };
    format!("{safe}-vm")
}

/// A tar of the VM layer's build context.
pub fn context_tar() -> std::io::Result<Vec<u8>> {
    context::context_tar(recipe_files(), &[])
}

/// Where a base disk came from (`source.json` next to it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskSource {
    /// The node image reference.
    pub node_image: String,
    /// Its id when the disk was built.
    pub node_image_id: String,
    /// The VM recipe hash.
    pub vm_recipe: String,
    /// The engine that built it (`docker`, `podman`).
    pub engine: String,
}

impl DiskSource {
    /// Reads `base`'s source record, if any.
    pub fn load(base: &BaseFiles) -> Option<DiskSource> {
        serde_json::from_slice(&std::fs::read(base.source()).ok()?).ok()
    }
}

/// Builds the base disk of `node_image` (which must be in `docker`'s engine) into `dest`,
/// replacing what is there. `on_line` gets the build's output lines.
pub async fn build<F>(
    docker: &DockerDriver,
    node_image: &str,
    dest: &BaseFiles,
    qemu_img: &Path,
    mut on_line: F,
) -> Result<(), DriverError>
where
    F: FnMut(&str) + Send,
{
    let engine_name = docker.engine().flavor().name;
    let node_image_id = docker.image_id(node_image).await?;
    let short_id: String = node_image_id
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect();
    let tag = format!("localhost/minik/vm-build:{}-{short_id}", recipe_hash());
    let context =
        context_tar().map_err(|e| DriverError::io("pack the VM layer build context", e))?;
    let args = HashMap::from([("NODE_IMAGE".to_string(), node_image.to_string())]);
    docker
        .build_image(context, &tag, args, |line| on_line(line))
        .await?;

    let parent = dest
        .dir()
        .parent()
        .ok_or_else(|| DriverError::engine("build the VM disk", "the cache has no parent"))?
        .to_path_buf();
    std::fs::create_dir_all(&parent)
        .map_err(|e| DriverError::io(format!("create {}", parent.display()), e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".building-")
        .tempdir_in(&parent)
        .map_err(|e| DriverError::io(format!("create a directory in {}", parent.display()), e))?;

    on_line("Copying the VM disk out of the build image");
    let copied = copy_results(docker, &tag, tmp.path()).await;
    let docker_client = docker.engine().docker();
    let removed = docker_client
        .remove_image(
            &tag,
            Some(RemoveImageOptionsBuilder::default().force(true).build()),
            None,
        )
        .await;
    if let Err(e) = removed {
        tracing::debug!(%tag, error = %e, "could not remove the VM build image");
    }
    copied?;

    on_line("Converting the VM disk to qcow2");
    let base = BaseFiles::at(tmp.path());
    let raw = tmp.path().join(RAW_NAME);
    let out = tokio::process::Command::new(qemu_img)
        .args(["convert", "-O", "qcow2"])
        .arg(&raw)
        .arg(base.disk())
        .output()
        .await
        .map_err(|e| DriverError::io(format!("run {}", qemu_img.display()), e))?;
    if !out.status.success() {
        return Err(DriverError::engine(
            "qemu-img convert",
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let _ = std::fs::remove_file(&raw);
    for file in [base.disk(), base.kernel(), base.initrd()] {
        set_read_only(&file)?;
    }
    let source = DiskSource {
        node_image: node_image.to_string(),
        node_image_id,
        vm_recipe: recipe_hash(),
        engine: engine_name.to_string(),
    };
    let json = serde_json::to_vec_pretty(&source)
        .map_err(|e| DriverError::engine("encode source.json", e))?;
    write_atomic(&base.source(), &json, 0o644)?;

    // Replace atomically enough: whoever holds the old files (profiles' hard links) keeps them.
    if dest.dir().exists() {
        std::fs::remove_dir_all(dest.dir())
            .map_err(|e| DriverError::io(format!("remove {}", dest.dir().display()), e))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, dest.dir()).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        DriverError::io(format!("move the VM disk to {}", dest.dir().display()), e)
    })?;
    prune_older_recipes(&parent, node_image, dest.dir());
    Ok(())
}

/// Removes the cached disks of `image` made with other VM recipes (profiles keep their own
/// hard links).
fn prune_older_recipes(cache: &Path, image: &str, keep: &Path) {
    let prefix = disk_prefix(image);
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let recipe = name.strip_prefix(&prefix).unwrap_or_default();
        let is_other_recipe = recipe.len() == 12 && recipe.chars().all(|c| c.is_ascii_hexdigit());
        if is_other_recipe && entry.path() != keep {
            tracing::debug!(disk = %name, "removing the VM disk of an older recipe");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Creates a container from `image` (never started), copies [`RESULT_DIR`] out of it into
/// `dir`, and removes the container.
async fn copy_results(docker: &DockerDriver, image: &str, dir: &Path) -> Result<(), DriverError> {
    let client = docker.engine().ready().await?.clone();
    let name = format!("minik-vm-build-{}", std::process::id());
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["/bin/true".to_string()]),
        cmd: Some(Vec::new()),
        ..Default::default()
    };
    let created = client
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(&name).build()),
            body,
        )
        .await
        .map_err(|e| {
            docker
                .engine()
                .error("create the VM disk export container", e)
        })?;
    let stream = client
        .download_from_container(
            &created.id,
            Some(
                DownloadFromContainerOptionsBuilder::default()
                    .path(RESULT_DIR)
                    .build(),
            ),
        )
        .map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(stream);
    let bridge = tokio_util::io::SyncIoBridge::new(reader);
    let target = dir.to_path_buf();
    let unpacked = tokio::task::spawn_blocking(move || unpack_results(bridge, &target))
        .await
        .map_err(|e| DriverError::engine("copy the VM disk", e))?;
    let removed = client
        .remove_container(
            &created.id,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await;
    if let Err(e) = removed {
        tracing::debug!(container = %name, error = %e, "could not remove the VM disk export container");
    }
    let found = unpacked.map_err(|e| DriverError::io("copy the VM disk out of the engine", e))?;
    for want in [RAW_NAME, "vmlinuz", "initrd.img"] {
        if !found.iter().any(|f| f == want) {
            return Err(DriverError::engine(
                "copy the VM disk",
                format!("the build image has no {RESULT_DIR}/{want}"),
            ));
        }
    }
    Ok(())
}

/// Unpacks the regular files of the archive's top directory into `dir` (sparse: runs of
/// zeros become holes). Returns their names.
fn unpack_results(reader: impl Read, dir: &Path) -> std::io::Result<Vec<String>> {
    let mut archive = tar::Archive::new(reader);
    let mut names = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path()?.into_owned();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        if !matches!(name.as_str(), RAW_NAME | "vmlinuz" | "initrd.img") {
            continue;
        }
        let out = dir.join(&name);
        write_sparse(&mut entry, &out)?;
        names.push(name);
    }
    Ok(names)
}

/// Copies `from` into a new file at `to`, leaving holes where whole blocks are zero.
pub fn write_sparse(from: &mut impl Read, to: &Path) -> std::io::Result<u64> {
    const BLOCK: usize = 1 << 20;
    let mut file = std::fs::File::create(to)?;
    let mut buf = vec![0u8; BLOCK];
    let mut len: u64 = 0;
    loop {
        // Fill a whole block (reads may return less).
        let mut filled = 0;
        while filled < BLOCK {
            let n = from.read(&mut buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        let chunk = &buf[..filled];
        if chunk.iter().all(|b| *b == 0) {
            file.seek(SeekFrom::Current(filled as i64))?;
        } else {
            file.write_all(chunk)?;
        }
        len += filled as u64;
        if filled < BLOCK {
            break;
        }
    }
    file.set_len(len)?;
    file.sync_all()?;
    Ok(len)
}

fn set_read_only(path: &Path) -> Result<(), DriverError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444))
            .map_err(|e| DriverError::io(format!("chmod {}", path.display()), e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Gives `to` the files of `from` (hard links, or copies across file systems), unless `to` is
/// already complete.
pub fn link_or_copy(from: &BaseFiles, to: &BaseFiles) -> Result<(), DriverError> {
    if to.is_complete() {
        return Ok(());
    }
    std::fs::create_dir_all(to.dir())
        .map_err(|e| DriverError::io(format!("create {}", to.dir().display()), e))?;
    let pairs: [(PathBuf, PathBuf); 4] = [
        (from.disk(), to.disk()),
        (from.kernel(), to.kernel()),
        (from.initrd(), to.initrd()),
        (from.source(), to.source()),
    ];
    for (src, dst) in pairs {
        if !src.exists() {
            continue;
        }
        let _ = std::fs::remove_file(&dst);
        if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(|e| {
                DriverError::io(format!("copy {} to {}", src.display(), dst.display()), e)
            })?;
        }
    }
    Ok(())
}

/// The virtual size of a disk image, from `qemu-img info`.
pub async fn virtual_size(qemu_img: &Path, image: &Path) -> Result<u64, DriverError> {
    let out = tokio::process::Command::new(qemu_img)
        .args(["info", "--output=json", "-U"])
        .arg(image)
        .output()
        .await
        .map_err(|e| DriverError::io(format!("run {}", qemu_img.display()), e))?;
    if !out.status.success() {
        return Err(DriverError::engine(
            format!("qemu-img info {}", image.display()),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| DriverError::engine("qemu-img info", e))?;
    v.get("virtual-size")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| DriverError::engine("qemu-img info", "no virtual-size"))
}

/// Creates the qcow2 overlay `overlay` of `size_mib` on `backing` (a path relative to the
/// overlay's directory, so the profile directory can move).
pub async fn create_overlay(
    qemu_img: &Path,
    backing_relative: &str,
    overlay: &Path,
    size_mib: u64,
) -> Result<(), DriverError> {
    let out = tokio::process::Command::new(qemu_img)
        .args([
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            "qcow2",
            "-b",
            backing_relative,
        ])
        .arg(overlay)
        .arg(format!("{size_mib}M"))
        .output()
        .await
        .map_err(|e| DriverError::io(format!("run {}", qemu_img.display()), e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(DriverError::engine(
            format!("create the disk {}", overlay.display()),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_is_embedded() {
        let names: Vec<&str> = recipe_files().iter().map(|f| f.0).collect();
        for want in [
            "Dockerfile",
            "make-disk",
            "files/usr/local/sbin/minik-vm-setup",
            "files/etc/systemd/system/minik-vm-setup.service",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        assert_eq!(recipe_hash().len(), 12);
        let tar_bytes = context_tar().unwrap();
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let modes: Vec<(String, u32)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mode().unwrap(),
                )
            })
            .collect();
        assert!(
            modes.contains(&("make-disk".to_string(), 0o755)),
            "{modes:?}"
        );
    }

    #[test]
    fn disk_names_are_file_names() {
        let n = disk_name("localhost/minik/node:none-982d1779ee19");
        assert_eq!(
            n,
            format!("localhost_minik_node_none-982d1779ee19-vm{}", recipe_hash())
        );
        assert!(!disk_name("../../etc:x").contains('/'));
        assert!(!disk_name("../../etc:x").starts_with('.'));
        let long = disk_name(&format!("registry.example.com/{}:tag", "a".repeat(200)));
        assert!(long.len() < 100, "{long}");
        assert_ne!(
            long,
            disk_name(&format!("registry.example.com/{}:tag2", "a".repeat(200)))
        );
    }

    #[test]
    fn sparse_copy_keeps_contents_and_length() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = vec![0u8; 3 << 20];
        data[10] = 1;
        data[(3 << 20) - 1] = 7;
        let out = dir.path().join("raw");
        let n = write_sparse(&mut &data[..], &out).unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(std::fs::read(&out).unwrap(), data);
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let blocks = std::fs::metadata(&out).unwrap().blocks();
            assert!(blocks * 512 < data.len() as u64, "the zero MiB is a hole");
        }
    }

    #[test]
    fn unpacks_only_the_result_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        for (path, body) in [
            ("minik-vm/vmlinuz", &b"kernel"[..]),
            ("minik-vm/initrd.img", b"initrd"),
            ("minik-vm/rootfs.ext4", b"ext4"),
            ("minik-vm/other", b"x"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut h, path, body).unwrap();
        }
        let bytes = builder.into_inner().unwrap();
        let mut names = unpack_results(&bytes[..], dir.path()).unwrap();
        names.sort();
        assert_eq!(names, ["initrd.img", "rootfs.ext4", "vmlinuz"]);
        assert_eq!(
            std::fs::read(dir.path().join("vmlinuz")).unwrap(),
            b"kernel"
        );
        assert!(!dir.path().join("other").exists());
    }

    #[test]
    fn older_recipes_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let image = "localhost/minik/node:none-abc";
        let current = dir.path().join(disk_name(image));
        let older = dir
            .path()
            .join(format!("{}0123456789ab", disk_prefix(image)));
        let other_image = dir
            .path()
            .join(disk_name("localhost/minik/node:v1.35.0-abc"));
        for d in [&current, &older, &other_image] {
            std::fs::create_dir_all(d).unwrap();
        }
        prune_older_recipes(dir.path(), image, &current);
        assert!(current.exists() && other_image.exists());
        assert!(!older.exists());
    }

    #[test]
    fn links_base_files_into_a_profile() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BaseFiles::at(dir.path().join("cache"));
        std::fs::create_dir_all(cache.dir()).unwrap();
        for f in [cache.disk(), cache.kernel(), cache.initrd()] {
            std::fs::write(&f, b"x").unwrap();
        }
        let profile = BaseFiles::at(dir.path().join("p/base"));
        assert!(!profile.is_complete());
        link_or_copy(&cache, &profile).unwrap();
        assert!(profile.is_complete());
        // The cache is replaced: the profile keeps its files.
        std::fs::remove_dir_all(cache.dir()).unwrap();
        assert_eq!(std::fs::read(profile.disk()).unwrap(), b"x");
    }
}
