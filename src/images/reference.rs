//! Image references as containerd names them, and what `ctr -n k8s.io images ls` says.

/// The registry Docker Hub names default to.
const DEFAULT_DOMAIN: &str = "docker.io";

/// Whether `name`'s first path component is a registry (has a `.` or `:`, or is `localhost`):
/// Docker's rule.
pub fn has_domain(name: &str) -> bool {
    match name.split_once('/') {
        Some((first, _)) => first == "localhost" || first.contains(['.', ':']),
        None => false,
    }
}

/// Why `reference` cannot name an image (`None` when it can): empty, whitespace or control
/// characters, characters no reference grammar allows, or upper case in the repository path
/// (Docker's rule; a registry host may have it). Image IDs (`sha256:…`, hex) pass.
pub fn invalid_reason(reference: &str) -> Option<&'static str> {
    if reference.is_empty() {
        return Some("it is empty");
    }
    if reference
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Some("it holds whitespace or control characters");
    }
    if !reference
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c))
    {
        return Some("it holds characters an image reference cannot have");
    }
    if reference.starts_with(['-', '.', '/', ':', '@']) || reference.ends_with(['/', ':', '@']) {
        return Some("it does not start and end with a letter or digit");
    }
    let name = reference.split('@').next().unwrap_or(reference);
    let path = if has_domain(name) {
        name.split_once('/').map_or("", |(_, p)| p)
    } else {
        name
    };
    let repo_path = repository(path);
    if repo_path.chars().any(|c| c.is_ascii_uppercase()) {
        return Some("its repository name has upper-case letters");
    }
    None
}

/// The fully qualified form of an image reference, as containerd stores it: a registry
/// (`docker.io` by default, with `library/` for one-component names), and `:latest` when the
/// reference has neither a tag nor a digest. `hello` → `docker.io/library/hello:latest`,
/// `localhost/x/y:1` unchanged.
pub fn normalize(reference: &str) -> String {
    let mut name = reference.to_string();
    if !has_domain(&name) {
        name = if name.contains('/') {
            format!("{DEFAULT_DOMAIN}/{name}")
        } else {
            format!("{DEFAULT_DOMAIN}/library/{name}")
        };
    }
    let last = name.rsplit('/').next().unwrap_or(&name);
    if !last.contains(':') && !name.contains('@') {
        name.push_str(":latest");
    }
    name
}

/// The repository of a reference (`docker.io/library/x:1@sha256:..` → `docker.io/library/x`).
pub fn repository(reference: &str) -> &str {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    let slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    match no_digest[slash..].find(':') {
        Some(colon) => &no_digest[..slash + colon],
        None => no_digest,
    }
}

/// The `sha256:<64 hex>` digest of a reference pinned by digest, if any.
pub fn digest_of(reference: &str) -> Option<&str> {
    let (_, digest) = reference.split_once('@')?;
    is_digest(digest).then_some(digest)
}

/// Whether `s` is `sha256:` followed by 64 lowercase hex digits.
pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// One image record in a node's containerd (namespace k8s.io).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeImage {
    /// The name (`docker.io/library/x:1`, `x@sha256:..`, or the CRI plugin's `sha256:<id>`).
    pub reference: String,
    /// The digest of the manifest (or index) the name points at.
    pub target: String,
    /// Human size as ctr prints it (`1.9 MiB`).
    pub size: String,
}

/// The image records of one node, from `ctr -n k8s.io images ls`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeImages {
    pub images: Vec<NodeImage>,
}

impl NodeImages {
    /// Parses `ctr images ls` output: a header, then `REF TYPE DIGEST SIZE PLATFORMS LABELS`
    /// rows whose SIZE is two words (`1.9 MiB`). Lines that do not fit are skipped.
    pub fn parse(output: &str) -> NodeImages {
        let images = output
            .lines()
            .filter(|l| !l.starts_with("REF ") && !l.trim().is_empty())
            .filter_map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                if words.len() < 5 || !is_digest(words[2]) {
                    return None;
                }
                Some(NodeImage {
                    reference: words[0].to_string(),
                    target: words[2].to_string(),
                    size: format!("{} {}", words[3], words[4]),
                })
            })
            .collect();
        NodeImages { images }
    }

    /// The record named `reference`.
    pub fn get(&self, reference: &str) -> Option<&NodeImage> {
        self.images.iter().find(|i| i.reference == reference)
    }

    /// The target digest of the image whose engine id is `id`: the CRI plugin names every image
    /// it knows `sha256:<config digest>` (the id Docker and podman report for the same image);
    /// an engine whose id is the manifest digest itself (Docker's containerd image store)
    /// matches a record's target instead.
    pub fn target_of_id(&self, id: &str) -> Option<&str> {
        self.get(id).map(|i| i.target.as_str()).or_else(|| {
            self.images
                .iter()
                .find(|i| i.target == id)
                .map(|i| i.target.as_str())
        })
    }

    /// A name (other than `except`) pointing at `target`, to re-tag from.
    pub fn name_for_target(&self, target: &str, except: &str) -> Option<&str> {
        self.images
            .iter()
            .find(|i| i.target == target && i.reference != except)
            .map(|i| i.reference.as_str())
    }

    /// The CRI plugin's id name (`sha256:<config digest>`) for `target`, if any.
    pub fn id_for_target(&self, target: &str) -> Option<&str> {
        self.images
            .iter()
            .find(|i| i.target == target && is_digest(&i.reference))
            .map(|i| i.reference.as_str())
    }

    /// Names a user would recognise: not the CRI plugin's `sha256:` ids.
    pub fn named(&self) -> impl Iterator<Item = &NodeImage> {
        self.images.iter().filter(|i| !is_digest(&i.reference))
    }
}

