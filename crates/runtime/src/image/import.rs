//! Importing image archives into the store.
//!
//! Everything is prepared in the scratch folder first: the archive's files staged by digest
//! (which verifies every blob), each new layer unpacked and checked against its diff id.
//! Only then, after a filesystem sync, do blobs and layers move into place by rename, and
//! the index names them last. A crash at any point leaves either nothing visible or complete
//! blobs and layers, at worst unreferenced ones that the next import of that image reuses.

use super::archive::{self, Found, Staged};
use super::digest::hex_of;
use super::index::{self, Index, Record};
use super::reference::Reference;
use super::{Image, ImageStore, config, layer};
use anyhow::{Context, bail};
use std::fs;
use std::path::{Path, PathBuf};

impl ImageStore {
    /// Imports every image of a `docker save` archive or an OCI image layout archive (told
    /// apart by their contents), either possibly gzip'd, and returns them as the store now
    /// has them. A name the store already gives another image moves to the imported one.
    pub fn import(&self, archive: &Path) -> anyhow::Result<Vec<Image>> {
        self.import_archive(archive).with_context(|| format!("importing {}", archive.display()))
    }

    fn import_archive(&self, archive: &Path) -> anyhow::Result<Vec<Image>> {
        let _lock = index::lock(&self.root)?;
        let scratch = self.scratch()?;
        let staged = Staged::read(archive, &scratch.path().join("archive"))?;
        let found = archive::images(&staged)?;
        if found.is_empty() {
            bail!("the archive holds no image");
        }
        self.commit(&staged, found, scratch.path())
    }

    /// Adds images whose blobs are staged (and verified): their new layers unpacked into
    /// `scratch` and checked, everything synced, moved into place, and named in the index
    /// last. The caller holds the writer lock.
    pub(crate) fn commit(&self, staged: &Staged, found: Vec<Found>, scratch: &Path) -> anyhow::Result<Vec<Image>> {
        let unpack_dir = scratch.join("layers");
        fs::create_dir(&unpack_dir)?;
        let mut unpacked: Vec<(PathBuf, PathBuf)> = Vec::new();
        let mut records = Vec::new();
        for image in found {
            records.push(self.prepare(staged, image, &unpack_dir, &mut unpacked)?);
        }

        sync_filesystem(&self.root)?;
        for record in &records {
            for hex in &record.blobs {
                let target = self.blob_path(hex);
                if !target.exists() {
                    fs::rename(staged.blob_path(hex), &target)
                        .with_context(|| format!("storing {}", target.display()))?;
                }
            }
        }
        for (from, to) in &unpacked {
            fs::rename(from, to).with_context(|| format!("storing {}", to.display()))?;
        }
        sync_filesystem(&self.root)?;

        let mut index = Index::load(&self.index_path())?;
        let ids: Vec<String> = records.iter().map(|r| r.image.id.clone()).collect();
        for record in records {
            index.add(record);
        }
        index.save(&self.index_path())?;
        let mut added = Vec::new();
        for id in ids {
            let image = &index.images[&id].image;
            if !added.contains(image) {
                added.push(image.clone());
            }
        }
        Ok(added)
    }

    /// The record of one image of the archive, with its layers that the store lacks unpacked
    /// into `unpack_dir` and listed in `unpacked` with the place they go to.
    fn prepare(
        &self,
        staged: &Staged,
        found: Found,
        unpack_dir: &Path,
        unpacked: &mut Vec<(PathBuf, PathBuf)>,
    ) -> anyhow::Result<Record> {
        let (config, diff_ids) = config::parse(&staged.read_blob(&found.config)?)?;
        if diff_ids.len() != found.layers.len() {
            bail!("the image's manifest lists {} layers but its config {}", found.layers.len(), diff_ids.len());
        }
        let mut size = 0;
        for (blob, diff_id) in found.layers.iter().zip(&diff_ids) {
            size += fs::metadata(staged.blob_path(blob))?.len();
            let diff_hex = hex_of(diff_id)?;
            let target = self.layer_dir(diff_hex);
            if target.exists() || unpacked.iter().any(|(_, to)| *to == target) {
                continue;
            }
            let dir = unpack_dir.join(diff_hex);
            let actual = layer::unpack_blob(&staged.blob_path(blob), &dir)
                .with_context(|| format!("unpacking the layer sha256:{blob}"))?;
            if actual != diff_hex {
                bail!(
                    "the layer sha256:{blob} is corrupt: its config expects diff id {diff_id}, but it unpacks to sha256:{actual}"
                );
            }
            unpacked.push((dir, target));
        }
        let repo_digests = match &found.manifest {
            Some(manifest) => repo_digests(found.names.iter().chain(&found.repository), manifest)?,
            None => Vec::new(),
        };
        let mut blobs: Vec<String> =
            found.manifest.iter().chain([&found.config]).chain(&found.layers).cloned().collect();
        blobs.sort();
        blobs.dedup();
        let image =
            Image { id: format!("sha256:{}", found.config), names: found.names, repo_digests, size, diff_ids, config };
        Ok(Record { image, blobs })
    }
}

/// `registry/repository@sha256:<manifest>` for each repository the names are in.
fn repo_digests<'a>(names: impl Iterator<Item = &'a String>, manifest_hex: &str) -> anyhow::Result<Vec<String>> {
    let mut digests = Vec::new();
    for name in names {
        let digest = format!("{}@sha256:{manifest_hex}", name.parse::<Reference>()?.name());
        if !digests.contains(&digest) {
            digests.push(digest);
        }
    }
    Ok(digests)
}

/// Flushes the store's filesystem, so what is about to be renamed into place (or named in
/// the index) is on disk in full first.
fn sync_filesystem(root: &Path) -> anyhow::Result<()> {
    let dir = fs::File::open(root).with_context(|| format!("opening {}", root.display()))?;
    nix::unistd::syncfs(&dir).with_context(|| format!("syncing the filesystem of {}", root.display()))?;
    Ok(())
}
