//! Starting over: setting a store file aside for a fresh one (`skiff server --cluster-reset`),
//! and copying a live store for a snapshot.
//!
//! A fresh store begins past every revision its clients may have seen, with everything before
//! compacted, as etcd's restore does with `--bump-revision` and `--mark-compacted`: a client
//! resuming a watch or a list from an older resourceVersion gets 410 Gone and lists again,
//! instead of waiting for revisions the new store has not reached.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::warn;

use crate::{Error, Result};

use super::{lock, schema};

/// How far past a store whose revision cannot be read (it is damaged, or gone) a fresh one
/// begins: etcd's advice for `--bump-revision`, far more writes than a cluster makes between
/// snapshots.
const UNKNOWN_REVISION_MARGIN: i64 = 1_000_000_000;

/// What a reset did.
#[derive(Clone, Debug)]
pub struct Reset {
    /// Where the old store's files went, if there were any.
    pub set_aside: Option<PathBuf>,
    /// The fresh store's revision, also its compacted revision.
    pub revision: i64,
}

/// Moves the store at `path` (with its write-ahead log) aside and creates a fresh one there whose
/// revision is past the old store's and past `at_least`. Refused while a process has the store
/// open.
pub fn reset(path: &Path, at_least: i64) -> Result<Reset> {
    let _held = lock::lock(path)?;
    let old_revision = if path.exists() { readable_revision(path) } else { None };
    let revision = match old_revision {
        Some(old) => old.max(at_least) + 1,
        None => at_least + UNKNOWN_REVISION_MARGIN,
    };
    let set_aside = set_aside(path)?;
    let (conn, _) = schema::open_writer(path)?;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    schema::write_meta(&conn, schema::META_REVISION, revision)?;
    schema::write_meta(&conn, schema::META_COMPACTED, revision)?;
    conn.execute_batch("COMMIT")?;
    Ok(Reset { set_aside, revision })
}

/// The store's current revision, if the file is a store that can be read.
fn readable_revision(path: &Path) -> Option<i64> {
    let read = schema::open_reader(path).and_then(|conn| schema::read_meta(&conn, schema::META_REVISION));
    read.inspect_err(|e| warn!(path = %path.display(), error = %e, "cannot read the old store's revision")).ok()
}

/// The store's files: the database and its write-ahead log, which SQLite would replay into a
/// new database of the same name if it were left behind.
const FILES: [&str; 3] = ["", "-wal", "-shm"];

/// Renames whichever of the store's files exist to `<name>.reset-<unix seconds>[-N][-wal|-shm]`,
/// a name no earlier reset took; returns the new path of the database, if any file was moved.
fn set_aside(path: &Path) -> Result<Option<PathBuf>> {
    if !FILES.iter().any(|suffix| schema::sibling(path, suffix).exists()) {
        return Ok(None);
    }
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
    let taken = |aside: &PathBuf| FILES.iter().any(|suffix| schema::sibling(aside, suffix).exists());
    let aside = (0..)
        .map(|n| {
            schema::sibling(path, &if n == 0 { format!(".reset-{seconds}") } else { format!(".reset-{seconds}-{n}") })
        })
        .find(|aside| !taken(aside))
        .expect("some name is free");
    for suffix in FILES {
        let from = schema::sibling(path, suffix);
        if from.exists() {
            let to = schema::sibling(&aside, suffix);
            std::fs::rename(&from, &to)
                .map_err(|e| Error::Backend(format!("cannot move {} to {}: {e}", from.display(), to.display())))?;
        }
    }
    Ok(Some(aside))
}

/// Writes a consistent copy of the store at `path` to `copy` while a server may be writing it
/// (SQLite's `VACUUM INTO` reads in one transaction, and leaves the file it reads unchanged;
/// it needs a connection that may write, though, for the file it writes).
pub fn copy(path: &Path, copy: &Path) -> Result<()> {
    let conn = schema::open(path)?;
    let target = copy.to_str().ok_or_else(|| Error::Backend(format!("{} is not a UTF-8 path", copy.display())))?;
    conn.execute("VACUUM INTO ?1", [target])?;
    Ok(())
}
