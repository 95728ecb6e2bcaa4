//! Checks an image archive (`docker save` / `podman save` output, or an OCI image layout tar)
//! before any byte of it reaches a node, so a bad file is refused with a clear reason and
//! nothing is half-imported: it must be an uncompressed tar whose index names every image and
//! holds every file the index refers to.

use super::reference::{is_digest, normalize};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

/// Blobs up to this size are kept while scanning (manifests and configs of OCI layouts); layers
/// are only counted.
const SMALL_BLOB: u64 = 256 * 1024;

/// What an archive holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveImage {
    /// The name containerd gives it on import (normalized).
    pub name: String,
    /// The config digest (`sha256:...`), which is the engine's image id and the CRI plugin's
    /// id name in a node; `None` when the layout does not say (the import then always runs).
    pub id: Option<String>,
}

/// Why an archive is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    #[error("{0}")]
    Io(String),
    #[error("it is compressed ({0}); decompress it first (e.g. `gunzip`)")]
    Compressed(&'static str),
    #[error("it is not a tar archive: {0}")]
    NotTar(String),
    #[error("it holds neither manifest.json (docker save) nor index.json (OCI layout)")]
    NoIndex,
    #[error("its {file} does not parse: {detail}")]
    BadIndex { file: &'static str, detail: String },
    #[error("{0} is referred to by the index but missing from the archive")]
    Missing(String),
    #[error("it holds no named image (save images by name:tag, not by id)")]
    Unnamed,
    #[error("{0} does not match its digest: the archive is corrupt")]
    Corrupt(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<OciDescriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct OciManifest {
    config: Option<OciDescriptor>,
    #[serde(default)]
    layers: Vec<OciDescriptor>,
}

/// Reads the whole archive once (sequentially; layers are skipped, not kept) and returns its
/// images.
pub fn inspect(path: &Path) -> Result<Vec<ArchiveImage>, ArchiveError> {
    let mut file = std::fs::File::open(path).map_err(|e| ArchiveError::Io(e.to_string()))?;
    let mut magic = [0u8; 6];
    let n = file
        .read(&mut magic)
        .map_err(|e| ArchiveError::Io(e.to_string()))?;
    match &magic[..n.min(6)] {
        [0x1f, 0x8b, ..] => return Err(ArchiveError::Compressed("gzip")),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => return Err(ArchiveError::Compressed("zstd")),
        [b'B', b'Z', b'h', ..] => return Err(ArchiveError::Compressed("bzip2")),
        [0xfd, b'7', b'z', b'X', b'Z', 0] => return Err(ArchiveError::Compressed("xz")),
        _ => {}
    }
    let file = std::fs::File::open(path).map_err(|e| ArchiveError::Io(e.to_string()))?;
    scan(file)
}

/// [`inspect`] over any reader (tests use in-memory tars).
pub fn scan(reader: impl Read) -> Result<Vec<ArchiveImage>, ArchiveError> {
    let mut archive = tar::Archive::new(reader);
    let mut files: BTreeSet<String> = BTreeSet::new();
    let mut small: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let entries = archive
        .entries()
        .map_err(|e| ArchiveError::NotTar(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ArchiveError::NotTar(e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| ArchiveError::NotTar(e.to_string()))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let size = entry.header().size().unwrap_or(0);
        // Links (docker save links a layer shared by two images) count as present; only
        // regular files have contents to read.
        let regular = entry.header().entry_type().is_file();
        let keep = regular
            && (matches!(path.as_str(), "manifest.json" | "index.json")
                || (path.starts_with("blobs/") && size <= SMALL_BLOB)
                || (path.ends_with(".json") && size <= SMALL_BLOB));
        if keep {
            let mut data = Vec::with_capacity(size as usize);
            entry
                .read_to_end(&mut data)
                .map_err(|e| ArchiveError::NotTar(e.to_string()))?;
            small.insert(path.clone(), data);
        } else {
            // Reading to the end proves the entry is complete (a truncated file fails here).
            std::io::copy(&mut entry, &mut std::io::sink())
                .map_err(|e| ArchiveError::NotTar(e.to_string()))?;
        }
        files.insert(path);
    }
    if files.is_empty() {
        return Err(ArchiveError::NotTar("it is empty".into()));
    }
    let need = |p: &str| -> Result<(), ArchiveError> {
        if files.contains(p.trim_start_matches("./")) {
            Ok(())
        } else {
            Err(ArchiveError::Missing(p.to_string()))
        }
    };
    let mut images = Vec::new();
    if let Some(bytes) = small.get("manifest.json") {
        let entries: Vec<DockerEntry> =
            serde_json::from_slice(bytes).map_err(|e| ArchiveError::BadIndex {
                file: "manifest.json",
                detail: e.to_string(),
            })?;
        for entry in entries {
            need(&entry.config)?;
            for layer in &entry.layers {
                need(layer)?;
            }
            let hex = entry
                .config
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .trim_end_matches(".json");
            let id = Some(format!("sha256:{hex}")).filter(|d| is_digest(d));
            // The id decides whether a node already has the image: it must be the config's
            // real digest, not just a file name.
            if let Some(id) = &id {
                let config = small
                    .get(entry.config.trim_start_matches("./"))
                    .ok_or_else(|| ArchiveError::Missing(entry.config.clone()))?;
                if &sha256(config) != id {
                    return Err(ArchiveError::Corrupt(entry.config.clone()));
                }
            }
            for tag in entry.repo_tags.unwrap_or_default() {
                images.push(ArchiveImage {
                    name: normalize(&tag),
                    id: id.clone(),
                });
            }
        }
    } else if let Some(bytes) = small.get("index.json") {
        let index: OciIndex =
            serde_json::from_slice(bytes).map_err(|e| ArchiveError::BadIndex {
                file: "index.json",
                detail: e.to_string(),
            })?;
        for m in &index.manifests {
            let blob = blob_path(&m.digest);
            need(&blob)?;
            let name = m
                .annotations
                .get("io.containerd.image.name")
                .cloned()
                .or_else(|| {
                    m.annotations
                        .get("org.opencontainers.image.ref.name")
                        .filter(|r| r.contains('/') || r.contains(':'))
                        .cloned()
                });
            // A plain manifest names its config and layers; check they are here too.
            let mut id = None;
            let is_manifest = m.media_type.ends_with("manifest.v1+json")
                || m.media_type.ends_with("manifest.v2+json");
            if is_manifest
                && let Some(manifest) = small
                    .get(&blob)
                    .and_then(|b| serde_json::from_slice::<OciManifest>(b).ok())
            {
                if let Some(config) = &manifest.config {
                    let path = blob_path(&config.digest);
                    need(&path)?;
                    if small.get(&path).is_some_and(|b| sha256(b) == config.digest) {
                        id = Some(config.digest.clone());
                    } else {
                        return Err(ArchiveError::Corrupt(path));
                    }
                }
                for layer in &manifest.layers {
                    need(&blob_path(&layer.digest))?;
                }
            }
            if let Some(name) = name {
                images.push(ArchiveImage {
                    name: normalize(&name),
                    id,
                });
            }
        }
    } else {
        return Err(ArchiveError::NoIndex);
    }
    if images.is_empty() {
        return Err(ArchiveError::Unnamed);
    }
    Ok(images)
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An in-memory tar with these files.
    pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn hex(c: char) -> String {
        c.to_string().repeat(64)
    }

    /// The hex sha256 of `b`.
    pub fn hex_of(b: &[u8]) -> String {
        sha256(b).trim_start_matches("sha256:").to_string()
    }

    /// A docker-save style archive of one image tagged `tag`.
    pub fn docker_archive(tag: &str) -> Vec<u8> {
        let config = format!("{}.json", hex_of(b"{}"));
        let manifest =
            format!(r#"[{{"Config":"{config}","RepoTags":["{tag}"],"Layers":["l1/layer.tar"]}}]"#);
        tar_of(&[
            (&config, b"{}"),
            ("l1/layer.tar", &[0u8; 1024]),
            ("manifest.json", manifest.as_bytes()),
        ])
    }

    #[test]
    fn docker_save_archives() {
        let images = scan(docker_archive("app:1").as_slice()).unwrap();
        assert_eq!(
            images,
            vec![ArchiveImage {
                name: "docker.io/library/app:1".into(),
                id: Some(format!("sha256:{}", hex_of(b"{}"))),
            }]
        );
    }

    #[test]
    fn oci_layouts() {
        let manifest = format!(
            r#"{{"config":{{"digest":"sha256:{}"}},"layers":[{{"digest":"sha256:{}"}}]}}"#,
            hex_of(b"{}"),
            hex('d')
        );
        let index = format!(
            r#"{{"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","annotations":{{"io.containerd.image.name":"localhost/x:2"}}}}]}}"#,
            hex('a')
        );
        let files = [
            ("oci-layout", &b"{}"[..]),
            ("index.json", index.as_bytes()),
            (&format!("blobs/sha256/{}", hex('a')), manifest.as_bytes()),
            (&format!("blobs/sha256/{}", hex_of(b"{}")), b"{}"),
            (&format!("blobs/sha256/{}", hex('d')), &[0u8; 10]),
        ];
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (*p, *d)).collect();
        let images = scan(tar_of(&refs).as_slice()).unwrap();
        assert_eq!(images[0].name, "localhost/x:2");
        assert_eq!(images[0].id, Some(format!("sha256:{}", hex_of(b"{}"))));
        // Without the layer blob the archive is refused.
        let err = scan(tar_of(&refs[..4]).as_slice()).unwrap_err();
        assert_eq!(
            err,
            ArchiveError::Missing(format!("blobs/sha256/{}", hex('d')))
        );
    }

    #[test]
    fn bad_archives_are_refused_with_a_reason() {
        assert!(matches!(
            scan(&b"not a tar at all, just some text"[..]).unwrap_err(),
            ArchiveError::NotTar(_)
        ));
        let no_index = tar_of(&[("a.txt", b"x")]);
        assert_eq!(
            scan(no_index.as_slice()).unwrap_err(),
            ArchiveError::NoIndex
        );
        let missing = tar_of(&[(
            "manifest.json",
            br#"[{"Config":"c.json","RepoTags":["a:1"],"Layers":[]}]"#,
        )]);
        assert_eq!(
            scan(missing.as_slice()).unwrap_err(),
            ArchiveError::Missing("c.json".into())
        );
        let corrupt = tar_of(&[
            (&format!("{}.json", hex('c')), &b"{}"[..]),
            (
                "manifest.json",
                format!(
                    r#"[{{"Config":"{}.json","RepoTags":["a:1"],"Layers":[]}}]"#,
                    hex('c')
                )
                .as_bytes(),
            ),
        ]);
        assert!(matches!(
            scan(corrupt.as_slice()).unwrap_err(),
            ArchiveError::Corrupt(_)
        ));
        let unnamed = tar_of(&[
            ("c.json", b"{}"),
            (
                "manifest.json",
                br#"[{"Config":"c.json","RepoTags":null,"Layers":[]}]"#,
            ),
        ]);
        assert_eq!(scan(unnamed.as_slice()).unwrap_err(), ArchiveError::Unnamed);
        // A truncated archive fails while reading the cut entry.
        let full = docker_archive("app:1");
        let cut = &full[..1200];
        assert!(scan(cut).is_err());
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("x.tar.gz");
        std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0]).unwrap();
        assert_eq!(inspect(&gz).unwrap_err(), ArchiveError::Compressed("gzip"));
    }
}
