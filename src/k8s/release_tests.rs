//! Tests of release.rs. Downloads go to a tiny HTTP server on 127.0.0.1 started by each test
//! (dl.k8s.io is not reachable here, and tests must not use the network anyway).

use super::*;
use crate::errors::classify;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn v(s: &str) -> KubernetesVersion {
    s.parse().unwrap()
}

/// Bytes that look like a Linux amd64 executable, `size` long, distinct per `seed`.
fn fake_elf(seed: u8, size: usize) -> Vec<u8> {
    let mut b = vec![0u8; size.max(64)];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2; // 64-bit
    b[5] = 1; // little endian
    b[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
    for (i, byte) in b.iter_mut().enumerate().skip(64) {
        *byte = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
    b
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A minimal HTTP/1.1 server: fixed responses by path, every request path recorded.
struct Server {
    base: String,
    hits: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start(routes: Routes) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/release", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(Vec::new()));
        let routes = Arc::new(routes);
        let task = {
            let hits = hits.clone();
            tokio::spawn(async move {
                while let Ok((mut sock, _)) = listener.accept().await {
                    let (hits, routes) = (hits.clone(), routes.clone());
                    tokio::spawn(async move {
                        let mut request = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                            match sock.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => request.extend_from_slice(&buf[..n]),
                            }
                        }
                        let text = String::from_utf8_lossy(&request);
                        let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
                        hits.lock().unwrap().push(path.clone());
                        let (status, body) = routes
                            .get(&path)
                            .cloned()
                            .unwrap_or((404, b"not found".to_vec()));
                        let reason = if status == 200 { "OK" } else { "Not Found" };
                        let head = format!(
                            "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(&body).await;
                        let _ = sock.shutdown().await;
                    });
                }
            })
        };
        Server { base, hits, task }
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

/// Path → (HTTP status, body).
type Routes = HashMap<String, (u16, Vec<u8>)>;

/// Routes serving the three binaries of `version`/amd64 with correct `.sha256` files, and
/// the binaries' contents by name.
fn release_routes(version: &str) -> (Routes, HashMap<&'static str, Vec<u8>>) {
    let mut routes = HashMap::new();
    let mut contents = HashMap::new();
    for (i, name) in BINARIES.iter().enumerate() {
        // Large enough to arrive in several chunks.
        let body = fake_elf(i as u8, 300_000 + i * 1000);
        let path = format!("/release/{version}/bin/linux/amd64/{name}");
        routes.insert(format!("{path}.sha256"), (200, sha(&body).into_bytes()));
        routes.insert(path, (200, body.clone()));
        contents.insert(*name, body);
    }
    (routes, contents)
}

fn no_progress(_: ProgressEvent<'_>) {}

// ---- basics ---------------------------------------------------------------------------------

#[test]
fn arch_names_urls_and_cache_layout() {
    assert_eq!("amd64".parse::<Arch>().unwrap(), Arch::Amd64);
    assert_eq!("aarch64".parse::<Arch>().unwrap(), Arch::Arm64);
    assert_eq!(Arch::Ppc64le.to_string(), "ppc64le");
    assert!("riscv64".parse::<Arch>().unwrap_err().contains("riscv64"));
    if cfg!(target_arch = "x86_64") {
        assert_eq!(Arch::host(), Some(Arch::Amd64));
    }
    assert_eq!(
        binary_url(DEFAULT_BASE_URL, &v("v1.37.1"), Arch::Arm64, "kubelet"),
        "https://dl.k8s.io/release/v1.37.1/bin/linux/arm64/kubelet"
    );
    assert_eq!(
        binary_url("http://m/r/", &v("v1.33.0"), Arch::Amd64, "kubeadm"),
        "http://m/r/v1.33.0/bin/linux/amd64/kubeadm"
    );
    assert_eq!(
        cache_dir(Path::new("/c"), &v("v1.36.0-rc.1"), Arch::S390x),
        Path::new("/c/kubernetes/v1.36.0-rc.1/s390x")
    );
}

#[test]
fn sha256_files_in_both_published_formats() {
    let d = "A".repeat(64);
    assert_eq!(parse_sha256_file(&d), Some("a".repeat(64)));
    assert_eq!(
        parse_sha256_file(&format!("{d}  kubeadm\n")),
        Some("a".repeat(64))
    );
    assert_eq!(parse_sha256_file("<html>not found</html>"), None);
    assert_eq!(parse_sha256_file(""), None);
    assert_eq!(parse_sha256_file(&"g".repeat(64)), None);
}

// ---- download -------------------------------------------------------------------------------

#[tokio::test]
async fn download_verifies_caches_and_reuses() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (routes, contents) = release_routes("v1.37.1");
    let server = Server::start(routes).await;
    let cache = tempfile::tempdir().unwrap();
    let version = v("v1.37.1");
    let events = Mutex::new(Vec::new());
    let record = |e: ProgressEvent<'_>| {
        let tag = match e {
            ProgressEvent::Cached { file } => format!("cached {file}"),
            ProgressEvent::Verified { file } => format!("verified {file}"),
            ProgressEvent::Downloading { file, done, total } => {
                assert!(total.is_none_or(|t| done <= t));
                format!("downloading {file}")
            }
        };
        events.lock().unwrap().push(tag);
    };

    let source = BinarySource::Download {
        version: version.clone(),
        arch: Arch::Amd64,
    };
    let bundle = source
        .bundle(&server.base, cache.path(), &record)
        .await
        .unwrap();
    assert_eq!(bundle.version, version);
    assert!(bundle.warnings.is_empty());
    let files = bundle.context_files().unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        paths,
        [
            "kubernetes/VERSION",
            "kubernetes/bin/kubeadm",
            "kubernetes/bin/kubelet",
            "kubernetes/bin/kubectl"
        ]
    );
    assert_eq!(files[0].1, b"v1.37.1\n");
    assert_eq!(files[0].2, 0o644);
    for (path, bytes, mode) in &files[1..] {
        let name = path.rsplit('/').next().unwrap();
        assert_eq!(bytes, &contents[name], "{name}");
        assert_eq!(*mode, 0o755);
        let cached = cache_dir(cache.path(), &version, Arch::Amd64).join(name);
        assert_eq!(std::fs::read(&cached).unwrap(), contents[name]);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&cached).unwrap().permissions().mode() & 0o777,
            0o755
        );
    }
    assert_eq!(server.hits().len(), 6, "three binaries and three checksums");
    {
        let ev = events.lock().unwrap();
        for name in BINARIES {
            assert!(ev.contains(&format!("verified {name}")));
            assert!(ev.contains(&format!("downloading {name}")));
        }
    }

    // Second run: everything from the cache, no request at all (works offline).
    events.lock().unwrap().clear();
    let again = source
        .bundle(&server.base, cache.path(), &record)
        .await
        .unwrap();
    assert_eq!(again, bundle);
    assert_eq!(server.hits().len(), 6);
    let mut ev = events.lock().unwrap().clone();
    ev.sort();
    assert_eq!(ev, ["cached kubeadm", "cached kubectl", "cached kubelet"]);

    // A corrupted cache entry is detected and downloaded again.
    let kubelet = cache_dir(cache.path(), &version, Arch::Amd64).join("kubelet");
    std::fs::write(&kubelet, b"truncated").unwrap();
    source
        .bundle(&server.base, cache.path(), &no_progress)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&kubelet).unwrap(), contents["kubelet"]);
    let hits = server.hits();
    assert_eq!(hits.len(), 8);
    assert!(hits[6..].iter().all(|h| h.contains("/kubelet")), "{hits:?}");
}

