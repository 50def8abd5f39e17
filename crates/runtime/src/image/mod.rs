//! The node's images: a content-addressed store of blobs (manifests, configs, layers), each
//! layer unpacked once into the form overlayfs takes as a lower directory, and an index of
//! the images and their names.
//!
//! ```text
//! images/blobs/sha256/<hex>          blobs, checked against their digest on the way in
//! images/layers/sha256/<diff id>/    unpacked layers (diff id: the digest of the plain tar)
//! images/index.json                  the images, their names and the blobs they keep
//! images/lock                        held by whoever changes the store (import, remove)
//! images/tmp/                        scratch: staged archives, layers being unpacked
//! images/downloads/                  each pull's blobs as they download
//! ```
//!
//! The store is synchronous (the agent calls it from `spawn_blocking`):
//! ```no_run
//! # fn demo() -> anyhow::Result<()> {
//! use runtime::image::ImageStore;
//! let store = ImageStore::open(std::path::Path::new("/var/lib/skiff/agent/images"))?;
//! for image in store.import(std::path::Path::new("busybox.tar"))? {
//!     println!("{:?} {}", image.names, image.id);
//! }
//! let busybox = store.find("busybox")?.expect("just imported");
//! let lower_dirs = store.layer_dirs(&busybox); // bottom layer first
//! # Ok(()) }
//! ```

mod archive;
mod compression;
mod config;
mod digest;
mod docker_save;
mod import;
mod index;
mod layer;
mod oci_layout;
pub mod reference;

pub use oci_layout::host_arch;
pub(crate) use oci_layout::{foreign_platform, is_index, is_manifest};
mod pulled;
mod remove;
mod scratch;
#[cfg(test)]
mod testdata;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How to run an image, from its config (what `docker inspect` shows under `Config`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `NAME=value` pairs.
    pub env: Vec<String>,
    pub working_dir: String,
    /// `user`, `uid`, `user:group` or `uid:gid`; empty for root.
    pub user: String,
}

/// An image in the store.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Image {
    /// `sha256:<digest of its config>`, as container runtimes identify images.
    pub id: String,
    /// Its names, normalized (`docker.io/library/busybox:latest`); empty for an image whose
    /// archive named none or whose names moved to other images.
    pub names: Vec<String>,
    /// `name@sha256:<manifest digest>`, when the manifest is known (OCI layouts, pulls).
    pub repo_digests: Vec<String>,
    /// The bytes of its layer blobs as stored: compressed when they came gzip'd (the size a
    /// registry and `crictl images` report), the plain tars' size for `docker save` archives.
    pub size: u64,
    /// Its layers' diff ids (`sha256:` of each plain tar), bottom layer first.
    pub diff_ids: Vec<String>,
    pub config: ImageConfig,
}

/// The image store rooted at a folder (the agent's is `<data-dir>/agent/images`).
#[derive(Clone)]
pub struct ImageStore {
    root: PathBuf,
}

