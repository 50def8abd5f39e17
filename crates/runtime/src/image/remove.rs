//! Removing images: a name at a time, and with the last name (or given by id) the image
//! itself, with its blobs and the layers that no other image uses.

use super::index::{self, Index, Match};
use super::{Image, ImageStore};
use anyhow::{Context, anyhow};
use std::collections::HashSet;
use std::fs;

impl ImageStore {
    /// Removes what `reference` names. By a name, that name goes, and the image with it when
    /// it was its last; by id (or a unique id prefix, or a repo digest), the image goes with
    /// all its names. Returns the image as it was, with `names` holding the names removed.
    pub fn remove(&self, reference: &str) -> anyhow::Result<Image> {
        let _lock = index::lock(&self.root)?;
        let mut index = Index::load(&self.index_path())?;
        let (record, how) = index
            .resolve(reference)?
            .ok_or_else(|| anyhow!("image {reference} not found (`skiff image ls` lists them)"))?;
        let id = record.image.id.clone();
        let removed_names = match how {
            Match::Name(name) => vec![name],
            Match::Image => record.image.names.clone(),
        };
        let record = index.images.get_mut(&id).expect("resolved in this index");
        let mut removed = record.image.clone();
        removed.names = removed_names;
        record.image.names.retain(|n| !removed.names.contains(n));
        if !record.image.names.is_empty() {
            index.save(&self.index_path())?;
            return Ok(removed);
        }
        let gone = index.images.remove(&id).expect("resolved in this index");
        // Out of the index first: a crash after this leaves unreferenced files, never an
        // image whose files are missing.
        index.save(&self.index_path())?;
        let blobs_kept: HashSet<&String> = index.images.values().flat_map(|r| &r.blobs).collect();
        for hex in gone.blobs.iter().filter(|b| !blobs_kept.contains(b)) {
            let path = self.blob_path(hex);
            fs::remove_file(&path).or_else(ignore_missing).with_context(|| format!("removing {}", path.display()))?;
        }
        let layers_kept: HashSet<&String> = index.images.values().flat_map(|r| &r.image.diff_ids).collect();
        let scratch = self.scratch()?;
        for diff_id in gone.image.diff_ids.iter().filter(|d| !layers_kept.contains(d)) {
            let hex = diff_id.strip_prefix("sha256:").unwrap_or(diff_id);
            // Moved out of place whole before it is deleted: a half-deleted layer must never
            // sit where a later import would take it for complete.
            let doomed = scratch.path().join(hex);
            match fs::rename(self.layer_dir(hex), &doomed) {
                Ok(()) => fs::remove_dir_all(&doomed).with_context(|| format!("removing {}", doomed.display()))?,
                Err(e) => ignore_missing(e).with_context(|| format!("removing the layer {diff_id}"))?,
            }
        }
        Ok(removed)
    }
}

/// Something already gone needs no removing.
fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) }
}
