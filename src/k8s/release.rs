//! The Kubernetes binaries (and optional image archives) that go into the node image.
//!
//! Two sources:
//! - [`BinarySource::Download`]: `kubeadm`, `kubelet` and `kubectl` from the official release
//!   downloads (`https://dl.k8s.io/release/<version>/bin/linux/<arch>/<name>`), each checked
//!   against the `.sha256` published next to it, cached in `<cache>/kubernetes/<version>/<arch>/`
//!   (a cached file whose recorded checksum still verifies is not downloaded again, so a rebuild
//!   works offline).
//! - [`BinarySource::Dir`]: the air-gapped path (`--kubernetes-from DIR`). Layout:
//!
//!   ```text
//!   DIR/kubeadm DIR/kubelet DIR/kubectl   required, Linux binaries for the node's arch,
//!                                         executable (DIR/bin/<name> is accepted too)
//!   DIR/crictl                            optional (or DIR/bin/crictl)
//!   DIR/containerd DIR/containerd-shim-runc-v2 DIR/ctr
//!                                         optional, all three or none: the node runs this
//!                                         containerd (2.x for Kubernetes 1.36+)
//!   DIR/VERSION                           optional, e.g. "v1.37.1"; must match the version asked for
//!   DIR/SHA256SUMS                        optional, `sha256sum` format; when present every file it
//!                                         lists must exist and match
//!   DIR/images/*.tar                      optional image archives (docker save / OCI tar), loaded
//!                                         into the node's containerd so that start pulls nothing
//!   ```
//!
//! Either way the result is a [`Bundle`]: the files of the build context's `kubernetes/`
//! directory (`kubernetes/VERSION`, `kubernetes/bin/*` mode 0755, `kubernetes/images/*.tar`),
//! the layout node-image/files/usr/local/sbin/install-kubernetes consumes.

use super::version::KubernetesVersion;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// The official release download location.
pub const DEFAULT_BASE_URL: &str = "https://dl.k8s.io/release";

/// The binaries every node needs.
pub const BINARIES: [&str; 3] = ["kubeadm", "kubelet", "kubectl"];

/// Optional binaries taken from a directory when present.
pub const OPTIONAL_BINARIES: [&str; 4] = ["crictl", "containerd", "containerd-shim-runc-v2", "ctr"];

/// containerd's binaries: a directory that brings one must bring all (the node image then runs
/// that containerd instead of Debian's 1.7, which Kubernetes 1.36+ no longer supports).
pub const CONTAINERD_BINARIES: [&str; 3] = ["containerd", "containerd-shim-runc-v2", "ctr"];

/// Whether a `--kubernetes-from` directory brings its own containerd.
pub fn dir_has_containerd(dir: &Path) -> bool {
    dir.join("containerd").exists() || dir.join("bin/containerd").exists()
}

crate::errors::layer_error!(
    /// Getting the Kubernetes binaries failed (reasons: `crate::errors`).
    ReleaseError,
    /// What went wrong getting the Kubernetes binaries.
    ReleaseKind {
        /// A download failed or did not match its checksum.
        Download,
        /// A local file (cache, directory) cannot be read or written.
        Files,
        /// A `--kubernetes-from` directory that is not usable.
        Usage,
        /// A bug: a task minik started failed.
        Bug,
    }
);

const LAYOUT_ADVICE: &str = "--kubernetes-from DIR needs DIR/kubeadm, DIR/kubelet and DIR/kubectl (Linux binaries \
     for the node's architecture, executable); optional: DIR/crictl, DIR/containerd with DIR/containerd-shim-runc-v2 and DIR/ctr, DIR/VERSION, DIR/SHA256SUMS \
     (sha256sum format, every listed file must match), DIR/images/*.tar.";

/// A Linux CPU architecture, as Kubernetes release paths spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// x86-64.
    Amd64,
    /// 64-bit ARM.
    Arm64,
    /// 64-bit POWER, little endian.
    Ppc64le,
    /// IBM Z.
    S390x,
}

