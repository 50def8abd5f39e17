//! The writes, each applied inside the writer's open transaction: it checks its precondition
//! against the log as the transaction sees it (earlier writes of the same batch included),
//! appends its row and takes the next revision.

use bytes::Bytes;
use rusqlite::Connection;

use crate::{Error, Event, KeyValue, Result};

use super::recent::Latest;
use super::row::LogRow;
use super::schema::{META_COMPACTED, Revisions, write_meta};

/// How many revisions one compaction step covers, so that the writes queued behind a large
/// compaction wait for one step only.
const COMPACTION_STEP: i64 = 10_000;

pub(super) enum Op {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: i64,
    },
    Delete {
        key: String,
        expected: Option<i64>,
    },
    /// One step towards compacting at `target`.
    Compact {
        target: i64,
    },
}

/// What a write did: its revision (for a compaction step, the revision compacted so far) and the
/// pair it replaced or deleted.
#[derive(Debug)]
pub(super) struct Outcome {
    pub revision: i64,
    pub prev: Option<KeyValue>,
}

/// Applies `op`, adding the event it makes to `events`. A refused precondition is an error other
/// than `Error::Backend` and changes nothing; `Error::Backend` leaves the transaction unusable.
pub(super) fn apply(
    conn: &Connection,
    latest: &mut Latest<'_>,
    revisions: &mut Revisions,
    op: Op,
    events: &mut Vec<Event>,
) -> Result<Outcome> {
    match op {
        Op::Create { key, value } => {
            let newest = latest.row(&key)?;
            if newest.as_ref().is_some_and(|row| !row.deleted) {
                return Err(Error::AlreadyExists);
            }
            let revision = revisions.current + 1;
            let row = LogRow {
                revision,
                key,
                create_revision: revision,
                prev_revision: newest.map_or(0, |row| row.revision),
                deleted: false,
                value,
            };
            append(conn, latest, revisions, row, None, events)
        }
        Op::Update { key, value, expected } => {
            let current = guarded_live_row(latest, &key, Some(expected))?;
            let row = LogRow {
                revision: revisions.current + 1,
                key,
                create_revision: current.create_revision,
                prev_revision: current.revision,
                deleted: false,
                value,
            };
            append(conn, latest, revisions, row, Some(&current), events)
        }
        Op::Delete { key, expected } => {
            let current = guarded_live_row(latest, &key, expected)?;
            let row = LogRow {
                revision: revisions.current + 1,
                deleted: true,
                prev_revision: current.revision,
                ..current.clone()
            };
            append(conn, latest, revisions, row, Some(&current), events)
        }
        Op::Compact { target } => compact_step(conn, revisions, target),
    }
}

/// The key's current row, if it is live and its revision is `expected` (when given).
fn guarded_live_row(latest: &Latest<'_>, key: &str, expected: Option<i64>) -> Result<LogRow> {
    let row = latest.row(key)?.filter(|row| !row.deleted).ok_or(Error::NotFound)?;
    match expected {
        Some(expected) if expected != row.revision => Err(Error::Conflict { current: row.kv() }),
        _ => Ok(row),
    }
}

fn append(
    conn: &Connection,
    latest: &mut Latest<'_>,
    revisions: &mut Revisions,
    row: LogRow,
    prev: Option<&LogRow>,
    events: &mut Vec<Event>,
) -> Result<Outcome> {
    row.insert(conn)?;
    latest.wrote(&row);
    revisions.current = row.revision;
    let event = row.into_event(prev);
    let outcome = Outcome { revision: event.revision(), prev: event.prev.clone() };
    events.push(event);
    Ok(outcome)
}

/// Compacts from the compacted revision up to `target`, at most `COMPACTION_STEP` revisions
/// further. Every row in the step supersedes its key's previous row, which goes; tombstones go
/// too. What is left at or below the new compacted revision is each live key's newest row.
fn compact_step(conn: &Connection, revisions: &mut Revisions, target: i64) -> Result<Outcome> {
    if target <= revisions.compacted {
        return Err(Error::Compacted { requested: target, compacted: revisions.compacted });
    }
    if target > revisions.current {
        return Err(Error::FutureRevision { requested: target, current: revisions.current });
    }
    let from = revisions.compacted;
    let to = target.min(from + COMPACTION_STEP);
    conn.prepare_cached(
        "DELETE FROM log WHERE revision IN (SELECT prev_revision FROM log \
         WHERE revision > ?1 AND revision <= ?2 AND prev_revision > 0)",
    )?
    .execute((from, to))?;
    conn.prepare_cached("DELETE FROM log WHERE revision > ?1 AND revision <= ?2 AND deleted = 1")?
        .execute((from, to))?;
    write_meta(conn, META_COMPACTED, to)?;
    revisions.compacted = to;
    Ok(Outcome { revision: to, prev: None })
}
