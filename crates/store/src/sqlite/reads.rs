//! The read queries: a key's current pair, a range as of a revision, and the history a watch
//! replays. Each runs in one read transaction, so it sees a single commit throughout, and checks
//! the compacted revision inside it, so a compaction can never remove rows from under it.

use rusqlite::Connection;

use crate::{Error, Event, KeyValue, RangeRequest, RangeResult, Result};

use super::keys::{KeyRange, bind_named};
use super::row::{COLUMN_COUNT, LogRow, log_columns};
use super::schema::{META_COMPACTED, read_meta};

pub(super) fn compacted(conn: &Connection) -> Result<i64> {
    read_meta(conn, META_COMPACTED)
}

pub(super) fn get(conn: &Connection, key: &str) -> Result<Option<KeyValue>> {
    Ok(LogRow::latest(conn, key)?.filter(|row| !row.deleted).map(|row| row.kv()))
}

/// The keys of a range request as of a revision; `current` is the newest committed revision.
pub(super) fn range(conn: &mut Connection, request: &RangeRequest, current: i64) -> Result<RangeResult> {
    let revision = if request.revision == 0 { current } else { request.revision };
    if revision > current {
        return Err(Error::FutureRevision { requested: revision, current });
    }
    let tx = conn.transaction()?;
    // As in etcd, the state at the compacted revision itself is still whole.
    let compacted = compacted(&tx)?;
    if revision < compacted {
        return Err(Error::Compacted { requested: revision, compacted });
    }
    let mut keys = KeyRange::prefix(&request.prefix);
    if let Some(after) = &request.start_after {
        keys = keys.after(after);
    }
    let limit = match request.limit {
        0 => None,
        limit => Some(limit),
    };
    // One pair past the page tells whether more follow, without counting them.
    let mut kvs = live_pairs(&tx, &keys, revision, limit.map(|limit| limit.saturating_add(1)))?;
    let more = limit.is_some_and(|limit| kvs.len() > limit);
    kvs.truncate(limit.unwrap_or(kvs.len()));
    let remaining = match kvs.last() {
        _ if !request.count_remaining => None,
        Some(last) if more => Some(count_live(&tx, &keys.after(&last.key), revision)?),
        _ => Some(0),
    };
    Ok(RangeResult { kvs, revision, more, remaining })
}

/// For each key in `keys`, its newest row at or below `revision`, unless that row is a tombstone.
/// SQLite walks the `(key, revision)` index in key order and probes it for a newer row, so a page
/// with a limit stops early and needs no sort.
fn newest_live_rows(keys: &KeyRange) -> String {
    format!(
        "log AS l WHERE {} AND l.revision <= :revision AND l.deleted = 0 \
         AND NOT EXISTS (SELECT 1 FROM log AS n \
                         WHERE n.key = l.key AND n.revision > l.revision AND n.revision <= :revision)",
        keys.condition("l.key")
    )
}

fn live_pairs_sql(keys: &KeyRange) -> String {
    format!("SELECT {} FROM {} ORDER BY l.key LIMIT :limit", log_columns!("l"), newest_live_rows(keys))
}

fn count_live_sql(keys: &KeyRange) -> String {
    format!("SELECT COUNT(*) FROM {}", newest_live_rows(keys))
}

/// `+l.key` keeps SQLite on the primary key: the scan is bounded by revisions, not keys.
fn history_sql(keys: &KeyRange) -> String {
    format!(
        "SELECT {}, {} FROM log AS l LEFT JOIN log AS p ON p.revision = l.prev_revision \
         WHERE l.revision >= :from AND l.revision <= :to AND {} ORDER BY l.revision",
        log_columns!("l"),
        log_columns!("p"),
        keys.condition("+l.key")
    )
}

fn live_pairs(conn: &Connection, keys: &KeyRange, revision: i64, limit: Option<usize>) -> Result<Vec<KeyValue>> {
    let mut statement = conn.prepare_cached(&live_pairs_sql(keys))?;
    keys.bind(&mut statement)?;
    bind_named(&mut statement, ":revision", revision)?;
    // SQLite reads a negative limit as "no limit".
    let limit = limit.map_or(-1, |limit| i64::try_from(limit).unwrap_or(i64::MAX));
    bind_named(&mut statement, ":limit", limit)?;
    let mut rows = statement.raw_query();
    let mut kvs = Vec::new();
    while let Some(row) = rows.next()? {
        kvs.push(LogRow::read(row, 0)?.kv());
    }
    Ok(kvs)
}

fn count_live(conn: &Connection, keys: &KeyRange, revision: i64) -> Result<usize> {
    let mut statement = conn.prepare_cached(&count_live_sql(keys))?;
    keys.bind(&mut statement)?;
    bind_named(&mut statement, ":revision", revision)?;
    let mut rows = statement.raw_query();
    let count: i64 = match rows.next()? {
        Some(row) => row.get(0)?,
        None => 0,
    };
    Ok(usize::try_from(count).unwrap_or(0))
}

/// Replays the events on keys under `prefix` with revisions `from..=to`, oldest first, into
/// `deliver` until it returns false. `Error::Compacted` if `from` is at or below the compacted
/// revision: the events there, or their previous values, may be gone.
pub(super) fn history(
    conn: &mut Connection,
    prefix: &str,
    from: i64,
    to: i64,
    mut deliver: impl FnMut(Event) -> bool,
) -> Result<()> {
    let tx = conn.transaction()?;
    let compacted = compacted(&tx)?;
    if from <= compacted {
        return Err(Error::Compacted { requested: from, compacted });
    }
    let keys = KeyRange::prefix(prefix);
    let mut statement = tx.prepare_cached(&history_sql(&keys))?;
    keys.bind(&mut statement)?;
    bind_named(&mut statement, ":from", from)?;
    bind_named(&mut statement, ":to", to)?;
    let mut rows = statement.raw_query();
    while let Some(row) = rows.next()? {
        let prev = LogRow::read_optional(row, COLUMN_COUNT)?;
        if !deliver(LogRow::read(row, 0)?.into_event(prev.as_ref())) {
            break;
        }
    }
    Ok(())
}

/// How many rows the log holds, for tests that check compaction keeps it bounded.
pub(super) fn row_count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM log", [], |row| row.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::schema;

    /// The queries a large store runs must walk an index, never scan the whole log or sort it.
    #[test]
    fn reads_walk_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, _) = schema::open_writer(&dir.path().join("plans.db")).unwrap();
        let keys = KeyRange::prefix("/registry/pods/").after("/registry/pods/a");
        for sql in [live_pairs_sql(&keys), count_live_sql(&keys), history_sql(&keys)] {
            let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let mut rows = statement.raw_query();
            let mut plan: Vec<String> = Vec::new();
            while let Some(row) = rows.next().unwrap() {
                plan.push(row.get(3).unwrap());
            }
            assert!(
                plan.iter().all(|step| !step.starts_with("SCAN") && !step.contains("TEMP B-TREE")),
                "{sql}\n{plan:#?}"
            );
        }
    }
}
