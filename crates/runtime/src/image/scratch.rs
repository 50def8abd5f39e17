//! The store's scratch folder, `tmp/`: archives are staged and layers unpacked there, and
//! layers being deleted are moved there first. It is on the store's filesystem, so what is
//! finished there moves into place with an atomic rename, and whatever a crash leaves there
//! is never mistaken for a complete blob or layer.

use anyhow::Context;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The scratch folder, emptied when taken and removed when dropped.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// Empties and recreates `dir`. Only the holder of the store's writer lock may take it:
    /// it throws away what an earlier writer left behind.
    pub(crate) fn take(dir: PathBuf) -> anyhow::Result<Scratch> {
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("clearing {}", dir.display())),
        }
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch(dir))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "cannot clear the image store's scratch folder");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_empty_and_cleans_up() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tmp");
        fs::create_dir_all(dir.join("left/over")).unwrap();
        let scratch = Scratch::take(dir.clone()).unwrap();
        assert_eq!(fs::read_dir(scratch.path()).unwrap().count(), 0);
        fs::write(dir.join("file"), b"x").unwrap();
        drop(scratch);
        assert!(!dir.exists());
    }
}
