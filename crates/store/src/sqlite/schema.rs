//! The on-disk layout: a log table with one row per write (its primary key is the revision, as
//! in kine) and a meta table with the current and compacted revisions.
//!
//! The meta table, not `MAX(revision)`, is the source of the current revision: compaction deletes
//! rows, and a revision once handed out must never be handed out again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use crate::{Error, Result};

/// The layout version kept in `PRAGMA user_version`; 0 is a file skiff has not set up yet.
const SCHEMA_VERSION: i64 = 1;

const CREATE_SCHEMA: &str = "
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS log (
    revision INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    create_revision INTEGER NOT NULL,
    -- the revision of the key's previous row (0 if none); compaction follows it to superseded rows
    prev_revision INTEGER NOT NULL,
    -- 1 for a delete tombstone, which keeps the deleted value so a delete event is self-contained
    deleted INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key_revision ON log (key, revision);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
-- A fresh store starts at revision 1: revision 0 means \"the latest\" in requests.
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 1), ('compacted', 0);
PRAGMA user_version = 1;
COMMIT;
";

/// Names of the rows of the meta table.
pub(super) const META_REVISION: &str = "revision";
pub(super) const META_COMPACTED: &str = "compacted";

/// How long a connection waits for a lock held by another (a checkpoint, a closing store).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The size the write-ahead log is cut back to after a checkpoint, so that one burst of large
/// writes does not leave a large file behind for good.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// The revisions the writer hands out and has compacted, as last committed.
#[derive(Clone, Copy, Debug)]
pub(super) struct Revisions {
    pub current: i64,
    pub compacted: i64,
}

/// Opens the connection the writer owns: WAL with `synchronous=FULL`, so a commit is on disk
/// before it returns, and readers never block the writer. Creates the layout on a new file.
pub(super) fn open_writer(path: &Path) -> Result<(Connection, Revisions)> {
    let conn = open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Backend(format!(
            "SQLite refused write-ahead logging for {} (journal mode is {mode})",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    // This pragma answers with the limit it set, so it cannot go through `pragma_update`.
    conn.query_row(&format!("PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}"), [], |_| Ok(()))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    match version {
        0 => conn.execute_batch(CREATE_SCHEMA)?,
        SCHEMA_VERSION => check_intact(&conn, path)?,
        newer => {
            return Err(Error::Backend(format!(
                "{} has store schema version {newer}, but this skiff understands only version \
                 {SCHEMA_VERSION}: run a newer skiff",
                path.display()
            )));
        }
    }
    let revisions =
        Revisions { current: read_meta(&conn, META_REVISION)?, compacted: read_meta(&conn, META_COMPACTED)? };
    Ok((conn, revisions))
}

/// Refuses a damaged file. SQLite's quick check reads every page but skips the cross-checks
/// of indexes against tables, so it costs about one read of the file.
fn check_intact(conn: &Connection, path: &Path) -> Result<()> {
    let findings = conn.prepare("PRAGMA quick_check").and_then(|mut check| {
        check.query_map([], |row| row.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()
    });
    let findings = match findings {
        Ok(findings) if findings == ["ok"] => return Ok(()),
        Ok(findings) => findings.join("; "),
        // Damage can stop the check itself.
        Err(e) => e.to_string(),
    };
    Err(Error::Backend(format!("{} is damaged: {findings}", path.display())))
}

/// Opens a connection that waits for another's locks rather than failing at once.
pub(super) fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Opens a connection for reads only, on a file `open_writer` has set up.
pub(super) fn open_reader(path: &Path) -> Result<Connection> {
    let conn = open(path)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

pub(super) fn read_meta(conn: &Connection, name: &str) -> Result<i64> {
    let value = conn.prepare_cached("SELECT value FROM meta WHERE name = ?1")?.query_row([name], |row| row.get(0))?;
    Ok(value)
}

pub(super) fn write_meta(conn: &Connection, name: &str, value: i64) -> Result<()> {
    conn.prepare_cached("UPDATE meta SET value = ?2 WHERE name = ?1")?.execute((name, value))?;
    Ok(())
}

/// The path of a file beside the store: its own path with `suffix` appended.
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
