//! Embeds the node image build context (node-image/) into the binary, so an installed minik
//! can build its node image without a source tree: `$OUT_DIR/node_image_files.rs`, one
//! `(relative path, bytes, unix mode)` entry per file.
//!
//! Also embeds the addon catalog (addons/, see addons/README.md) as
//! `$OUT_DIR/addon_files.rs`: one `(relative path, text)` entry per file.

#[path = "build-support/embed.rs"]
mod embed;

fn main() {
    embed::embed_dir("node-image", "node_image_files.rs", embed::Content::Bytes);
    embed::embed_dir("addons", "addon_files.rs", embed::Content::Text);
}
