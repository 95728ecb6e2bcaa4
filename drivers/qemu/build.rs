//! Embeds the VM layer's build context (vm-image/) into the crate, so an installed minik can
//! build VM base disks without a source tree: `$OUT_DIR/vm_image_files.rs`, one
//! `(relative path, bytes, unix mode)` entry per file, sorted by path.

#[path = "../../build-support/embed.rs"]
#[allow(dead_code)] // (the text mode is the addons')
mod embed;

fn main() {
    embed::embed_dir("vm-image", "vm_image_files.rs", embed::Content::Bytes);
}