/// The snapshotter the CRI plugin unpacks images with, from `containerd config dump`
/// (`snapshotter = "overlayfs"` in config version 2, `snapshotter = 'overlayfs'` in version 3):
/// the first non-empty value. Images must be unpacked into that snapshotter to be usable
/// without a second unpack (kind does the same).
pub fn parse_snapshotter(config_dump: &str) -> Option<String> {
    config_dump.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("snapshotter")?.trim_start();
        let value = rest.strip_prefix('=')?.trim();
        let value = value.trim_matches(|c| c == '"' || c == '\'');
        (!value.is_empty()).then(|| value.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_references_are_named() {
        for ok in [
            "hello",
            "localhost/minik-test/hello:1",
            "registry.k8s.io/pause:3.10",
            "Host.Example:5000/app:v1",
            "x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "sha256:0123456789abcdef",
        ] {
            assert_eq!(invalid_reason(ok), None, "{ok}");
        }
        for bad in ["", "a/Bad Name", "App", "x\x1b[2J", "-x", "x:", "a//$b"] {
            assert!(invalid_reason(bad).is_some(), "{bad:?}");
        }
    }

    const LS: &str = "REF                                                                     TYPE                                                 DIGEST                                                                  SIZE    PLATFORMS   LABELS                          
localhost/minik-test/hello:1                                            application/vnd.docker.distribution.manifest.v2+json sha256:7b5d051b2ffdea0c50368c6e6a36cb7373106143bf4bb274b5501f71bd6e9ba8 1.9 MiB linux/amd64 io.cri-containerd.image=managed 
sha256:cfa46ed2c7c4cc6b25d2549fed90f7df3b0a6b3a91104d1a06915c68708ad5d2 application/vnd.docker.distribution.manifest.v2+json sha256:7b5d051b2ffdea0c50368c6e6a36cb7373106143bf4bb274b5501f71bd6e9ba8 1.9 MiB linux/amd64 io.cri-containerd.image=managed 
registry.k8s.io/pause:3.10                                              application/vnd.oci.image.index.v1+json              sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a 312.0 KiB linux/amd64,linux/arm64 - 
";

    #[test]
    fn parses_ctr_images_ls() {
        let n = NodeImages::parse(LS);
        assert_eq!(n.images.len(), 3);
        let hello = n.get("localhost/minik-test/hello:1").unwrap();
        assert_eq!(
            hello.target,
            "sha256:7b5d051b2ffdea0c50368c6e6a36cb7373106143bf4bb274b5501f71bd6e9ba8"
        );
        assert_eq!(hello.size, "1.9 MiB");
        assert_eq!(
            n.get("registry.k8s.io/pause:3.10").unwrap().size,
            "312.0 KiB"
        );
        let id = "sha256:cfa46ed2c7c4cc6b25d2549fed90f7df3b0a6b3a91104d1a06915c68708ad5d2";
        assert_eq!(n.target_of_id(id), Some(hello.target.as_str()));
        assert_eq!(n.id_for_target(&hello.target), Some(id));
        assert_eq!(n.named().count(), 2);
        // Docker's containerd store reports the manifest digest as the id.
        assert_eq!(n.target_of_id(&hello.target), Some(hello.target.as_str()));
        assert_eq!(n.target_of_id(&format!("sha256:{}", "0".repeat(64))), None);
        assert_eq!(
            NodeImages::parse("REF TYPE DIGEST SIZE PLATFORMS LABELS\n").images,
            vec![]
        );
    }

    #[test]
    fn normalizes_like_containerd() {
        assert_eq!(normalize("hello"), "docker.io/library/hello:latest");
        assert_eq!(normalize("me/app:2"), "docker.io/me/app:2");
        assert_eq!(
            normalize("localhost/minik-test/hello:1"),
            "localhost/minik-test/hello:1"
        );
        assert_eq!(normalize("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(
            normalize("registry.k8s.io/pause:3.10"),
            "registry.k8s.io/pause:3.10"
        );
        let pinned = format!("x@sha256:{}", "a".repeat(64));
        assert_eq!(normalize(&pinned), format!("docker.io/library/{pinned}"));
    }

    #[test]
    fn splits_references() {
        let d = format!("sha256:{}", "b".repeat(64));
        let r = format!("registry.k8s.io/ingress-nginx/controller:v1.12.3@{d}");
        assert_eq!(repository(&r), "registry.k8s.io/ingress-nginx/controller");
        assert_eq!(repository("localhost:5000/app:1"), "localhost:5000/app");
        assert_eq!(repository("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(digest_of(&r), Some(d.as_str()));
        assert_eq!(digest_of("x:1"), None);
        assert!(!is_digest("sha256:abc"));
    }

    #[test]
    fn finds_the_cri_snapshotter() {
        let v2 = "[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n      default_runtime_name = \"runc\"\n      snapshotter = \"native\"\n        snapshotter = \"\"\n";
        assert_eq!(parse_snapshotter(v2).as_deref(), Some("native"));
        let v3 = "  [plugins.'io.containerd.cri.v1.images']\n    snapshotter = 'overlayfs'\n";
        assert_eq!(parse_snapshotter(v3).as_deref(), Some("overlayfs"));
        assert_eq!(parse_snapshotter("version = 2\n"), None);
        assert_eq!(parse_snapshotter("  snapshotter = \"\"\n"), None);
    }
}
