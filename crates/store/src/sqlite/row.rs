//! One row of the log table, and what it means as a pair and as a watch event. The writer builds
//! rows and reads them back from the same place, so live and replayed events are made alike.

use bytes::Bytes;
use rusqlite::{Connection, Row};

use crate::{Event, EventKind, KeyValue, Result};

/// The log's columns in the order `LogRow::read` expects, prefixed by a table alias, as a
/// literal to build SQL with `concat!`.
macro_rules! log_columns {
    ($alias:literal) => {
        concat!(
            $alias,
            ".revision, ",
            $alias,
            ".key, ",
            $alias,
            ".create_revision, ",
            $alias,
            ".prev_revision, ",
            $alias,
            ".deleted, ",
            $alias,
            ".value"
        )
    };
}
pub(super) use log_columns;

/// How many columns `log_columns!` lists.
pub(super) const COLUMN_COUNT: usize = 6;

/// A write: a put of `value`, or (`deleted`) a tombstone holding the value it deleted.
#[derive(Clone, Debug)]
pub(super) struct LogRow {
    pub revision: i64,
    pub key: String,
    pub create_revision: i64,
    /// The revision of the key's previous row, 0 if this row is its first.
    pub prev_revision: i64,
    pub deleted: bool,
    pub value: Bytes,
}

impl LogRow {
    /// Reads the columns listed by `log_columns!`, starting at column `at`.
    pub fn read(row: &Row<'_>, at: usize) -> rusqlite::Result<Self> {
        Ok(LogRow {
            revision: row.get(at)?,
            key: row.get(at + 1)?,
            create_revision: row.get(at + 2)?,
            prev_revision: row.get(at + 3)?,
            deleted: row.get(at + 4)?,
            value: Bytes::from(row.get::<_, Vec<u8>>(at + 5)?),
        })
    }

    /// Like `read`, for the right side of a LEFT JOIN: `None` if it matched no row.
    pub fn read_optional(row: &Row<'_>, at: usize) -> rusqlite::Result<Option<Self>> {
        match row.get::<_, Option<i64>>(at)? {
            Some(_) => Self::read(row, at).map(Some),
            None => Ok(None),
        }
    }

    /// The newest row of `key` (a put or a tombstone), if the log has any.
    pub fn latest(conn: &Connection, key: &str) -> Result<Option<Self>> {
        let mut statement = conn.prepare_cached(concat!(
            "SELECT ",
            log_columns!("l"),
            " FROM log AS l WHERE l.key = ?1 ORDER BY l.revision DESC LIMIT 1"
        ))?;
        let mut rows = statement.query([key])?;
        Ok(rows.next()?.map(|row| Self::read(row, 0)).transpose()?)
    }

    pub fn insert(&self, conn: &Connection) -> Result<()> {
        conn.prepare_cached(
            "INSERT INTO log (revision, key, create_revision, prev_revision, deleted, value) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute((
            self.revision,
            &self.key,
            self.create_revision,
            self.prev_revision,
            self.deleted,
            self.value.as_ref(),
        ))?;
        Ok(())
    }

    /// The pair this row wrote. For a tombstone: the deleted pair, stamped with the delete's
    /// revision, as a delete event carries it.
    pub fn kv(&self) -> KeyValue {
        KeyValue {
            key: self.key.clone(),
            value: self.value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.revision,
        }
    }

    /// The event this row is. `prev` is the key's previous row (the one at `prev_revision`),
    /// `None` if there was none or compaction removed it (only ever a tombstone). A tombstone
    /// needs no `prev`: it holds the deleted pair itself.
    pub fn into_event(self, prev: Option<&LogRow>) -> Event {
        let kv = self.kv();
        if self.deleted {
            let prev = KeyValue { mod_revision: self.prev_revision, ..kv.clone() };
            Event { kind: EventKind::Delete, kv, prev: Some(prev) }
        } else {
            let prev = prev.filter(|row| !row.deleted).map(LogRow::kv);
            Event { kind: EventKind::Put, kv, prev }
        }
    }
}
