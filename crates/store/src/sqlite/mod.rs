//! The embedded backend: one SQLite file in WAL mode.
//!
//! - Writes go to one writer thread that group-commits them ([`writer`], [`batch_queue`]);
//!   each is on disk (`synchronous=FULL`) before its future returns.
//! - Reads run on a small pool of read connections in tokio's blocking pool ([`pool`], [`reads`]).
//! - The log holds one row per write, keyed by revision ([`schema`], [`row`]); history is kept
//!   for `SqliteOptions::history` and compacted in the background ([`compactor`]).
//! - Watches get events from the writer's commit path through the [`hub`], never by polling.
//! - The newest rows of recently written keys stay in memory ([`recent`]) for reads of one key.
//!
//! ```no_run
//! # async fn demo() -> Result<(), store::Error> {
//! use store::{SqliteOptions, SqliteStore, Store};
//! let store = SqliteStore::open("/var/lib/skiff/store.db".as_ref(), SqliteOptions::default())?;
//! store.create("/registry/core/namespaces/default", b"{}".to_vec().into()).await?;
//! # Ok(()) }
//! ```

mod batch_queue;
mod compactor;
mod hub;
mod keys;
mod lock;
mod ops;
mod pool;
mod reads;
mod recent;
mod recovery;
mod row;
mod schema;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tracing::info;

pub use recovery::Reset;

use crate::{Error, KeyValue, RangeRequest, RangeResult, Result, Store, WatchItem, WatchStream};

use hub::Hub;
use ops::Op;
use pool::ReadPool;
use recent::Recent;
use writer::Writer;

/// How a [`SqliteStore`] keeps its history.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// How often background compaction runs; zero turns it off.
    pub compaction_interval: Duration,
    /// How much history compaction keeps: watches and paginated lists can resume from any
    /// revision this recent.
    pub history: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions { compaction_interval: Duration::from_secs(60), history: Duration::from_secs(5 * 60) }
    }
}

/// The embedded [`Store`]: a SQLite database file.
pub struct SqliteStore {
    writer: Writer,
    reads: Arc<ReadPool>,
    hub: Arc<Hub>,
    recent: Arc<Recent>,
    /// Keeps other processes off the file while the store is open.
    _lock: std::fs::File,
}

impl SqliteStore {
    /// Opens the database at `path`, creating it if needed, and starts its writer thread and
    /// background compaction. Must be called inside a tokio runtime. Fast whatever the size of
    /// the database: it reads two revisions and scans nothing.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<Arc<Self>> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Backend("the SQLite store must be opened inside a tokio runtime".to_owned()))?;
        let lock = lock::lock(path)?;
        let (conn, revisions) = schema::open_writer(path)?;
        let hub = Arc::new(Hub::new(revisions.current));
        let recent = Arc::new(Recent::new(recent::BUDGET_BYTES));
        let writer = Writer::spawn(conn, revisions, Arc::clone(&hub), Arc::clone(&recent))?;
        let store = Arc::new(SqliteStore { writer, reads: ReadPool::new(path), hub, recent, _lock: lock });
        let weak = Arc::downgrade(&store);
        compactor::spawn(&runtime, weak, revisions.current, options.compaction_interval, options.history);
        info!(
            path = %path.display(),
            revision = revisions.current,
            compacted = revisions.compacted,
            "opened the SQLite store"
        );
        Ok(store)
    }

    /// Moves the store at `path` aside for a fresh, empty one that begins past the old one's
    /// revision and `at_least`; see [`recovery`].
    pub fn reset(path: &Path, at_least: i64) -> Result<Reset> {
        recovery::reset(path, at_least)
    }

    /// Writes a consistent copy of the store at `path`, which a server may be using, to `copy`.
    pub fn copy(path: &Path, copy: &Path) -> Result<()> {
        recovery::copy(path, copy)
    }

    /// How many rows the log holds (live pairs, history and tombstones), to check that
    /// compaction keeps it bounded.
    #[doc(hidden)]
    pub async fn row_count(&self) -> Result<i64> {
        self.reads.run(|conn| reads::row_count(conn)).await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create(&self, key: &str, value: Bytes) -> Result<i64> {
        let op = Op::Create { key: key.to_owned(), value };
        Ok(self.writer.submit(op).await?.revision)
    }

    async fn update(&self, key: &str, value: Bytes, expected_mod_revision: i64) -> Result<i64> {
        let op = Op::Update { key: key.to_owned(), value, expected: expected_mod_revision };
        Ok(self.writer.submit(op).await?.revision)
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<i64>) -> Result<(i64, KeyValue)> {
        let op = Op::Delete { key: key.to_owned(), expected: expected_mod_revision };
        let outcome = self.writer.submit(op).await?;
        let deleted = outcome
            .prev
            .ok_or_else(|| Error::Backend("the store writer did not return the deleted pair".to_owned()))?;
        Ok((outcome.revision, deleted))
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        if let Some(row) = self.recent.newest(key) {
            return Ok((!row.deleted).then(|| row.kv()));
        }
        self.reads.run_here(|conn| reads::get(conn, key))
    }

    async fn range(&self, request: RangeRequest) -> Result<RangeResult> {
        let current = self.hub.revision();
        self.reads.run(move |conn| reads::range(conn, &request, current)).await
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream> {
        let (registration, stream) = self.hub.register(prefix, from_revision);
        if from_revision == 0 {
            return Ok(stream);
        }
        let prefix = prefix.to_owned();
        let sender = registration.sender;
        let history = self
            .reads
            .run(move |conn| {
                reads::history(conn, &prefix, from_revision, registration.revision, |event| {
                    sender.send(Ok(WatchItem::Event(event))).is_ok()
                })
            })
            .await;
        match history {
            Ok(()) => {
                self.hub.go_live(registration.id);
                Ok(stream)
            }
            Err(e) => {
                self.hub.remove(registration.id);
                Err(e)
            }
        }
    }

    async fn current_revision(&self) -> Result<i64> {
        Ok(self.hub.revision())
    }

    async fn compacted_revision(&self) -> Result<i64> {
        self.reads.run(|conn| reads::compacted(conn)).await
    }

    async fn request_progress(&self) -> Result<()> {
        self.hub.request_progress();
        Ok(())
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        // The writer compacts in bounded steps, so writes can go between them.
        while self.writer.submit(Op::Compact { target: revision }).await?.revision < revision {}
        Ok(())
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Backend(format!("SQLite: {e}"))
    }
}
