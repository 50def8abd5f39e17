//! Builders for the layer tars and image archives the tests import: small, made in memory,
//! in the exact shapes `docker save` and OCI image layouts have.

use super::digest::sha256_hex;
use flate2::{Compression, write::GzEncoder};
use serde_json::{Value, json};
use std::io::Write;
use tar::{EntryType, Header};

/// gzip'd bytes.
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A layer tar, entry by entry.
pub(crate) struct LayerBuilder(tar::Builder<Vec<u8>>);

impl LayerBuilder {
    pub(crate) fn new() -> Self {
        LayerBuilder(tar::Builder::new(Vec::new()))
    }

    fn header(kind: EntryType, mode: u32) -> Header {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_size(0);
        header
    }

    fn append(mut self, mut header: Header, path: &str, data: &[u8]) -> Self {
        header.set_size(data.len() as u64);
        self.0.append_data(&mut header, path, data).unwrap();
        self
    }

    pub(crate) fn dir(self, path: &str, mode: u32) -> Self {
        self.append(Self::header(EntryType::Directory, mode), path, b"")
    }

    pub(crate) fn file(self, path: &str, data: &[u8], mode: u32) -> Self {
        self.file_owned(path, data, mode, 0, 0)
    }

    pub(crate) fn file_owned(self, path: &str, data: &[u8], mode: u32, uid: u64, gid: u64) -> Self {
        let mut header = Self::header(EntryType::Regular, mode);
        header.set_uid(uid);
        header.set_gid(gid);
        self.append(header, path, data)
    }

    /// An empty regular file: the form OCI whiteouts and opaque markers take.
    pub(crate) fn whiteout_file(self, path: &str) -> Self {
        self.file(path, b"", 0o644)
    }

    pub(crate) fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut header = Self::header(EntryType::Symlink, 0o777);
        self.0.append_link(&mut header, path, target).unwrap();
        self
    }

    pub(crate) fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut header = Self::header(EntryType::Link, 0o644);
        self.0.append_link(&mut header, path, target).unwrap();
        self
    }

    pub(crate) fn char_device(self, path: &str, major: u32, minor: u32, mode: u32) -> Self {
        let mut header = Self::header(EntryType::Char, mode);
        header.set_device_major(major).unwrap();
        header.set_device_minor(minor).unwrap();
        self.append(header, path, b"")
    }

    pub(crate) fn fifo(self, path: &str, mode: u32) -> Self {
        self.append(Self::header(EntryType::Fifo, mode), path, b"")
    }

    /// An entry whose name is written as given, `..` and leading `/` included, which the tar
    /// crate's own path setters refuse to write: what a hostile layer holds.
    fn raw(mut self, kind: EntryType, name: &str, link: &str, data: &[u8]) -> Self {
        let mut header = Self::header(kind, 0o644);
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.0.append(&header, data).unwrap();
        self
    }

    pub(crate) fn raw_file(self, name: &str, data: &[u8]) -> Self {
        self.raw(EntryType::Regular, name, "", data)
    }

    pub(crate) fn raw_hardlink(self, name: &str, target: &str) -> Self {
        self.raw(EntryType::Link, name, target, b"")
    }

    pub(crate) fn build(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// One image: its layers (plain tars), how they are stored, and a config naming their diff ids.
pub(crate) struct TestImage {
    pub(crate) layers: Vec<Vec<u8>>,
    pub(crate) gzip_layers: bool,
    pub(crate) config: Vec<u8>,
}

impl TestImage {
    /// An image of these layers whose command is `cmd`.
    pub(crate) fn new(layers: Vec<Vec<u8>>, cmd: &str) -> Self {
        let diff_ids: Vec<String> = layers.iter().map(|l| format!("sha256:{}", sha256_hex(l))).collect();
        let config = json!({
            "architecture": oci_arch(),
            "os": "linux",
            "config": {
                "Entrypoint": ["/bin/sh", "-c"],
                "Cmd": [cmd],
                "Env": ["PATH=/usr/bin:/bin", "HOME=/root"],
                "WorkingDir": "/work",
                "User": "1000:1000",
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "test"}],
        });
        TestImage { layers, gzip_layers: false, config: serde_json::to_vec(&config).unwrap() }
    }

    pub(crate) fn gzipped(mut self) -> Self {
        self.gzip_layers = true;
        self
    }

    /// An image whose config lies about its layers' diff ids.
    pub(crate) fn with_config(mut self, config: Value) -> Self {
        self.config = serde_json::to_vec(&config).unwrap();
        self
    }

    pub(crate) fn id(&self) -> String {
        format!("sha256:{}", sha256_hex(&self.config))
    }

    /// The layer blobs, as stored.
    pub(crate) fn blobs(&self) -> Vec<Vec<u8>> {
        self.layers.iter().map(|l| if self.gzip_layers { gzip(l) } else { l.clone() }).collect()
    }

    /// The OCI manifest.
    pub(crate) fn manifest(&self) -> Vec<u8> {
        let media = if self.gzip_layers {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        };
        let layers: Vec<Value> = self.blobs().iter().map(|b| descriptor(media, b)).collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor("application/vnd.oci.image.config.v1+json", &self.config),
            "layers": layers,
        });
        serde_json::to_vec(&manifest).unwrap()
    }
}