impl Arch {
    /// The host's architecture (nodes are containers or VMs of the same architecture), if
    /// Kubernetes publishes binaries for it.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::Amd64),
            "aarch64" => Some(Arch::Arm64),
            "powerpc64" if cfg!(target_endian = "little") => Some(Arch::Ppc64le),
            "s390x" => Some(Arch::S390x),
            _ => None,
        }
    }

    /// `amd64`, `arm64`, `ppc64le`, `s390x`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
        }
    }

    /// ELF `e_machine` and whether the architecture is big endian.
    fn elf_machine(self) -> (u16, bool) {
        match self {
            Arch::Amd64 => (62, false),
            Arch::Arm64 => (183, false),
            Arch::Ppc64le => (21, false),
            Arch::S390x => (22, true),
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "amd64" | "x86_64" => Ok(Arch::Amd64),
            "arm64" | "aarch64" => Ok(Arch::Arm64),
            "ppc64le" => Ok(Arch::Ppc64le),
            "s390x" => Ok(Arch::S390x),
            _ => Err(format!(
                "unsupported architecture {s:?} (amd64, arm64, ppc64le, s390x)"
            )),
        }
    }
}

/// Where the Kubernetes binaries come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinarySource {
    /// The official release downloads, checksum-verified and cached.
    Download {
        /// The release to fetch.
        version: KubernetesVersion,
        /// The node architecture.
        arch: Arch,
    },
    /// A local directory in the layout described in the module docs.
    Dir {
        /// The directory.
        path: PathBuf,
        /// The version asked for; `DIR/VERSION`, when present, must agree with it. At least one
        /// of the two is needed.
        version: Option<KubernetesVersion>,
        /// The node architecture (binaries of another one are reported as warnings).
        arch: Arch,
    },
}

impl BinarySource {
    /// Produces the bundle: downloads (or reuses the cache under `cache_root`) for
    /// [`BinarySource::Download`], validates the directory for [`BinarySource::Dir`].
    /// `base_url` is [`DEFAULT_BASE_URL`] except in tests and for mirrors.
    pub async fn bundle(
        &self,
        base_url: &str,
        cache_root: &Path,
        progress: &(dyn Fn(ProgressEvent<'_>) + Send + Sync),
    ) -> anyhow::Result<Bundle> {
        match self {
            BinarySource::Download { version, arch } => {
                download(base_url, version, *arch, cache_root, progress).await
            }
            BinarySource::Dir {
                path,
                version,
                arch,
            } => {
                let (path, version, arch) = (path.clone(), version.clone(), *arch);
                // Hashing hundreds of MB is blocking work.
                tokio::task::spawn_blocking(move || from_dir(&path, version.as_ref(), arch))
                    .await
                    .map_err(|e| {
                        ReleaseError::new(
                            ReleaseKind::Bug,
                            format!("validating the directory panicked: {e}"),
                        )
                    })?
            }
        }
    }
}

/// The content of one bundle file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// Small generated content (VERSION).
    Bytes(Vec<u8>),
    /// A verified file on the host (cache or the user's directory); read when the build context
    /// is assembled, so hundreds of MB are not held in memory before they are needed.
    Host(PathBuf),
}

/// One file of the build context's `kubernetes/` directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    /// Path in the build context, e.g. `kubernetes/bin/kubeadm`.
    pub path: String,
    /// Where its bytes are.
    pub source: FileSource,
    /// Unix mode in the image.
    pub mode: u32,
    /// Verified SHA-256 (hex) of a host file; checked again when it is read.
    pub sha256: Option<String>,
}

/// The Kubernetes part of a node image build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The Kubernetes version of the binaries.
    pub version: KubernetesVersion,
    /// `kubernetes/VERSION`, `kubernetes/bin/*`, `kubernetes/images/*`, in a fixed order.
    pub files: Vec<BundleFile>,
    /// Things worth telling the user that do not stop the build (e.g. a binary that does not
    /// look like a Linux executable for the node's architecture, an ignored file in images/).
    pub warnings: Vec<String>,
}

impl Bundle {
    /// The files as `(path in build context, bytes, mode)`, the form
    /// [`crate::node_image::context_tar`] takes. Host files are read now and their checksum is
    /// verified again (`HOST_FILES` if one changed since it was checked).
    pub fn context_files(&self) -> anyhow::Result<Vec<(String, Vec<u8>, u32)>> {
        self.files
            .iter()
            .map(|f| {
                let bytes = match &f.source {
                    FileSource::Bytes(b) => b.clone(),
                    FileSource::Host(p) => {
                        let bytes = std::fs::read(p)
                            .map_err(|e| ReleaseError::new(ReleaseKind::Files, format!("cannot read {}: {e}", p.display())))?;
                        if let Some(want) = &f.sha256 {
                            let got = hex::encode(Sha256::digest(&bytes));
                            if &got != want {
                                return Err(ReleaseError::new(
                                    ReleaseKind::Files,
                                    format!("{} changed after it was verified (sha256 {got}, expected {want})", p.display()),
                                )
                                .into());
                            }
                        }
                        bytes
                    }
                };
                Ok((f.path.clone(), bytes, f.mode))
            })
            .collect()
    }
}

