//! The newest row of each recently written key, in memory. Most reads of one key follow a
//! write to it closely (a pod is bound moments after it is created, a status is written after
//! the object it reports on), so the writer's precondition checks and `get` answer from here
//! instead of a SQLite query; a key written too long ago is read from the log.
//!
//! Rows are recorded once their transaction has committed, so a read never sees a write that
//! could still be rolled back; the writer sees its own batch's uncommitted rows through
//! [`Latest`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use rusqlite::Connection;

use crate::Result;

use super::row::LogRow;

/// How much the rows kept may take, counting their keys and values.
pub(super) const BUDGET_BYTES: usize = 32 << 20;
/// What a row costs besides its key and value, roughly.
const ROW_OVERHEAD: usize = 96;
/// How many entries of the write log may name rows since rewritten, beyond one per key kept.
const SLACK: usize = 1024;

pub(super) struct Recent {
    inner: Mutex<Rows>,
    budget: usize,
}

#[derive(Default)]
struct Rows {
    newest: HashMap<String, LogRow>,
    /// Keys in the order they were written, with the revision written: the oldest go first
    /// when the budget is spent. A key written again is kept by its newer entry.
    written: VecDeque<(String, i64)>,
    bytes: usize,
}

fn cost(row: &LogRow) -> usize {
    row.key.len() + row.value.len() + ROW_OVERHEAD
}

impl Recent {
    pub fn new(budget: usize) -> Self {
        Recent { inner: Mutex::default(), budget }
    }

    /// The newest row of `key` (a put or a tombstone), if it was written recently.
    pub fn newest(&self, key: &str) -> Option<LogRow> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).newest.get(key).cloned()
    }

    /// Records committed rows, oldest first.
    pub fn record(&self, rows: impl IntoIterator<Item = LogRow>) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for row in rows {
            inner.bytes += cost(&row);
            inner.written.push_back((row.key.clone(), row.revision));
            if let Some(replaced) = inner.newest.insert(row.key.clone(), row) {
                inner.bytes -= cost(&replaced);
            }
        }
        // Past the budget the oldest writes go; the log of writes goes too once most of it
        // names rows since rewritten (a Lease renewed every ten seconds must not grow it).
        while inner.bytes > self.budget || inner.written.len() > 2 * inner.newest.len() + SLACK {
            let Some((key, revision)) = inner.written.pop_front() else { break };
            if inner.newest.get(&key).is_some_and(|row| row.revision == revision)
                && let Some(gone) = inner.newest.remove(&key)
            {
                inner.bytes -= cost(&gone);
            }
        }
    }
}

/// The newest rows as the writer's open transaction sees them: its own batch's rows first,
/// then the recently committed ones, then the log.
pub(super) struct Latest<'a> {
    conn: &'a Connection,
    recent: &'a Recent,
    batch: HashMap<String, LogRow>,
}

impl<'a> Latest<'a> {
    pub fn new(conn: &'a Connection, recent: &'a Recent) -> Self {
        Latest { conn, recent, batch: HashMap::new() }
    }

    pub fn row(&self, key: &str) -> Result<Option<LogRow>> {
        if let Some(row) = self.batch.get(key) {
            return Ok(Some(row.clone()));
        }
        match self.recent.newest(key) {
            Some(row) => Ok(Some(row)),
            None => LogRow::latest(self.conn, key),
        }
    }

    pub fn wrote(&mut self, row: &LogRow) {
        self.batch.insert(row.key.clone(), row.clone());
    }

    /// The batch's rows, to record once it has committed.
    pub fn into_written(self) -> impl Iterator<Item = LogRow> {
        let mut rows: Vec<LogRow> = self.batch.into_values().collect();
        rows.sort_unstable_by_key(|row| row.revision);
        rows.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn row(key: &str, revision: i64, value: &str) -> LogRow {
        LogRow {
            revision,
            key: key.to_owned(),
            create_revision: 1,
            prev_revision: 0,
            deleted: false,
            value: Bytes::from(value.to_owned()),
        }
    }

    #[test]
    fn keeps_each_keys_newest_row() {
        let recent = Recent::new(BUDGET_BYTES);
        recent.record([row("/a", 1, "one"), row("/b", 2, "two"), row("/a", 3, "three")]);
        assert_eq!(recent.newest("/a").map(|r| r.revision), Some(3));
        assert_eq!(recent.newest("/b").map(|r| r.value), Some(Bytes::from("two")));
        assert!(recent.newest("/c").is_none());
    }

    #[test]
    fn forgets_the_oldest_writes_past_its_budget() {
        let one = cost(&row("/k0", 1, "0123456789"));
        let recent = Recent::new(3 * one);
        recent.record((1..=4).map(|i| row(&format!("/k{i}"), i, "0123456789")));
        assert!(recent.newest("/k1").is_none(), "the oldest write goes first");
        assert!((2..=4).all(|i| recent.newest(&format!("/k{i}")).is_some()));
        // Writing /k2 again makes it the newest: /k3 goes next, not /k2.
        recent.record([row("/k2", 5, "0123456789"), row("/k5", 6, "0123456789")]);
        assert_eq!(recent.newest("/k2").map(|r| r.revision), Some(5));
        assert!(recent.newest("/k3").is_none());
        assert!(recent.newest("/k4").is_some() && recent.newest("/k5").is_some());
    }

    #[test]
    fn rewriting_one_key_keeps_its_log_short() {
        let recent = Recent::new(BUDGET_BYTES);
        for revision in 1..=10_000 {
            recent.record([row("/lease", revision, "renewed")]);
        }
        assert_eq!(recent.newest("/lease").map(|r| r.revision), Some(10_000));
        assert!(recent.inner.lock().unwrap().written.len() <= 2 + SLACK);
    }
}
