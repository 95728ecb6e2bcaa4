//! Fully qualified image names.
//!
//! podman stores an image built or imported as `minik/node:1` under `localhost/minik/node:1`,
//! and resolves a short name by trying several registries (`registries.conf`), which can be
//! ambiguous or, for pulls, prompt. Node containers are therefore created from the fully
//! qualified name of the local image the short name resolves to, as kind's podman provider does,
//! so `podman ps` and the container's config name exactly one image.

/// Whether `name` starts with a registry: a first path component with a `.` or `:`, or
/// `localhost` (Docker's rule for telling a registry from a repository namespace).
pub fn has_domain(name: &str) -> bool {
    match name.split_once('/') {
        Some((first, _)) => first == "localhost" || first.contains(['.', ':']),
        None => false,
    }
}

/// `name` with `:latest` when it has neither a tag nor a digest.
pub fn with_tag(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// The fully qualified name among `repo_tags` (a local image's names) that the short `name`
/// stands for: `localhost/NAME` first, then `docker.io/NAME` (and `docker.io/library/NAME`),
/// then any `REGISTRY/NAME`. `None` when `name` is already qualified or nothing matches.
pub fn pick_qualified(name: &str, repo_tags: &[String]) -> Option<String> {
    if has_domain(name) {
        return None;
    }
    let name = with_tag(name);
    let mut preferred = vec![format!("localhost/{name}"), format!("docker.io/{name}")];
    if !name.contains('/') {
        preferred.push(format!("docker.io/library/{name}"));
    }
    preferred
        .iter()
        .find(|p| repo_tags.contains(p))
        .cloned()
        .or_else(|| {
            let suffix = format!("/{name}");
            repo_tags
                .iter()
                .find(|t| t.ends_with(&suffix) && has_domain(t))
                .cloned()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn domains() {
        assert!(has_domain("localhost/minik/node:1"));
        assert!(has_domain("quay.io/x/y"));
        assert!(has_domain("registry:5000/x"));
        assert!(!has_domain("minik/node:1"));
        assert!(!has_domain("debian:trixie-slim"));
        assert!(!has_domain("localhost"));
    }

    #[test]
    fn tags_default_to_latest() {
        assert_eq!(with_tag("minik/node"), "minik/node:latest");
        assert_eq!(with_tag("minik/node:1"), "minik/node:1");
        assert_eq!(with_tag("a@sha256:00"), "a@sha256:00");
        assert_eq!(with_tag("localhost:5000/a"), "localhost:5000/a:latest");
    }

    #[test]
    fn picks_the_local_name() {
        let local = tags(&["localhost/minik/node:dev"]);
        assert_eq!(
            pick_qualified("minik/node:dev", &local).as_deref(),
            Some("localhost/minik/node:dev")
        );
        assert_eq!(pick_qualified("localhost/minik/node:dev", &local), None);
        assert_eq!(pick_qualified("minik/other:dev", &local), None);
        let both = tags(&[
            "quay.io/minik/node:1",
            "docker.io/minik/node:1",
            "localhost/minik/node:1",
        ]);
        assert_eq!(
            pick_qualified("minik/node:1", &both).as_deref(),
            Some("localhost/minik/node:1")
        );
        let hub = tags(&["docker.io/library/debian:trixie-slim"]);
        assert_eq!(
            pick_qualified("debian:trixie-slim", &hub).as_deref(),
            Some("docker.io/library/debian:trixie-slim")
        );
        let quay = tags(&["quay.io/minik/node:latest"]);
        assert_eq!(
            pick_qualified("minik/node", &quay).as_deref(),
            Some("quay.io/minik/node:latest")
        );
    }
}