#[tokio::test]
async fn checksum_mismatch_is_an_inet_download_error_and_caches_nothing() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (mut routes, contents) = release_routes("v1.36.2");
    let wrong = sha(b"something else");
    routes.insert(
        "/release/v1.36.2/bin/linux/amd64/kubelet.sha256".into(),
        (200, wrong.clone().into_bytes()),
    );
    let server = Server::start(routes).await;
    let cache = tempfile::tempdir().unwrap();
    let err = download(
        &server.base,
        &v("v1.36.2"),
        Arch::Amd64,
        cache.path(),
        &no_progress,
    )
    .await
    .unwrap_err();
    assert_eq!(classify(&err).0.id, "INET_DOWNLOAD");
    let message = err.to_string();
    assert!(message.contains("checksum mismatch"), "{message}");
    assert!(
        message.contains("/v1.36.2/bin/linux/amd64/kubelet"),
        "names the URL: {message}"
    );
    assert!(
        message.contains(&format!("expected sha256 {wrong}")),
        "{message}"
    );
    assert!(
        message.contains(&format!("got {}", sha(&contents["kubelet"]))),
        "{message}"
    );
    let dir = cache_dir(cache.path(), &v("v1.36.2"), Arch::Amd64);
    assert!(
        !dir.join("kubelet").exists(),
        "unverified bytes never land in the cache"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn http_404_is_an_inet_download_error_naming_the_url() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = Server::start(HashMap::new()).await;
    let cache = tempfile::tempdir().unwrap();
    let err = download(
        &server.base,
        &v("v1.99.0"),
        Arch::Amd64,
        cache.path(),
        &no_progress,
    )
    .await
    .unwrap_err();
    assert_eq!(classify(&err).0.id, "INET_DOWNLOAD");
    let message = err.to_string();
    assert!(message.contains("HTTP 404"), "{message}");
    assert!(
        message.contains(&format!("{}/v1.99.0/bin/linux/amd64/", server.base)),
        "{message}"
    );
    assert!(
        message.contains("published Kubernetes release"),
        "{message}"
    );
}