/// Progress of [`download`], for the reporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressEvent<'a> {
    /// The cached file verified; nothing downloaded.
    Cached {
        /// Binary name.
        file: &'a str,
    },
    /// Bytes received so far (`total` from Content-Length, when known).
    Downloading {
        /// Binary name.
        file: &'a str,
        /// Bytes so far.
        done: u64,
        /// Expected size.
        total: Option<u64>,
    },
    /// Downloaded and verified.
    Verified {
        /// Binary name.
        file: &'a str,
    },
}

/// `<cache_root>/kubernetes/<version>/<arch>/`.
pub fn cache_dir(cache_root: &Path, version: &KubernetesVersion, arch: Arch) -> PathBuf {
    cache_root
        .join("kubernetes")
        .join(version.to_string())
        .join(arch.as_str())
}

/// The download URL of one binary: `<base>/<version>/bin/linux/<arch>/<name>`.
pub fn binary_url(base_url: &str, version: &KubernetesVersion, arch: Arch, name: &str) -> String {
    format!(
        "{}/{version}/bin/linux/{arch}/{name}",
        base_url.trim_end_matches('/')
    )
}

fn version_file(version: &KubernetesVersion) -> BundleFile {
    BundleFile {
        path: "kubernetes/VERSION".into(),
        source: FileSource::Bytes(format!("{version}\n").into_bytes()),
        mode: 0o644,
        sha256: None,
    }
}

// ---- download ----------------------------------------------------------------------------