impl ImageStore {
    /// Opens the store at `root`, creating its folders.
    pub fn open(root: &Path) -> anyhow::Result<ImageStore> {
        let store = ImageStore { root: root.to_path_buf() };
        for dir in [store.root.join("blobs/sha256"), store.root.join("layers/sha256")] {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(store)
    }

    /// Every image, by name (images without one last).
    pub fn list(&self) -> anyhow::Result<Vec<Image>> {
        let mut images: Vec<Image> =
            index::Index::load(&self.index_path())?.images.into_values().map(|r| r.image).collect();
        images.sort_by(|a, b| (a.names.is_empty(), &a.names, &a.id).cmp(&(b.names.is_empty(), &b.names, &b.id)));
        Ok(images)
    }

    /// The image a reference names: by any of its names (`busybox` finds
    /// `docker.io/library/busybox:latest`), a repo digest, its id `sha256:<hex>`, or a prefix
    /// of the id's hex that no other image shares. An invalid reference is an error.
    pub fn find(&self, reference: &str) -> anyhow::Result<Option<Image>> {
        let index = index::Index::load(&self.index_path())?;
        Ok(index.resolve(reference)?.map(|(record, _)| record.image.clone()))
    }

    /// The image's unpacked layers, bottom layer first (overlayfs's `lowerdir` lists them
    /// top first).
    pub fn layer_dirs(&self, image: &Image) -> Vec<PathBuf> {
        image.diff_ids.iter().map(|d| self.layer_dir(d.strip_prefix("sha256:").unwrap_or(d))).collect()
    }

    /// The folder the store lives in (its disk is the one image garbage collection watches).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// When the image came into the store: when its config blob was written.
    pub fn stored_at(&self, image: &Image) -> Option<std::time::SystemTime> {
        let hex = image.id.strip_prefix("sha256:").unwrap_or(&image.id);
        std::fs::metadata(self.blob_path(hex)).and_then(|m| m.modified()).ok()
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn blob_path(&self, hex: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(hex)
    }

    fn layer_dir(&self, diff_id_hex: &str) -> PathBuf {
        self.root.join("layers/sha256").join(diff_id_hex)
    }

    fn scratch(&self) -> anyhow::Result<scratch::Scratch> {
        scratch::Scratch::take(self.root.join("tmp"))
    }
}

#[cfg(test)]
mod tests {
    use super::testdata::{LayerBuilder, TestImage, docker_save, oci_layout};
    use super::*;
    use serde_json::json;
    use std::fs;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    /// A base layer and a layer on top that deletes a file and empties a folder of it.
    fn layers() -> (Vec<u8>, Vec<u8>) {
        let base = LayerBuilder::new()
            .dir("bin", 0o755)
            .file("bin/busybox", b"#!busybox", 0o755)
            .symlink("bin/sh", "busybox")
            .hardlink("bin/ls", "bin/busybox")
            .dir("etc", 0o755)
            .file("etc/motd", b"hello", 0o644)
            .dir("var/cache", 0o755)
            .file("var/cache/old", b"old", 0o644)
            .build();
        let top = LayerBuilder::new()
            .dir("etc", 0o755)
            .whiteout_file("etc/.wh.motd")
            .dir("var/cache", 0o755)
            .whiteout_file("var/cache/.wh..wh..opq")
            .file("var/cache/new", b"new", 0o644)
            .build();
        (base, top)
    }

    fn write(dir: &Path, name: &str, bytes: Vec<u8>) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    #[test]
    fn imports_a_docker_save_archive() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ImageStore::open(&tmp.path().join("images")).unwrap();
        let (base, top) = layers();
        let image = TestImage::new(vec![base.clone(), top.clone()], "echo hi");
        let archive = write(tmp.path(), "busybox.tar", docker_save(&[(&image, &["busybox:latest", "busybox:1.36"])]));

        let imported = store.import(&archive).unwrap();
        assert_eq!(imported.len(), 1);
        let got = &imported[0];
        assert_eq!(got.id, image.id());
        assert_eq!(got.names, ["docker.io/library/busybox:latest", "docker.io/library/busybox:1.36"]);
        assert!(got.repo_digests.is_empty());
        assert_eq!(got.size, (base.len() + top.len()) as u64);
        assert_eq!(
            got.config,
            ImageConfig {
                entrypoint: vec!["/bin/sh".into(), "-c".into()],
                cmd: vec!["echo hi".into()],
                env: vec!["PATH=/usr/bin:/bin".into(), "HOME=/root".into()],
                working_dir: "/work".into(),
                user: "1000:1000".into(),
            }
        );
        assert_eq!(store.list().unwrap(), imported);
        assert_eq!(store.find("busybox").unwrap().as_ref(), Some(got));
        assert_eq!(store.find("docker.io/library/busybox:1.36").unwrap().as_ref(), Some(got));
        assert_eq!(store.find(&got.id[7..19]).unwrap().as_ref(), Some(got));
        assert_eq!(store.find(&got.id).unwrap().as_ref(), Some(got));
        assert_eq!(store.find("busybox:2").unwrap(), None);

        // Every blob is stored under its digest; the scratch folder is gone.
        let root = tmp.path().join("images");
        let mut blobs = vec![got.id[7..].to_string(), digest::sha256_hex(&base), digest::sha256_hex(&top)];
        blobs.sort();
        assert_eq!(files_in(&root.join("blobs/sha256")), blobs);
        assert!(!root.join("tmp").exists());

        let dirs = store.layer_dirs(got);
        assert_eq!(
            dirs,
            [
                root.join("layers/sha256").join(&got.diff_ids[0][7..]),
                root.join("layers/sha256").join(&got.diff_ids[1][7..])
            ]
        );
        assert_eq!(fs::read(dirs[0].join("bin/busybox")).unwrap(), b"#!busybox");
        assert_eq!(fs::read_link(dirs[0].join("bin/sh")).unwrap(), Path::new("busybox"));
        assert_eq!(
            fs::metadata(dirs[0].join("bin/ls")).unwrap().ino(),
            fs::metadata(dirs[0].join("bin/busybox")).unwrap().ino()
        );
        let motd = fs::symlink_metadata(dirs[1].join("etc/motd")).unwrap();
        assert!(motd.file_type().is_char_device() && motd.rdev() == 0, "etc/motd is not an overlay whiteout");
        assert_eq!(files_in(&dirs[1].join("var/cache")), ["new"]);
    }

    #[test]
    fn imports_a_gzipped_oci_archive_and_finds_an_unnamed_image_by_id() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ImageStore::open(&tmp.path().join("images")).unwrap();
        let (base, top) = layers();
        let named = TestImage::new(vec![base.clone(), top], "named").gzipped();
        let unnamed = TestImage::new(vec![base], "unnamed").gzipped();
        let archive = oci_layout(
            &named,
            json!({"io.containerd.image.name": "localhost:5000/app:v1", "org.opencontainers.image.ref.name": "v1"}),
        );
        let archive = write(tmp.path(), "app.tar.gz", testdata::gzip(&archive));
        let imported = store.import(&archive).unwrap();
        let manifest_hex = digest::sha256_hex(&named.manifest());
        assert_eq!(imported[0].names, ["localhost:5000/app:v1"]);
        assert_eq!(imported[0].repo_digests, [format!("localhost:5000/app@sha256:{manifest_hex}")]);
        assert_eq!(imported[0].size, named.blobs().iter().map(|b| b.len() as u64).sum::<u64>());
        assert_eq!(store.find(&imported[0].repo_digests[0]).unwrap().map(|i| i.id), Some(named.id()));
        assert!(store.blob_path(&manifest_hex).is_file());

        let archive = write(
            tmp.path(),
            "unnamed.tar",
            oci_layout(&unnamed, json!({"org.opencontainers.image.ref.name": "latest"})),
        );
        let imported = store.import(&archive).unwrap();
        assert!(imported[0].names.is_empty());
        assert_eq!(store.find(&unnamed.id()[7..20]).unwrap().map(|i| i.id), Some(unnamed.id()));
        assert_eq!(store.find("latest").unwrap(), None);
        // Both images share the base layer, unpacked once.
        assert_eq!(files_in(&tmp.path().join("images/layers/sha256")).len(), 2);
        let listed: Vec<String> = store.list().unwrap().into_iter().map(|i| i.id).collect();
        assert_eq!(listed, [named.id(), unnamed.id()]);
    }