#[tokio::test]
async fn a_binary_missing_behind_a_valid_checksum_is_reported() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (mut routes, _) = release_routes("v1.37.1");
    routes.remove("/release/v1.37.1/bin/linux/amd64/kubectl");
    let server = Server::start(routes).await;
    let cache = tempfile::tempdir().unwrap();
    let err = download(
        &server.base,
        &v("v1.37.1"),
        Arch::Amd64,
        cache.path(),
        &no_progress,
    )
    .await
    .unwrap_err();
    assert_eq!(classify(&err).0.id, "INET_DOWNLOAD");
    assert!(err.to_string().contains("amd64/kubectl: HTTP 404"), "{err}");
}

#[tokio::test]
async fn malformed_checksum_file_is_rejected() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (mut routes, _) = release_routes("v1.37.1");
    routes.insert(
        "/release/v1.37.1/bin/linux/amd64/kubeadm.sha256".into(),
        (200, b"<html>oops</html>".to_vec()),
    );
    let server = Server::start(routes).await;
    let cache = tempfile::tempdir().unwrap();
    let err = download(
        &server.base,
        &v("v1.37.1"),
        Arch::Amd64,
        cache.path(),
        &no_progress,
    )
    .await
    .unwrap_err();
    assert_eq!(classify(&err).0.id, "INET_DOWNLOAD");
    assert!(
        err.to_string()
            .contains("kubeadm.sha256 is not a SHA-256 checksum"),
        "{err}"
    );
}

#[tokio::test]
async fn unreachable_server_is_an_inet_download_error() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cache = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{port}/release");
    let err = download(
        &base,
        &v("v1.37.1"),
        Arch::Amd64,
        cache.path(),
        &no_progress,
    )
    .await
    .unwrap_err();
    assert_eq!(classify(&err).0.id, "INET_DOWNLOAD");
    assert!(
        err.to_string()
            .contains(&format!("cannot download {base}/v1.37.1/")),
        "{err}"
    );
}

// ---- local directory ------------------------------------------------------------------------