/// Downloads kubeadm, kubelet and kubectl (in parallel) into the cache and verifies each
/// against its published `.sha256`. Network failures, HTTP errors and checksum mismatches are
/// `INET_DOWNLOAD` errors naming the URL; cache I/O errors are `HOST_FILES`.
pub async fn download(
    base_url: &str,
    version: &KubernetesVersion,
    arch: Arch,
    cache_root: &Path,
    progress: &(dyn Fn(ProgressEvent<'_>) + Send + Sync),
) -> anyhow::Result<Bundle> {
    let dir = cache_dir(cache_root, version, arch);
    std::fs::create_dir_all(&dir).map_err(|e| {
        ReleaseError::new(
            ReleaseKind::Files,
            format!("cannot create {}: {e}", dir.display()),
        )
    })?;
    let client = http_client()?;
    let fetches =
        BINARIES.map(|name| fetch_binary(&client, base_url, version, arch, name, &dir, progress));
    let fetched = futures_util::future::try_join_all(fetches).await?;
    let mut files = vec![version_file(version)];
    for (name, (path, sha256)) in BINARIES.iter().zip(fetched) {
        files.push(BundleFile {
            path: format!("kubernetes/bin/{name}"),
            source: FileSource::Host(path),
            mode: 0o755,
            sha256: Some(sha256),
        });
    }
    Ok(Bundle {
        version: version.clone(),
        files,
        warnings: Vec::new(),
    })
}

fn http_client() -> Result<reqwest::Client, ReleaseError> {
    // reqwest is built without a TLS provider of its own; main() installs ring, and doing it
    // here too (a no-op then) keeps library callers and tests from a provider panic.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("minik/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        // A stalled transfer fails instead of hanging the build forever.
        .read_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| {
            ReleaseError::new(
                ReleaseKind::Download,
                format!("cannot set up the HTTP client: {}", error_chain(&e)),
            )
        })
}

/// `error: cause: cause`, since reqwest's own Display leaves out the interesting part.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

async fn fetch_binary(
    client: &reqwest::Client,
    base_url: &str,
    version: &KubernetesVersion,
    arch: Arch,
    name: &str,
    dir: &Path,
    progress: &(dyn Fn(ProgressEvent<'_>) + Send + Sync),
) -> anyhow::Result<(PathBuf, String)> {
    let path = dir.join(name);
    let sum_path = dir.join(format!("{name}.sha256"));
    let url = binary_url(base_url, version, arch, name);

    // Cache hit: the checksum recorded when the file was verified still matches its bytes.
    if let (Ok(recorded), true) = (std::fs::read_to_string(&sum_path), path.is_file()) {
        if let Some(want) = parse_sha256_file(&recorded) {
            let actual = hash_file_blocking(path.clone()).await;
            if actual.as_deref().ok() == Some(want.as_str()) {
                progress(ProgressEvent::Cached { file: name });
                return Ok((path, want));
            }
        }
        tracing::debug!(
            "cached {} does not verify; downloading it again",
            path.display()
        );
    }

    let sum_url = format!("{url}.sha256");
    let sum_text = get(client, &sum_url)
        .await?
        .text()
        .await
        .map_err(|e| transfer_error(&sum_url, &e))?;
    let want = parse_sha256_file(&sum_text).ok_or_else(|| {
        ReleaseError::new(
            ReleaseKind::Download,
            format!("{sum_url} is not a SHA-256 checksum: {:?}", clip(&sum_text)),
        )
    })?;

    let response = get(client, &url).await?;
    let total = response.content_length();
    let host_err = |e: std::io::Error| {
        ReleaseError::new(
            ReleaseKind::Files,
            format!("cannot write into {}: {e}", dir.display()),
        )
    };
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}-"))
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(host_err)?;
    let mut out = tokio::fs::File::from_std(tmp.reopen().map_err(host_err)?);
    let mut hasher = Sha256::new();
    let mut done = 0u64;
    let mut stream = response.bytes_stream();
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| transfer_error(&url, &e))?;
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(host_err)?;
        done += chunk.len() as u64;
        progress(ProgressEvent::Downloading {
            file: name,
            done,
            total,
        });
    }
    out.sync_all().await.map_err(host_err)?;
    drop(out);
    let got = hex::encode(hasher.finalize());
    if got != want {
        // The temporary file is deleted on drop: nothing unverified stays in the cache.
        return Err(ReleaseError::new(
            ReleaseKind::Download,
            format!(
                "checksum mismatch for {url}: expected sha256 {want} (from {sum_url}), got {got}"
            ),
        )
        .into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o755))
            .map_err(host_err)?;
    }
    tmp.persist(&path).map_err(|e| host_err(e.error))?;
    crate::state::write_atomic(&sum_path, format!("{want}\n").as_bytes(), 0o644)
        .map_err(host_err)?;
    progress(ProgressEvent::Verified { file: name });
    Ok((path, want))
}

async fn get(client: &reqwest::Client, url: &str) -> anyhow::Result<reqwest::Response> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| transfer_error(url, &e))?;
    let status = response.status();
    if !status.is_success() {
        let hint = if status == reqwest::StatusCode::NOT_FOUND {
            " (is the version a published Kubernetes release, for this architecture?)"
        } else {
            ""
        };
        return Err(ReleaseError::new(
            ReleaseKind::Download,
            format!("cannot download {url}: HTTP {status}{hint}"),
        )
        .into());
    }
    Ok(response)
}

