//! The image `skiff bench pods` runs: busybox from the machine's static busybox (Debian's
//! busybox-static), written as a one-layer `docker save` archive and imported into the node.

use anyhow::Context;
use sha2::{Digest, Sha256};
use std::path::Path;

const BUSYBOX: &str = "/bin/busybox";
pub const NAME: &str = "bench/busybox:1";

/// A header owned by root, as image layers' files are.
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

fn append(tar: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) -> std::io::Result<()> {
    let mut header = header(tar::EntryType::Regular, mode, data.len() as u64);
    tar.append_data(&mut header, path, data)
}

/// The layer: busybox and its `sh` and `sleep` links.
fn layer() -> anyhow::Result<Vec<u8>> {
    let busybox =
        std::fs::read(BUSYBOX).with_context(|| format!("reading {BUSYBOX} (apt-get install busybox-static)"))?;
    let mut tar = tar::Builder::new(Vec::new());
    append(&mut tar, "bin/busybox", &busybox, 0o755)?;
    for applet in ["sh", "sleep"] {
        let mut header = header(tar::EntryType::Symlink, 0o777, 0);
        tar.append_link(&mut header, format!("bin/{applet}"), "busybox")?;
    }
    Ok(tar.into_inner()?)
}

/// Writes the archive to `path`.
pub fn write(path: &Path) -> anyhow::Result<()> {
    let layer = layer()?;
    let layer_id = hex::encode(Sha256::digest(&layer));
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_id}")]},
    }))?;
    let config_id = hex::encode(Sha256::digest(&config));
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": format!("{config_id}.json"), "RepoTags": [NAME], "Layers": [format!("{layer_id}/layer.tar")]}
    ]))?;
    let mut tar = tar::Builder::new(Vec::new());
    append(&mut tar, &format!("{layer_id}/layer.tar"), &layer, 0o644)?;
    append(&mut tar, &format!("{config_id}.json"), &config, 0o644)?;
    append(&mut tar, "manifest.json", &manifest, 0o644)?;
    std::fs::write(path, tar.into_inner()?)?;
    Ok(())
}