    #[test]
    fn removes_names_then_the_image_and_only_what_no_other_image_uses() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("images");
        let store = ImageStore::open(&root).unwrap();
        let (base, top) = layers();
        let big = TestImage::new(vec![base.clone(), top.clone()], "big");
        let small = TestImage::new(vec![base.clone()], "small");
        let archive = docker_save(&[(&big, &["big:1", "big:2"]), (&small, &["small"])]);
        store.import(&write(tmp.path(), "both.tar", archive)).unwrap();

        let removed = store.remove("big:1").unwrap();
        assert_eq!(
            (removed.id.as_str(), removed.names.as_slice()),
            (big.id().as_str(), &["docker.io/library/big:1".to_string()][..])
        );
        assert_eq!(store.find("big:2").unwrap().unwrap().names, ["docker.io/library/big:2"]);

        let removed = store.remove("big:2").unwrap();
        assert_eq!(removed.names, ["docker.io/library/big:2"]);
        assert_eq!(store.find(&big.id()).unwrap(), None);
        let base_hex = digest::sha256_hex(&base);
        let mut blobs = vec![small.id()[7..].to_string(), base_hex.clone()];
        blobs.sort();
        assert_eq!(files_in(&root.join("blobs/sha256")), blobs);
        assert_eq!(files_in(&root.join("layers/sha256")), [base_hex.as_str()]);
        assert_eq!(fs::read(root.join("layers/sha256").join(&base_hex).join("etc/motd")).unwrap(), b"hello");

