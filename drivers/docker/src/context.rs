//! Build contexts embedded in the binary (minik's node image recipe, the qemu driver's VM
//! layer): a content hash that names what they build, and the tar sent to the engine's build
//! API.

use sha2::{Digest, Sha256};

/// One embedded file: path relative to the context's root, contents, unix mode.
pub type EmbeddedFile = (&'static str, &'static [u8], u32);

/// A short (12 hex digits) hash of a context's paths, modes and contents, so a changed recipe
/// gets a new image tag or disk name instead of a stale one.
pub fn recipe_hash(files: &[EmbeddedFile]) -> String {
    let mut h = Sha256::new();
    for (path, bytes, mode) in files {
        h.update(path.as_bytes());
        h.update([0]);
        h.update(mode.to_le_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    hex::encode(h.finalize())[..12].to_string()
}

/// A tar of `files` (modification times zeroed, so equal contexts give equal tars). `extra`
/// files (e.g. Kubernetes binaries) are added under their own paths and replace embedded files
/// of the same path.
pub fn context_tar(
    files: &[EmbeddedFile],
    extra: &[(String, Vec<u8>, u32)],
) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, bytes: &[u8], mode: u32| -> std::io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, path, bytes)
    };
    for (path, bytes, mode) in files {
        if extra.iter().any(|(p, _, _)| p == path) {
            continue;
        }
        add(path, bytes, *mode)?;
    }
    for (path, bytes, mode) in extra {
        add(path, bytes, *mode)?;
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILES: &[EmbeddedFile] = &[
        ("Dockerfile", b"FROM x\n", 0o644),
        ("bin/run", b"#!/bin/sh\n", 0o755),
    ];

    #[test]
    fn the_hash_follows_contents_and_modes() {
        let h = recipe_hash(FILES);
        assert_eq!(h.len(), 12);
        assert_eq!(h, recipe_hash(FILES));
        assert_ne!(
            h,
            recipe_hash(&[FILES[0], ("bin/run", b"#!/bin/sh\n", 0o644)])
        );
        assert_ne!(
            h,
            recipe_hash(&[FILES[0], ("bin/run", b"#!/bin/bash\n", 0o755)])
        );
    }

    #[test]
    fn extra_files_replace_embedded_ones() {
        let tar = context_tar(FILES, &[("bin/run".into(), b"new".to_vec(), 0o700)]).unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut body = String::new();
            std::io::Read::read_to_string(&mut entry, &mut body).unwrap();
            seen.push((
                entry.path().unwrap().display().to_string(),
                body,
                entry.header().mode().unwrap(),
            ));
        }
        assert_eq!(
            seen,
            [
                ("Dockerfile".to_string(), "FROM x\n".to_string(), 0o644),
                ("bin/run".to_string(), "new".to_string(), 0o700),
            ]
        );
    }
}
