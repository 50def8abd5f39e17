//! The store's side of a pull (`registry::pull` does the network's): a folder of its own
//! for each pull's downloads, on the store's filesystem, and the downloaded blobs committed
//! as an archive's are, under the writer lock.

use super::archive::{Found, Staged};
use super::{Image, ImageStore, index};
use anyhow::Context;
use std::path::Path;

impl ImageStore {
    /// A folder for one pull's blobs, removed when dropped. Pulls download side by side;
    /// only their commits take turns.
    pub fn downloads(&self) -> anyhow::Result<tempfile::TempDir> {
        let dir = self.root.join("downloads");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        tempfile::Builder::new()
            .prefix("pull-")
            .tempdir_in(&dir)
            .with_context(|| format!("creating a folder in {}", dir.display()))
    }

    /// Puts the store's copy of a blob (by hex digest) into `dir`, if it has one, so that it
    /// need not be downloaded again. Returns whether it did.
    pub fn reuse_blob(&self, hex: &str, dir: &Path) -> bool {
        let (from, to) = (self.blob_path(hex), dir.join(hex));
        std::fs::hard_link(&from, &to).or_else(|_| std::fs::copy(&from, &to).map(drop)).is_ok()
    }

    /// Stores a pulled image: its manifest, config and layers (hex digests), each verified
    /// and staged in `dir` under its digest; named `name` (none for an image pulled by
    /// digest) and known in `repository` by its manifest's digest.
    pub fn store_pulled(
        &self,
        dir: &Path,
        name: Option<String>,
        repository: String,
        manifest: String,
        config: String,
        layers: Vec<String>,
    ) -> anyhow::Result<Image> {
        let _lock = index::lock(&self.root)?;
        let scratch = self.scratch()?;
        let found = Found {
            names: name.into_iter().collect(),
            manifest: Some(manifest),
            config,
            layers,
            repository: Some(repository),
        };
        let mut stored = self.commit(&Staged::of_blobs(dir), vec![found], scratch.path())?;
        stored.pop().context("the pulled image was not stored")
    }
}