        let err = store.remove("big:1").unwrap_err();
        assert!(format!("{err:#}").contains("image big:1 not found"), "{err:#}");

        // By id, the image goes with every name.
        let removed = store.remove(&small.id()[7..15]).unwrap();
        assert_eq!(removed.names, ["docker.io/library/small:latest"]);
        assert!(store.list().unwrap().is_empty());
        assert!(files_in(&root.join("blobs/sha256")).is_empty());
        assert!(files_in(&root.join("layers/sha256")).is_empty());
    }

    #[test]
    fn a_name_imported_again_moves_to_the_new_image() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ImageStore::open(&tmp.path().join("images")).unwrap();
        let (base, top) = layers();
        let old = TestImage::new(vec![base.clone()], "old");
        let new = TestImage::new(vec![base, top], "new");
        store.import(&write(tmp.path(), "old.tar", docker_save(&[(&old, &["app"])]))).unwrap();
        store.import(&write(tmp.path(), "new.tar", docker_save(&[(&new, &["app"])]))).unwrap();
        assert_eq!(store.find("app").unwrap().map(|i| i.id), Some(new.id()));
        assert_eq!(store.find(&old.id()).unwrap().map(|i| i.names), Some(vec![]));
    }

    #[test]
    fn a_corrupt_archive_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("images");
        let store = ImageStore::open(&root).unwrap();
        let (base, top) = layers();

        // A layer that does not unpack to the diff id its config gives.
        let image = TestImage::new(vec![base.clone()], "x");
        let mut config: serde_json::Value = serde_json::from_slice(&image.config).unwrap();
        config["rootfs"]["diff_ids"][0] = json!(format!("sha256:{}", digest::sha256_hex(&top)));
        let liar = TestImage::new(vec![base.clone()], "x").with_config(config);
        let err = store.import(&write(tmp.path(), "liar.tar", docker_save(&[(&liar, &["liar"])]))).unwrap_err();
        let err = format!("{err:#}");
        assert!(err.contains("diff id") && err.contains(&digest::sha256_hex(&base)), "{err}");

        // A blob whose content is not what its name says.
        let good = oci_layout(&image, json!({"org.opencontainers.image.ref.name": "docker.io/library/x:1"}));
        let mut archive = testdata::ArchiveBuilder::new();
        let config_hex = digest::sha256_hex(&image.config);
        archive.add(&format!("blobs/sha256/{config_hex}"), b"{\"tampered\": true}");
        let mut corrupt = archive.build();
        corrupt.truncate(corrupt.len() - 1024); // drop the end-of-archive marker, append the rest
        corrupt.extend_from_slice(&good);
        let err = format!("{:#}", store.import(&write(tmp.path(), "corrupt.tar", corrupt)).unwrap_err());
        assert!(err.contains(&format!("expected digest sha256:{config_hex}")), "{err}");

        // A layer with an entry outside itself.
        let escape = TestImage::new(vec![LayerBuilder::new().raw_file("../../escaped", b"x").build()], "x");
        let err = store.import(&write(tmp.path(), "escape.tar", docker_save(&[(&escape, &["escape"])]))).unwrap_err();
        assert!(format!("{err:#}").contains("outside its root"), "{err:#}");

        assert!(store.list().unwrap().is_empty());
        assert!(files_in(&root.join("blobs/sha256")).is_empty());
        assert!(files_in(&root.join("layers/sha256")).is_empty());
        assert!(!root.join("tmp").exists() && !tmp.path().join("escaped").exists());
    }
}