/// A valid directory: three executables (at top level, or under bin/ when `in_bin`).
fn make_dir(in_bin: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let bin = if in_bin {
        dir.path().join("bin")
    } else {
        dir.path().to_path_buf()
    };
    std::fs::create_dir_all(&bin).unwrap();
    for (i, name) in BINARIES.iter().enumerate() {
        write_exec(&bin.join(name), &fake_elf(i as u8, 4096));
    }
    dir
}

fn write_exec(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A real (tiny) tar archive.
fn tar_bytes() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(5);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, "manifest.json", &b"hello"[..])
        .unwrap();
    builder.into_inner().unwrap()
}

fn sums_line(dir: &Path, rel: &str) -> String {
    format!("{}  {rel}\n", sha(&std::fs::read(dir.join(rel)).unwrap()))
}

fn usage_error(result: anyhow::Result<Bundle>) -> String {
    let err = result.unwrap_err();
    let (reason, advice) = classify(&err);
    assert_eq!(reason.id, "MK_USAGE", "{err}");
    assert!(
        advice.unwrap().contains("DIR/kubeadm"),
        "advice describes the layout"
    );
    err.to_string()
}

#[test]
fn directory_bundle_with_images_version_and_checksums() {
    let dir = make_dir(false);
    let d = dir.path();
    write_exec(&d.join("crictl"), &fake_elf(9, 2048));
    std::fs::write(d.join("VERSION"), "v1.37.1\n").unwrap();
    std::fs::create_dir(d.join("images")).unwrap();
    std::fs::write(d.join("images/b-kube-apiserver.tar"), tar_bytes()).unwrap();
    std::fs::write(d.join("images/a-pause.tar"), tar_bytes()).unwrap();
    std::fs::write(d.join("images/README.txt"), "notes").unwrap();
    let mut sums = String::from("# produced by sha256sum\n\n");
    for rel in ["kubeadm", "kubelet", "kubectl", "images/a-pause.tar"] {
        sums.push_str(&sums_line(d, rel));
    }
    // Binary-mode marker and ./ prefix are accepted.
    sums.push_str(&sums_line(d, "crictl").replace("  crictl", " *./crictl"));
    std::fs::write(d.join("SHA256SUMS"), sums).unwrap();

    let bundle = from_dir(d, Some(&v("v1.37.1")), Arch::Amd64).unwrap();
    assert_eq!(bundle.version, v("v1.37.1"));
    let listed: Vec<(&str, u32)> = bundle
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.mode))
        .collect();
    assert_eq!(
        listed,
        [
            ("kubernetes/VERSION", 0o644),
            ("kubernetes/bin/kubeadm", 0o755),
            ("kubernetes/bin/kubelet", 0o755),
            ("kubernetes/bin/kubectl", 0o755),
            ("kubernetes/bin/crictl", 0o755),
            ("kubernetes/images/a-pause.tar", 0o644),
            ("kubernetes/images/b-kube-apiserver.tar", 0o644),
        ]
    );
    assert_eq!(bundle.warnings.len(), 1, "{:?}", bundle.warnings);
    assert!(bundle.warnings[0].contains("README.txt"));
    let files = bundle.context_files().unwrap();
    assert_eq!(files[1].1, std::fs::read(d.join("kubeadm")).unwrap());
    assert_eq!(files[5].1, tar_bytes());

    // Without VERSION the asked version is used; bin/ layout works the same.
    let dir2 = make_dir(true);
    let b2 = from_dir(dir2.path(), Some(&v("v1.34.1")), Arch::Amd64).unwrap();
    assert_eq!(b2.version, v("v1.34.1"));
    assert_eq!(b2.files.len(), 4);
    assert!(b2.warnings.is_empty(), "{:?}", b2.warnings);
    // With VERSION and no asked version, VERSION decides.
    assert_eq!(
        from_dir(d, None, Arch::Amd64).unwrap().version,
        v("v1.37.1")
    );
}

