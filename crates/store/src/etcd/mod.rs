//! The etcd backend: the store is etcd itself, laid out as kube-apiserver lays it out, so that
//! several API servers can share one etcd cluster.
//!
//! - Keys live under a prefix, as with kube-apiserver's `--etcd-prefix` ([`keys`]).
//! - Revisions are etcd's own: a `resourceVersion` is an etcd mod revision.
//! - Guarded writes are etcd transactions ([`writes`]); reads are etcd ranges ([`reads`]).
//! - Watches are etcd watches, resumed where they left off when their stream fails ([`watch`]);
//!   their progress notices are passed on only when they can be believed ([`position`]).
//! - The compacted revision is found by probing reads ([`history`]); compaction is coordinated
//!   between servers as kube-apiserver does it ([`compactor`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), store::Error> {
//! use store::{EtcdOptions, EtcdStore, Store};
//! let options = EtcdOptions { endpoints: vec!["http://127.0.0.1:2379".to_owned()], ..Default::default() };
//! let store = EtcdStore::connect(options).await?;
//! store.create("/registry/core/namespaces/default", b"{}".to_vec().into()).await?;
//! # Ok(()) }
//! ```

mod compactor;
mod connect;
mod errors;
mod history;
mod keys;
mod members;
mod position;
mod reads;
mod watch;
mod writes;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::task::JoinHandle;
use tracing::info;

use crate::{KeyValue, RangeRequest, RangeResult, Result, Store, WatchStream};

use history::History;
use keys::Keys;
use members::Members;

/// Where etcd is and how to reach it.
#[derive(Clone, Debug)]
pub struct EtcdOptions {
    /// Client URLs of the etcd members, such as `https://10.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// The CA that signed the members' certificates (for `https` endpoints).
    pub ca_file: Option<PathBuf>,
    /// This client's certificate and key, for members started with `--client-cert-auth`.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Where this server's keys live in etcd, as kube-apiserver's `--etcd-prefix`.
    pub prefix: String,
    /// How often servers sharing the etcd compact its history, each keeping at least this much;
    /// zero turns compaction off.
    pub compaction_interval: Duration,
}

impl Default for EtcdOptions {
    /// kube-apiserver's defaults.
    fn default() -> Self {
        EtcdOptions {
            endpoints: vec!["http://127.0.0.1:2379".to_owned()],
            ca_file: None,
            cert_file: None,
            key_file: None,
            prefix: "/registry".to_owned(),
            compaction_interval: Duration::from_secs(5 * 60),
        }
    }
}

/// A [`Store`] kept in etcd.
pub struct EtcdStore {
    members: Arc<Members>,
    keys: Keys,
    history: Arc<History>,
    /// Changed to ask every watch for a progress notice.
    progress_requests: tokio::sync::watch::Sender<()>,
    compactor: Option<JoinHandle<()>>,
}

impl EtcdStore {
    /// Connects to etcd and reads from it once, so that an unreachable etcd is an error here.
    /// Starts background compaction. Dropping the store stops it, and ends the store's watches.
    pub async fn connect(options: EtcdOptions) -> Result<Arc<Self>> {
        let keys = Keys::new(&options.prefix)?;
        let members = Arc::new(connect::members(&options).await?);
        let probe = keys.map("/")?.etcd().to_vec();
        let history = Arc::new(History::new(Arc::clone(&members), probe));
        let revision = connect::check(&members, &history, &options).await?;
        let compactor = compactor::spawn(Arc::clone(&members), options.compaction_interval);
        info!(endpoints = ?options.endpoints, prefix = %options.prefix, revision, "connected to etcd");
        let (progress_requests, _) = tokio::sync::watch::channel(());
        Ok(Arc::new(EtcdStore { members, keys, history, progress_requests, compactor }))
    }
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        if let Some(compactor) = &self.compactor {
            compactor.abort();
        }
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn create(&self, key: &str, value: Bytes) -> Result<i64> {
        writes::create(&self.members, &self.keys.map(key)?, value).await
    }

    async fn update(&self, key: &str, value: Bytes, expected_mod_revision: i64) -> Result<i64> {
        writes::update(&self.members, &self.keys.map(key)?, value, expected_mod_revision).await
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<i64>) -> Result<(i64, KeyValue)> {
        writes::delete(&self.members, &self.keys.map(key)?, expected_mod_revision).await
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        reads::get(&self.members, &self.keys.map(key)?).await
    }

    async fn range(&self, request: RangeRequest) -> Result<RangeResult> {
        reads::range(self, request).await
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream> {
        let watcher = watch::Watcher {
            members: Arc::clone(&self.members),
            history: Arc::clone(&self.history),
            progress_requests: self.progress_requests.subscribe(),
        };
        watch::start(watcher, self.keys.map(prefix)?, from_revision).await
    }

    async fn current_revision(&self) -> Result<i64> {
        self.history.current().await
    }

    async fn compacted_revision(&self) -> Result<i64> {
        self.history.compacted().await
    }

    async fn request_progress(&self) -> Result<()> {
        self.progress_requests.send_replace(());
        Ok(())
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        match self.members.compact(revision).await {
            Ok(_) => {
                self.history.saw_compacted(revision);
                Ok(())
            }
            Err(e) => Err(self.revision_error(e, revision).await),
        }
    }
}
