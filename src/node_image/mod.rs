//! The node image: its build context (embedded from node-image/ at compile time), its default
//! tag, and building it through the engine's API.

pub mod build;

use minik_driver_docker::context;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/node_image_files.rs"));
}

/// The repository of minik's own node images.
pub const REPOSITORY: &str = "localhost/minik/node";

/// The embedded recipe files: (path relative to node-image/, contents, unix mode).
pub fn files() -> &'static [(&'static str, &'static [u8], u32)] {
    embedded::FILES
}

/// A short hash of the recipe, so a changed recipe gets a new tag instead of a stale image.
pub fn recipe_hash() -> String {
    context::recipe_hash(files())
}

/// The default tag for a Kubernetes version (`none` for no Kubernetes).
pub fn default_tag(kubernetes_version: &str) -> String {
    format!("{REPOSITORY}:{kubernetes_version}-{}", recipe_hash())
}

/// The tag of a node image built from a `--kubernetes-from` directory: the default tag plus a
/// key of the directory's contents, so a rebuilt or changed directory (new binaries, another
/// preloaded image) gets a new image instead of the stale one of the same version.
pub fn tag_from_dir(kubernetes_version: &str, dir: &std::path::Path) -> String {
    match dir_key(dir) {
        Some(key) => format!("{}-from-{key}", default_tag(kubernetes_version)),
        None => default_tag(kubernetes_version),
    }
}

/// A short key of a directory's files: every relative path with its size and modification
/// time (cheap: no file is read). `None` when the directory cannot be listed (its validation
/// reports why, later).
pub fn dir_key(dir: &std::path::Path) -> Option<String> {
    use sha2::Digest;
    fn walk(
        root: &std::path::Path,
        dir: &std::path::Path,
        out: &mut Vec<String>,
    ) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            // Follow symlinks: the layout may link to binaries elsewhere.
            let meta = std::fs::metadata(&path)?;
            if meta.is_dir() {
                walk(root, &path, out)?;
            } else {
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                let rel = path.strip_prefix(root).unwrap_or(&path);
                out.push(format!("{}\0{}\0{mtime}", rel.display(), meta.len()));
            }
        }
        Ok(())
    }
    let mut lines = Vec::new();
    walk(dir, dir, &mut lines).ok()?;
    lines.sort();
    let digest = sha2::Sha256::digest(lines.join("\n").as_bytes());
    Some(hex::encode(&digest[..4]))
}

/// A tar of the build context. `extra` files (e.g. Kubernetes binaries) are added under
/// their given paths and replace embedded files of the same path.
pub fn context_tar(extra: &[(String, Vec<u8>, u32)]) -> std::io::Result<Vec<u8>> {
    context::context_tar(files(), extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_is_embedded_and_tagged() {
        let names: Vec<&str> = files().iter().map(|f| f.0).collect();
        assert!(names.contains(&"Dockerfile"), "{names:?}");
        assert!(names.contains(&"kubernetes/VERSION"), "{names:?}");
        let tag = default_tag("none");
        assert!(tag.starts_with("localhost/minik/node:none-"), "{tag}");
        assert_eq!(tag, default_tag("none"), "stable");
    }

    #[test]
    fn a_changed_kubernetes_directory_gets_another_tag() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("images")).unwrap();
        std::fs::write(dir.path().join("kubeadm"), b"one").unwrap();
        let first = tag_from_dir("v1.37.2", dir.path());
        assert!(
            first.starts_with(&format!("{}-from-", default_tag("v1.37.2"))),
            "{first}"
        );
        assert_eq!(first, tag_from_dir("v1.37.2", dir.path()), "stable");
        // A preloaded image added below images/ changes it, as does a rewritten binary.
        std::fs::write(dir.path().join("images/extra.tar"), b"tar").unwrap();
        let second = tag_from_dir("v1.37.2", dir.path());
        assert_ne!(first, second);
        std::fs::write(dir.path().join("kubeadm"), b"three").unwrap();
        assert_ne!(second, tag_from_dir("v1.37.2", dir.path()));
        // A directory that cannot be listed keeps the plain tag (validation says why later).
        assert_eq!(
            tag_from_dir("v1.37.2", &dir.path().join("missing")),
            default_tag("v1.37.2")
        );
    }

    #[test]
    fn context_tar_lists_every_file_and_overrides() {
        let tar_bytes =
            context_tar(&[("kubernetes/VERSION".into(), b"v1.2.3\n".to_vec(), 0o644)]).unwrap();
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            if path == "kubernetes/VERSION" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut entry, &mut s).unwrap();
                assert_eq!(s, "v1.2.3\n");
            }
            seen.push(path);
        }
        assert_eq!(
            seen.iter().filter(|p| *p == "kubernetes/VERSION").count(),
            1
        );
        assert_eq!(seen.len(), files().len());
    }
}
