//! Embeds the node image build context (node-image/) into the binary, so an installed minik
//! can build its node image without a source tree. Generates `$OUT_DIR/node_image_files.rs`
//! with one `(relative path, bytes, unix mode)` entry per file.
//!
//! Also embeds the addon catalog (addons/, see addons/README.md) as
//! `$OUT_DIR/addon_files.rs`: one `(relative path, text)` entry per file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read node-image")
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

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("node-image");
    println!("cargo:rerun-if-changed=node-image");
    let mut files = Vec::new();
    if root.is_dir() {
        walk(&root, &mut files);
    }
    let mut code = String::from("pub const FILES: &[(&str, &[u8], u32)] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        #[cfg(unix)]
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            if std::fs::metadata(f).unwrap().permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            }
        };
        #[cfg(not(unix))]
        let mode = 0o644;
        writeln!(
            code,
            "    ({rel:?}, include_bytes!({:?}), {mode:#o}),",
            f.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("node_image_files.rs");
    std::fs::write(out, code).unwrap();

    embed_addons();
}

/// Writes `$OUT_DIR/addon_files.rs`: every file under addons/ as UTF-8 text.
fn embed_addons() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("addons");
    println!("cargo:rerun-if-changed=addons");
    let mut files = Vec::new();
    if root.is_dir() {
        walk(&root, &mut files);
    }
    let mut code = String::from("pub const FILES: &[(&str, &str)] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        writeln!(
            code,
            "    ({rel:?}, include_str!({:?})),",
            f.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("addon_files.rs");
    std::fs::write(out, code).unwrap();
}
