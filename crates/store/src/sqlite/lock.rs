//! One process per store file. SQLite lets several processes write one file, but each skiff
//! server keeps the store's recent rows and its watches in memory, so a second server (or a reset
//! moving the file away) under a running one would go unseen by it. The lock is `flock` on a file
//! beside the store: SQLite's own locks are `fcntl` locks on the store file, which closing any other
//! descriptor of that file would drop.

use std::fs::{File, TryLockError};
use std::path::Path;

use crate::{Error, Result};

use super::schema;

/// Holds the store at `path` for this process until dropped.
pub(super) fn lock(path: &Path) -> Result<File> {
    let lock_path = schema::sibling(path, ".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::Backend(format!("cannot open the store's lock file {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(Error::Backend(format!(
            "{} is in use by another skiff process (it holds {}): stop that process first",
            path.display(),
            lock_path.display()
        ))),
        Err(TryLockError::Error(e)) => {
            Err(Error::Backend(format!("cannot lock the store's lock file {}: {e}", lock_path.display())))
        }
    }
}
