//! Embeds the VM layer's build context (vm-image/) into the crate, so an installed minik can
//! build VM base disks without a source tree. Generates `$OUT_DIR/vm_image_files.rs` with one
//! `(relative path, bytes, unix mode)` entry per file, sorted by path.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read vm-image")
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
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("vm-image");
    println!("cargo:rerun-if-changed=vm-image");
    let mut files = Vec::new();
    walk(&root, &mut files);
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
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("vm_image_files.rs");
    std::fs::write(out, code).unwrap();
}