/// An OCI descriptor of some content.
pub(crate) fn descriptor(media_type: &str, content: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": format!("sha256:{}", sha256_hex(content)), "size": content.len()})
}

/// This machine's architecture, as images name it.
pub(crate) fn oci_arch() -> &'static str {
    super::oci_layout::host_arch()
}

/// An archive (the outer tar) being put together.
pub(crate) struct ArchiveBuilder(tar::Builder<Vec<u8>>);

impl ArchiveBuilder {
    pub(crate) fn new() -> Self {
        ArchiveBuilder(tar::Builder::new(Vec::new()))
    }

    pub(crate) fn add(&mut self, path: &str, data: &[u8]) -> &mut Self {
        let mut header = Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        self.0.append_data(&mut header, path, data).unwrap();
        self
    }

    pub(crate) fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        self.0.append_link(&mut header, path, target).unwrap();
        self
    }

    /// Adds a blob under `blobs/sha256/`.
    pub(crate) fn blob(&mut self, content: &[u8]) -> &mut Self {
        self.add(&format!("blobs/sha256/{}", sha256_hex(content)), content)
    }

    pub(crate) fn build(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.0, tar::Builder::new(Vec::new())).into_inner().unwrap()
    }
}

/// A `docker save` archive in the classic layout (`<n>/layer.tar`, `<config hex>.json`), each
/// image with its repo tags. A layer shared with an earlier image is a symlink to its tar, as
/// docker writes it.
pub(crate) fn docker_save(images: &[(&TestImage, &[&str])]) -> Vec<u8> {
    let mut archive = ArchiveBuilder::new();
    let mut manifest = Vec::new();
    let mut written: Vec<(String, String)> = Vec::new();
    for (i, (image, tags)) in images.iter().enumerate() {
        let config_path = format!("{}.json", sha256_hex(&image.config));
        archive.add(&config_path, &image.config);
        let mut layers = Vec::new();
        for (j, blob) in image.blobs().iter().enumerate() {
            let hex = sha256_hex(blob);
            let path = format!("{i}-{j}/layer.tar");
            match written.iter().find(|(h, _)| *h == hex) {
                Some((_, earlier)) => archive.symlink(&path, &format!("../{earlier}")),
                None => archive.add(&path, blob),
            };
            written.push((hex, path.clone()));
            layers.push(path);
        }
        manifest.push(json!({"Config": config_path, "RepoTags": tags, "Layers": layers}));
    }
    archive.add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    archive.build()
}

/// An OCI image layout archive with one image, named by the given `index.json` annotations.
pub(crate) fn oci_layout(image: &TestImage, annotations: Value) -> Vec<u8> {
    let manifest = image.manifest();
    let mut archive = ArchiveBuilder::new();
    archive.add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    archive.blob(&image.config).blob(&manifest);
    for blob in image.blobs() {
        archive.blob(&blob);
    }
    let mut top = descriptor("application/vnd.oci.image.manifest.v1+json", &manifest);
    top["annotations"] = annotations;
    let index = json!({"schemaVersion": 2, "manifests": [top]});
    archive.add("index.json", &serde_json::to_vec(&index).unwrap());
    archive.build()
}

/// An archive written to `tmp` and staged from there, as an import stages it.
pub(crate) fn staged(archive: Vec<u8>, tmp: &std::path::Path) -> super::archive::Staged {
    let path = tmp.join("archive.tar");
    std::fs::write(&path, archive).unwrap();
    super::archive::Staged::read(&path, &tmp.join("staged")).unwrap()
}