fn transfer_error(url: &str, e: &reqwest::Error) -> ReleaseError {
    ReleaseError::new(
        ReleaseKind::Download,
        format!("cannot download {url}: {}", error_chain(e)),
    )
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// The digest in a `.sha256` file: dl.k8s.io publishes the bare hex digest; `sha256sum`
/// output (`<hex>  <name>`) is accepted too. Lowercased.
fn parse_sha256_file(text: &str) -> Option<String> {
    let digest = text.split_whitespace().next()?;
    is_sha256_hex(digest).then(|| digest.to_ascii_lowercase())
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn hash_file_blocking(path: PathBuf) -> std::io::Result<String> {
    tokio::task::spawn_blocking(move || hash_file(&path))
        .await
        .map_err(std::io::Error::other)?
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

// ---- local directory ---------------------------------------------------------------------

fn dir_error(message: String) -> anyhow::Error {
    ReleaseError::new(ReleaseKind::Usage, message)
        .with_advice(LAYOUT_ADVICE)
        .into()
}

/// Validates a binaries directory (layout in the module docs) and returns its bundle.
///
/// Every problem is an `MK_USAGE` error naming the file: the directory or a required binary
/// missing, an empty or non-executable binary, a checksum that does not match `SHA256SUMS`
/// (expected and actual digests shown), a `VERSION` that disagrees with `version`.
pub fn from_dir(
    dir: &Path,
    version: Option<&KubernetesVersion>,
    arch: Arch,
) -> anyhow::Result<Bundle> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(dir_error(format!(
                "the Kubernetes binaries directory {} is not a directory",
                dir.display()
            )));
        }
        Err(e) => {
            return Err(dir_error(format!(
                "cannot use the Kubernetes binaries directory {}: {e}",
                dir.display()
            )));
        }
    }
    let version = dir_version(dir, version)?;
    let sums = read_sums(dir)?;
    let mut hashes: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut files = vec![version_file(&version)];
    let mut warnings = Vec::new();

    for (name, required) in BINARIES
        .iter()
        .map(|n| (n, true))
        .chain(OPTIONAL_BINARIES.iter().map(|n| (n, false)))
    {
        let candidates = [PathBuf::from(name), Path::new("bin").join(name)];
        let Some(rel) = candidates.iter().find(|rel| dir.join(rel).exists()) else {
            if required {
                return Err(dir_error(format!(
                    "the Kubernetes binaries directory {} has no {name} (looked for {} and {})",
                    dir.display(),
                    dir.join(&candidates[0]).display(),
                    dir.join(&candidates[1]).display()
                )));
            }
            continue;
        };
        let path = dir.join(rel);
        check_binary(&path)?;
        if let Some(w) = elf_warning(&path, arch) {
            warnings.push(w);
        }
        let sha256 = verify_against_sums(dir, rel, &sums, &mut hashes)?;
        if !sums.is_empty() && !sums.contains_key(rel) {
            warnings.push(format!(
                "{} is not listed in {}",
                path.display(),
                dir.join("SHA256SUMS").display()
            ));
        }
        files.push(BundleFile {
            path: format!("kubernetes/bin/{name}"),
            source: FileSource::Host(path),
            mode: 0o755,
            sha256: Some(sha256),
        });
    }

    if dir_has_containerd(dir) {
        for name in CONTAINERD_BINARIES {
            if !files
                .iter()
                .any(|f| f.path == format!("kubernetes/bin/{name}"))
            {
                return Err(dir_error(format!(
                    "the Kubernetes binaries directory {} has containerd but no {name} \
                     (containerd, containerd-shim-runc-v2 and ctr come together)",
                    dir.display()
                )));
            }
        }
    }

    let images = dir.join("images");
    if images.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&images)
            .map_err(|e| dir_error(format!("cannot list {}: {e}", images.display())))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(|e| dir_error(format!("cannot list {}: {e}", images.display())))?;
        entries.sort();
        for path in entries {
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !file_name.ends_with(".tar") || !path.is_file() {
                warnings.push(format!(
                    "ignoring {}: only .tar image archives are loaded",
                    path.display()
                ));
                continue;
            }
            check_tar(&path)?;
            let rel = Path::new("images").join(&file_name);
            let sha256 = verify_against_sums(dir, &rel, &sums, &mut hashes)?;
            files.push(BundleFile {
                path: format!("kubernetes/images/{file_name}"),
                source: FileSource::Host(path),
                mode: 0o644,
                sha256: Some(sha256),
            });
        }
    }

    // Every file SHA256SUMS lists must be there and match, bundled or not.
    for rel in sums.keys() {
        if !dir.join(rel).is_file() {
            return Err(dir_error(format!(
                "{} lists {} but {} does not exist",
                dir.join("SHA256SUMS").display(),
                rel.display(),
                dir.join(rel).display()
            )));
        }
        verify_against_sums(dir, rel, &sums, &mut hashes)?;
    }
    Ok(Bundle {
        version,
        files,
        warnings,
    })
}

