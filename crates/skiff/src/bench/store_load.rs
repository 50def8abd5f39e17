//! The loads `skiff bench store` puts on a store: creates, a watch following creates, and
//! updates of the same keys over and over. Each runs on a [`Store`] or on raw etcd.

use super::drive::concurrently;
use super::figures::Samples;
use anyhow::Context;
use bytes::Bytes;
use etcd_client::{Compare, CompareOp, Txn, TxnOp, WatchOptions};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use store::{Store, WatchItem};
use tokio::sync::mpsc;

/// How long the last event of a watch run may take to arrive.
const WATCH_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a load goes.
#[derive(Clone)]
pub enum Load {
    Store(Arc<dyn Store>),
    Raw(RawEtcd),
}

/// The etcd client on its own, making the requests the etcd backend makes.
#[derive(Clone)]
pub struct RawEtcd(etcd_client::Client);

impl RawEtcd {
    pub async fn connect(url: &str) -> anyhow::Result<RawEtcd> {
        Ok(RawEtcd(etcd_client::Client::connect([url], None).await?))
    }
}

impl Load {
    /// Creates `key`, as the etcd backend does: a transaction that puts it if it is absent.
    pub async fn create(self, key: String, value: Bytes) -> anyhow::Result<()> {
        match self {
            Load::Store(store) => {
                store.create(&key, value).await?;
            }
            Load::Raw(RawEtcd(client)) => {
                let absent = Compare::create_revision(key.as_str(), CompareOp::Equal, 0);
                let txn = Txn::new().when([absent]).and_then([TxnOp::put(key.as_str(), value.to_vec(), None)]);
                let response = client.kv_client().txn(txn).await?;
                anyhow::ensure!(response.succeeded(), "{key} existed already");
            }
        }
        Ok(())
    }

    /// Creates `writes` keys under `prefix` from `writers` writers, with a watch on the prefix;
    /// returns the time from each create's acknowledgement to the watch's event for it (zero if
    /// the event came first).
    pub async fn watch_delivery(
        &self,
        prefix: &str,
        writers: usize,
        writes: usize,
        value: Bytes,
    ) -> anyhow::Result<Samples> {
        let mut keys = self.watch_keys(prefix).await?;
        let index = {
            let prefix = prefix.to_owned();
            move |key: &str| key.strip_prefix(&prefix).and_then(|i| i.parse::<usize>().ok())
        };
        let arrivals = tokio::spawn(async move {
            let mut arrivals = vec![None; writes];
            let mut seen = 0;
            while seen < writes {
                let key = keys.recv().await.context("the watch ended")?;
                if let Some(slot) = index(&key).and_then(|i| arrivals.get_mut(i)) {
                    *slot = Some(Instant::now());
                    seen += 1;
                }
            }
            Ok::<_, anyhow::Error>(arrivals)
        });
        let acks: Arc<Vec<OnceLock<Instant>>> = Arc::new((0..writes).map(|_| OnceLock::new()).collect());
        let (load, prefix, written) = (self.clone(), prefix.to_owned(), acks.clone());
        concurrently(writers, writes, move |i| {
            let (create, written) = (load.clone().create(format!("{prefix}{i}"), value.clone()), written.clone());
            async move {
                create.await?;
                let _ = written[i].set(Instant::now());
                Ok(())
            }
        })
        .await?;
        let arrivals =
            tokio::time::timeout(WATCH_TIMEOUT, arrivals).await.context("events missing from the watch")???;
        let latencies = arrivals
            .iter()
            .zip(acks.iter())
            .filter_map(|(arrival, ack)| Some(arrival.as_ref()?.saturating_duration_since(*ack.get()?)))
            .collect();
        Ok(Samples::new(latencies))
    }

    /// The keys of the events under `prefix` from now on, once the watch is in place.
    async fn watch_keys(&self, prefix: &str) -> anyhow::Result<mpsc::UnboundedReceiver<String>> {
        let (keys, receiver) = mpsc::unbounded_channel();
        match self {
            Load::Store(store) => {
                let mut stream = store.watch(prefix, 0).await?;
                tokio::spawn(async move {
                    while let Some(Ok(item)) = stream.recv().await {
                        if let WatchItem::Event(event) = item
                            && keys.send(event.kv.key).is_err()
                        {
                            return;
                        }
                    }
                });
            }
            Load::Raw(RawEtcd(client)) => {
                let options = WatchOptions::new().with_prefix();
                let mut stream = client.watch_client().watch(prefix, Some(options)).await?;
                // The first message says the watch is in place.
                stream.message().await?.context("etcd closed the watch")?;
                tokio::spawn(async move {
                    while let Ok(Some(response)) = stream.message().await {
                        for kv in response.events().iter().filter_map(|event| event.kv()) {
                            if keys.send(String::from_utf8_lossy(kv.key()).into_owned()).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        }
        Ok(receiver)
    }
}

/// What updating the same keys over and over does to the disk: creates `keys` keys, then makes
/// `updates` updates spread over them from `writers` writers. Returns the disk space under
/// `files` before and after the updates, and how long they took.
pub async fn growth(
    store: Arc<dyn Store>,
    keys: usize,
    updates: usize,
    writers: usize,
    value: Bytes,
    files: &Path,
) -> anyhow::Result<(u64, u64, Duration)> {
    let key = |i: usize| format!("/registry/bench/growth/{i}");
    let revisions: Arc<Vec<AtomicI64>> = Arc::new((0..keys).map(|_| AtomicI64::new(0)).collect());
    let (writer, seen, first) = (store.clone(), revisions.clone(), value.clone());
    concurrently(writers, keys, move |i| {
        let (writer, seen, value) = (writer.clone(), seen.clone(), first.clone());
        async move {
            seen[i].store(writer.create(&key(i), value).await?, Ordering::Relaxed);
            Ok(())
        }
    })
    .await?;
    let before = disk_usage(files)?;
    let (elapsed, _) = concurrently(writers, updates, move |i| {
        let (store, revisions, value) = (store.clone(), revisions.clone(), value.clone());
        async move {
            let slot = &revisions[i % keys];
            loop {
                // Two writers can meet on one key; the later one retries on the newer revision.
                match store.update(&key(i % keys), value.clone(), slot.load(Ordering::Relaxed)).await {
                    Ok(revision) => return Ok(slot.store(revision, Ordering::Relaxed)),
                    Err(store::Error::Conflict { current }) => slot.store(current.mod_revision, Ordering::Relaxed),
                    Err(e) => return Err(e.into()),
                }
            }
        }
    })
    .await?;
    Ok((before, disk_usage(files)?, elapsed))
}

/// The disk space the files under `folder` take (their blocks, not their lengths).
fn disk_usage(folder: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(folder).with_context(|| format!("reading {}", folder.display()))? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        total += if metadata.is_dir() {
            disk_usage(&entry.path())?
        } else {
            std::os::unix::fs::MetadataExt::blocks(&metadata) * 512
        };
    }
    Ok(total)
}