#[tokio::test]
async fn directory_source_through_binary_source() {
    let dir = make_dir(false);
    let source = BinarySource::Dir {
        path: dir.path().to_path_buf(),
        version: Some(v("v1.35.0")),
        arch: Arch::Amd64,
    };
    let cache = tempfile::tempdir().unwrap();
    let bundle = source
        .bundle("http://127.0.0.1:9/unused", cache.path(), &no_progress)
        .await
        .unwrap();
    assert_eq!(bundle.context_files().unwrap()[0].1, b"v1.35.0\n");
    assert_eq!(
        std::fs::read_dir(cache.path()).unwrap().count(),
        0,
        "nothing cached for a directory"
    );
}

#[test]
fn missing_directory_or_binary_names_what_is_missing() {
    let message = usage_error(from_dir(
        Path::new("/nonexistent/k8s"),
        Some(&v("v1.37.1")),
        Arch::Amd64,
    ));
    assert!(message.contains("/nonexistent/k8s"), "{message}");

    let dir = make_dir(false);
    std::fs::remove_file(dir.path().join("kubelet")).unwrap();
    let message = usage_error(from_dir(dir.path(), Some(&v("v1.37.1")), Arch::Amd64));
    assert!(message.contains("has no kubelet"), "{message}");
    assert!(
        message.contains(&dir.path().join("bin/kubelet").display().to_string()),
        "{message}"
    );

    let file = dir.path().join("kubeadm");
    let message = usage_error(from_dir(&file, Some(&v("v1.37.1")), Arch::Amd64));
    assert!(message.contains("is not a directory"), "{message}");
}

#[test]
fn checksum_mismatch_shows_expected_and_actual() {
    let dir = make_dir(false);
    let d = dir.path();
    let good = sums_line(d, "kubeadm") + &sums_line(d, "kubectl");
    let wrong = "0".repeat(64);
    std::fs::write(d.join("SHA256SUMS"), format!("{good}{wrong}  kubelet\n")).unwrap();
    let message = usage_error(from_dir(d, Some(&v("v1.37.1")), Arch::Amd64));
    assert!(
        message.contains(&format!(
            "checksum mismatch for {}",
            d.join("kubelet").display()
        )),
        "{message}"
    );
    assert!(
        message.contains(&format!("expects sha256 {wrong}")),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "the file has {}",
            sha(&std::fs::read(d.join("kubelet")).unwrap())
        )),
        "{message}"
    );
}

#[test]
fn every_file_listed_in_sha256sums_must_exist_and_match() {
    let dir = make_dir(false);
    let d = dir.path();
    std::fs::write(
        d.join("SHA256SUMS"),
        format!("{}  images/gone.tar\n", "a".repeat(64)),
    )
    .unwrap();
    let message = usage_error(from_dir(d, Some(&v("v1.37.1")), Arch::Amd64));
    assert!(message.contains("lists images/gone.tar"), "{message}");

    // A listed file outside the bundle is verified too.
    std::fs::write(d.join("LICENSE"), "text").unwrap();
    std::fs::write(
        d.join("SHA256SUMS"),
        format!("{}  LICENSE\n", "b".repeat(64)),
    )
    .unwrap();
    let message = usage_error(from_dir(d, Some(&v("v1.37.1")), Arch::Amd64));
    assert!(
        message.contains("checksum mismatch for") && message.contains("LICENSE"),
        "{message}"
    );

    // Unlisted binaries are a warning, not an error.
    std::fs::write(d.join("SHA256SUMS"), sums_line(d, "LICENSE")).unwrap();
    let bundle = from_dir(d, Some(&v("v1.37.1")), Arch::Amd64).unwrap();
    assert_eq!(
        bundle
            .warnings
            .iter()
            .filter(|w| w.contains("is not listed in"))
            .count(),
        3
    );
}

#[test]
fn malformed_sha256sums_lines_are_rejected_with_the_line_number() {
    let dir = make_dir(false);
    let d = dir.path();
    for (content, why) in [
        ("nonsense\n", "line 1: expected"),
        ("# c\nxyz  kubeadm\n", "line 2: not a SHA-256 digest"),
        (
            &format!("{}  ../etc/passwd\n", "a".repeat(64)) as &str,
            "relative path inside",
        ),
        (
            &format!("{}  /usr/bin/kubeadm\n", "a".repeat(64)) as &str,
            "relative path inside",
        ),
    ] {
        std::fs::write(d.join("SHA256SUMS"), content).unwrap();
        let message = usage_error(from_dir(d, Some(&v("v1.37.1")), Arch::Amd64));
        assert!(message.contains(why), "{content:?}: {message}");
    }
}