fn dir_version(dir: &Path, asked: Option<&KubernetesVersion>) -> anyhow::Result<KubernetesVersion> {
    let file = dir.join("VERSION");
    let recorded = match std::fs::read_to_string(&file) {
        Ok(text) => Some(
            text.trim()
                .parse::<KubernetesVersion>()
                .map_err(|e| dir_error(format!("{}: {e}", file.display())))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(dir_error(format!("cannot read {}: {e}", file.display()))),
    };
    match (recorded, asked) {
        (Some(r), Some(a)) if &r != a => Err(dir_error(format!(
            "{} says {r} but Kubernetes {a} was asked for; pass --kubernetes-version {r} or use a directory with {a}",
            file.display()
        ))),
        (Some(r), _) => Ok(r),
        (None, Some(a)) => Ok(a.clone()),
        (None, None) => Err(dir_error(format!(
            "cannot tell the Kubernetes version of {}: write it to {} or pass --kubernetes-version",
            dir.display(),
            file.display()
        ))),
    }
}

/// `DIR/SHA256SUMS` as relative path → digest; empty when the file is absent.
fn read_sums(dir: &Path) -> anyhow::Result<BTreeMap<PathBuf, String>> {
    let file = dir.join("SHA256SUMS");
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(dir_error(format!("cannot read {}: {e}", file.display()))),
    };
    let mut sums = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let bad = |why: &str| {
            dir_error(format!(
                "{} line {}: {why}: {line:?}",
                file.display(),
                index + 1
            ))
        };
        // `<hex>  <name>` (text mode) or `<hex> *<name>` (binary mode), as sha256sum writes.
        let (digest, rest) = line
            .split_once(' ')
            .ok_or_else(|| bad("expected `<sha256>  <file>`"))?;
        if !is_sha256_hex(digest) {
            return Err(bad("not a SHA-256 digest"));
        }
        let name = rest
            .strip_prefix(' ')
            .or_else(|| rest.strip_prefix('*'))
            .unwrap_or(rest);
        let rel = Path::new(name.strip_prefix("./").unwrap_or(name));
        let safe = !name.is_empty()
            && rel
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !safe {
            return Err(bad("the file must be a relative path inside the directory"));
        }
        sums.insert(rel.to_path_buf(), digest.to_ascii_lowercase());
    }
    Ok(sums)
}

/// Hashes `DIR/rel` (once) and, when SHA256SUMS lists it, compares. Returns the digest.
fn verify_against_sums(
    dir: &Path,
    rel: &Path,
    sums: &BTreeMap<PathBuf, String>,
    hashes: &mut BTreeMap<PathBuf, String>,
) -> anyhow::Result<String> {
    let path = dir.join(rel);
    let actual = match hashes.get(rel) {
        Some(h) => h.clone(),
        None => {
            let h = hash_file(&path)
                .map_err(|e| dir_error(format!("cannot read {}: {e}", path.display())))?;
            hashes.insert(rel.to_path_buf(), h.clone());
            h
        }
    };
    if let Some(want) = sums.get(rel)
        && want != &actual
    {
        return Err(dir_error(format!(
            "checksum mismatch for {}: {} expects sha256 {want}, the file has {actual}",
            path.display(),
            dir.join("SHA256SUMS").display()
        )));
    }
    Ok(actual)
}

fn check_binary(path: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path)
        .map_err(|e| dir_error(format!("cannot use {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(dir_error(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    if meta.len() == 0 {
        return Err(dir_error(format!(
            "{} is empty (an interrupted download?)",
            path.display()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(dir_error(format!(
                "{} is not executable (chmod +x {})",
                path.display(),
                path.display()
            )));
        }
    }
    Ok(())
}

/// A warning when the file is not a 64-bit Linux ELF executable for `arch` (a macOS kubectl
/// or another architecture's kubelet would only fail at node start, much later). Only a
/// warning: scripts standing in for the binaries are legitimate in tests.
fn elf_warning(path: &Path, arch: Arch) -> Option<String> {
    let mut header = [0u8; 20];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut header));
    let (machine, big_endian) = arch.elf_machine();
    let matches = read.is_ok()
        && header[..4] == *b"\x7fELF"
        && header[4] == 2
        && header[5] == if big_endian { 2 } else { 1 }
        && {
            let m = [header[18], header[19]];
            (if big_endian {
                u16::from_be_bytes(m)
            } else {
                u16::from_le_bytes(m)
            }) == machine
        };
    (!matches).then(|| {
        format!(
            "{} does not look like a Linux {arch} executable",
            path.display()
        )
    })
}

/// Image archives must be tar files (`ustar` magic), so a stray compressed or HTML file is
/// caught here rather than by containerd in the middle of the image build.
fn check_tar(path: &Path) -> anyhow::Result<()> {
    let mut header = [0u8; 512];
    let ok = std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok()
        && &header[257..262] == b"ustar";
    if !ok {
        return Err(dir_error(format!(
            "{} is not a tar archive (docker save / OCI image tar)",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
#[path = "release_tests.rs"]
mod tests;
