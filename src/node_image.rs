//! The node image: its build context (embedded from node-image/ at compile time), its default
//! tag, and building it through the engine's API.

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