#[test]
fn empty_or_non_executable_binaries_are_rejected() {
    let dir = make_dir(false);
    let d = dir.path();
    write_exec(&d.join("kubeadm"), b"");
    let message = usage_error(from_dir(d, Some(&v("v1.37.1")), Arch::Amd64));
    assert!(message.contains("kubeadm is empty"), "{message}");

    write_exec(&d.join("kubeadm"), &fake_elf(0, 100));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.join("kubectl"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let message = usage_error(from_dir(d, Some(&v("v1.37.1")), Arch::Amd64));
    assert!(
        message.contains("kubectl is not executable (chmod +x"),
        "{message}"
    );

    std::fs::remove_file(d.join("kubectl")).unwrap();
    std::fs::create_dir(d.join("kubectl")).unwrap();
    let message = usage_error(from_dir(d, Some(&v("v1.37.1")), Arch::Amd64));
    assert!(
        message.contains("kubectl is not a regular file"),
        "{message}"
    );
}

#[test]
fn version_file_must_agree_and_some_version_is_needed() {
    let dir = make_dir(false);
    let d = dir.path();
    let message = usage_error(from_dir(d, None, Arch::Amd64));
    assert!(
        message.contains("cannot tell the Kubernetes version"),
        "{message}"
    );

    std::fs::write(d.join("VERSION"), "v1.36.3\n").unwrap();
    let message = usage_error(from_dir(d, Some(&v("v1.37.1")), Arch::Amd64));
    assert!(
        message.contains("says v1.36.3 but Kubernetes v1.37.1 was asked for"),
        "{message}"
    );

    std::fs::write(d.join("VERSION"), "latest\n").unwrap();
    let message = usage_error(from_dir(d, Some(&v("v1.37.1")), Arch::Amd64));
    assert!(message.contains("invalid Kubernetes version"), "{message}");
}

#[test]
fn image_archives_must_be_tar_files() {
    let dir = make_dir(false);
    let d = dir.path();
    std::fs::create_dir(d.join("images")).unwrap();
    std::fs::write(d.join("images/etcd.tar"), b"\x1f\x8b gzip, not tar").unwrap();
    let message = usage_error(from_dir(d, Some(&v("v1.37.1")), Arch::Amd64));
    assert!(
        message.contains("etcd.tar is not a tar archive"),
        "{message}"
    );
}

#[test]
fn foreign_binaries_are_warned_about() {
    let dir = make_dir(false);
    let d = dir.path();
    write_exec(&d.join("kubectl"), b"#!/bin/sh\necho fake kubectl\n");
    let bundle = from_dir(d, Some(&v("v1.37.1")), Arch::Amd64).unwrap();
    assert_eq!(bundle.warnings.len(), 1);
    assert!(bundle.warnings[0].contains("kubectl does not look like a Linux amd64 executable"));
    let bundle = from_dir(d, Some(&v("v1.37.1")), Arch::Arm64).unwrap();
    assert_eq!(
        bundle.warnings.len(),
        3,
        "amd64 binaries for an arm64 node: {:?}",
        bundle.warnings
    );
}

#[test]
fn context_files_detects_a_file_changed_after_validation() {
    let dir = make_dir(false);
    let bundle = from_dir(dir.path(), Some(&v("v1.37.1")), Arch::Amd64).unwrap();
    write_exec(&dir.path().join("kubelet"), &fake_elf(42, 4096));
    let err = bundle.context_files().unwrap_err();
    assert_eq!(classify(&err).0.id, "HOST_FILES");
    assert!(
        err.to_string().contains("changed after it was verified"),
        "{err}"
    );
}
