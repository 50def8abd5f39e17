//! The storage interface every skiff API server runs on, with etcd's semantics.
//!
//! Keys are strings laid out under prefixes (`/registry/core/pods/default/web-0`). Every write
//! takes the next value of one cluster-wide revision, which only grows. An object's
//! `mod_revision` is the revision of its last write: updates and deletes can be guarded by it,
//! which is how the API server turns a stale `resourceVersion` into a 409 Conflict.
//!
//! ```no_run
//! # async fn demo(store: &dyn store::Store) -> Result<(), store::Error> {
//! let rev = store.create("/registry/core/configmaps/default/a", b"{}".to_vec().into()).await?;
//! let kv = store.get("/registry/core/configmaps/default/a").await?.unwrap();
//! assert_eq!(kv.mod_revision, rev);
//! store.update(&kv.key, b"{\"x\":1}".to_vec().into(), kv.mod_revision).await?;
//! # Ok(()) }
//! ```

mod error;
mod etcd;
mod snapshot;
mod sqlite;
pub mod testsuite;
mod types;

pub use error::Error;
pub use etcd::{EtcdOptions, EtcdStore};
pub use snapshot::{Restored, Snapshot};
pub use sqlite::{Reset, SqliteOptions, SqliteStore};
pub use types::{Event, EventKind, KeyValue, RangeRequest, RangeResult, WatchItem, WatchStream};

use async_trait::async_trait;
use bytes::Bytes;

pub type Result<T> = std::result::Result<T, Error>;

/// A key-value store with etcd's semantics. Implemented by the embedded SQLite backend and by
/// etcd itself.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates `key` if it is absent. Returns the revision of the write.
    /// `Error::AlreadyExists` if the key exists.
    async fn create(&self, key: &str, value: Bytes) -> Result<i64>;

    /// Replaces the value of `key` if its current `mod_revision` is `expected_mod_revision`.
    /// Returns the revision of the write. `Error::NotFound` if the key is absent,
    /// `Error::Conflict` (carrying the current pair) if it was changed since.
    async fn update(&self, key: &str, value: Bytes, expected_mod_revision: i64) -> Result<i64>;

    /// Deletes `key`, guarded by `expected_mod_revision` when given. Returns the revision of the
    /// delete and the pair as it was just before. `Error::NotFound` / `Error::Conflict` as above.
    async fn delete(&self, key: &str, expected_mod_revision: Option<i64>) -> Result<(i64, KeyValue)>;

    /// The current pair of `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// The pairs under a prefix, in key order, as they were at a revision.
    /// `Error::Compacted` if that revision was compacted away,
    /// `Error::FutureRevision` if it is newer than the current revision.
    async fn range(&self, request: RangeRequest) -> Result<RangeResult>;

    /// Every event on keys under `prefix` with a revision `>= from_revision`, in revision order,
    /// followed by every later event as it is committed. `from_revision == 0` means "from now on".
    /// `Error::Compacted` if `from_revision` is at or below the compacted revision.
    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream>;

    /// The newest revision (the revision of the last write, or of the store's creation).
    async fn current_revision(&self) -> Result<i64>;

    /// The newest compacted revision: history at or below it is gone.
    async fn compacted_revision(&self) -> Result<i64>;

    /// Asks every open watch to deliver a `WatchItem::Progress` with the revision it is caught
    /// up to, after every event at or below that revision (etcd's progress request).
    async fn request_progress(&self) -> Result<()>;

    /// Drops the history at or below `revision`, keeping each key's value as of `revision`.
    async fn compact(&self, revision: i64) -> Result<()>;
}
