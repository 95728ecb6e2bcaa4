//! Shared by the build scripts that embed a directory into a crate (the node image recipe,
//! the addon catalogue, the VM layer), included with `#[path]`: build scripts cannot depend on
//! the workspace's own crates.
//!
//! [`embed_dir`] writes `$OUT_DIR/<out>` holding `pub const FILES` with one entry per file
//! under `<crate>/<dir>`, sorted by path: `(relative path, bytes, unix mode)` for
//! [`Content::Bytes`], `(relative path, text)` for [`Content::Text`]. Dot files, editor
//! backups (`~`) and swap files are left out.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// How the files are embedded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// `include_bytes!` with the unix mode (0755 when any execute bit is set, else 0644).
    Bytes,
    /// `include_str!`: the files must be UTF-8.
    Text,
}

pub fn embed_dir(dir: &str, out: &str, content: Content) {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join(dir);
    println!("cargo:rerun-if-changed={dir}");
    let mut files = Vec::new();
    if root.is_dir() {
        walk(&root, &mut files);
    }
    let mut code = match content {
        Content::Bytes => String::from("pub const FILES: &[(&str, &[u8], u32)] = &[\n"),
        Content::Text => String::from("pub const FILES: &[(&str, &str)] = &[\n"),
    };
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let path = f.display().to_string();
        match content {
            Content::Bytes => {
                let mode = mode_of(f);
                writeln!(code, "    ({rel:?}, include_bytes!({path:?}), {mode:#o}),").unwrap();
            }
            Content::Text => writeln!(code, "    ({rel:?}, include_str!({path:?})),").unwrap(),
        }
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join(out);
    std::fs::write(out, code).unwrap();
}

#[cfg(unix)]
fn mode_of(f: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::metadata(f).unwrap().permissions().mode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

#[cfg(not(unix))]
fn mode_of(_: &Path) -> u32 {
    0o644
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.ends_with('~') || name.ends_with(".swp") {
            continue;
        }
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}
