//! The objects under a store prefix, held in memory and kept current by the store's watch,
//! for admission plugins that consult them on every write: the ResourceQuotas and the
//! LimitRanges of a namespace, looked up for each create, most often to find none.
//!
//! A read first applies the events waiting in the watch, so it is as fresh as the watch. The
//! embedded store publishes a write's event before acknowledging the write, so there a read
//! sees every write acknowledged before it began.

use std::collections::BTreeMap;
use std::sync::Arc;
use store::{EventKind, KeyValue, RangeRequest, Store, WatchItem, WatchStream};
use tokio::sync::mpsc::error::TryRecvError;

pub struct Mirror {
    store: Arc<dyn Store>,
    prefix: String,
    /// `None` until the first read, and again after the watch ended.
    state: tokio::sync::Mutex<Option<State>>,
}

struct State {
    objects: BTreeMap<String, KeyValue>,
    events: WatchStream,
}

impl State {
    /// Applies the events waiting; false if the watch ended, and the objects must be listed
    /// again.
    fn catch_up(&mut self) -> bool {
        loop {
            match self.events.try_recv() {
                Ok(Ok(WatchItem::Event(e))) => match e.kind {
                    EventKind::Put => {
                        self.objects.insert(e.kv.key.clone(), e.kv);
                    }
                    EventKind::Delete => {
                        self.objects.remove(&e.kv.key);
                    }
                },
                Ok(Ok(WatchItem::Progress(_))) => {}
                Err(TryRecvError::Empty) => return true,
                Ok(Err(_)) | Err(TryRecvError::Disconnected) => return false,
            }
        }
    }
}

impl Mirror {
    pub fn new(store: Arc<dyn Store>, prefix: String) -> Mirror {
        Mirror { store, prefix, state: Default::default() }
    }

    /// The objects whose keys start with `within` (a prefix inside the mirror's), in key order.
    pub async fn list(&self, within: &str) -> store::Result<Vec<KeyValue>> {
        let mut state = self.state.lock().await;
        if !state.as_mut().is_some_and(State::catch_up) {
            *state = Some(self.load().await?);
        }
        let objects = &state.as_ref().expect("loaded above").objects;
        let under = objects.range(within.to_string()..).take_while(|(key, _)| key.starts_with(within));
        Ok(under.map(|(_, kv)| kv.clone()).collect())
    }

    async fn load(&self) -> store::Result<State> {
        let listed = self.store.range(RangeRequest { prefix: self.prefix.clone(), ..Default::default() }).await?;
        let events = self.store.watch(&self.prefix, listed.revision + 1).await?;
        Ok(State { objects: listed.kvs.into_iter().map(|kv| (kv.key.clone(), kv)).collect(), events })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::{SqliteOptions, SqliteStore};

    #[tokio::test]
    async fn sees_every_acknowledged_write() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = SqliteStore::open(&dir.path().join("db"), SqliteOptions::default()).unwrap();
        store.create("/r/q/a/one", "1".into()).await.unwrap();
        let mirror = Mirror::new(store.clone(), "/r/q/".into());
        let keys = |kvs: Vec<KeyValue>| kvs.into_iter().map(|kv| kv.key).collect::<Vec<_>>();
        assert_eq!(keys(mirror.list("/r/q/a/").await.unwrap()), ["/r/q/a/one"]);

        let rev = store.create("/r/q/a/two", "2".into()).await.unwrap();
        store.create("/r/q/b/three", "3".into()).await.unwrap();
        store.create("/r/other/a/four", "4".into()).await.unwrap();
        store.update("/r/q/a/two", "2b".into(), rev).await.unwrap();
        store.delete("/r/q/a/one", None).await.unwrap();
        let listed = mirror.list("/r/q/a/").await.unwrap();
        assert_eq!(keys(listed.clone()), ["/r/q/a/two"]);
        assert_eq!(&listed[0].value[..], b"2b");
        assert_eq!(keys(mirror.list("/r/q/").await.unwrap()), ["/r/q/a/two", "/r/q/b/three"]);
    }
}
