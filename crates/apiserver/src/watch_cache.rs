//! One store watch per resource, shared by every client watching it: a thousand
//! `kubectl get -w` cost one store watch. The cache keeps a window of recent events so that
//! a client resuming from a recent resourceVersion is served from memory; older ones go to
//! the store's own history.

use crate::{objects, stored_json};
use bytes::Bytes;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use store::{EventKind, KeyValue, Store, WatchItem};
use tokio::sync::broadcast;

/// How many recent events each resource's cache keeps, and how much memory they may take.
const WINDOW: usize = 8192;
const WINDOW_BYTES: usize = 32 * 1024 * 1024;
/// A decoded JSON value takes several times its text's size (measured about 7x for nodes and
/// leases under `skiff sim`); an event holds its JSON and one or two decoded objects.
const VALUE_SIZE_FACTOR: usize = 8;
/// How many events a slow client may fall behind before its watch is ended (it resumes from
/// the window, in memory). Each resource's ring of this many slots is allocated whole, about
/// 40 bytes a slot, for every resource: 1024 keeps the 44 rings under 2 MB. kube-apiserver
/// gives its watchers 10 to 1000 events of slack.
const FANOUT_CAPACITY: usize = 1024;

/// One change, shared by every watcher. Its JSON is made once; it is decoded only if a
/// watcher needs the object itself (to match a selector, print a table or convert it), once
/// for all of them.
pub struct CachedEvent {
    pub kind: EventKind,
    pub key: String,
    pub revision: i64,
    /// The object after the change (for a delete: as it was), as served.
    pub json: Bytes,
    /// The stored object before the change, to tell when a change moves it in or out of a
    /// selection.
    prev_stored: Option<KeyValue>,
    object: OnceLock<Value>,
    prev: OnceLock<Option<Value>>,
    /// What selections read, by the pointers they read: see [`CachedEvent::picked`].
    picked: Mutex<Vec<PickedFor>>,
}

/// The members at some pointers, or `None` if the text would not cut.
type PickedFor = (Vec<String>, Option<Arc<Picked>>);

/// The members a selection reads, of the object and of the one before the change.
pub struct Picked {
    pub object: Value,
    pub prev: Option<Value>,
}

impl CachedEvent {
    /// What the event costs in memory, roughly, counting its objects as decoded.
    fn footprint(&self) -> usize {
        let decoded = if self.prev_stored.is_some() { 2 } else { 1 };
        self.json.len() * (1 + decoded * VALUE_SIZE_FACTOR)
    }

    pub fn from_store(event: &store::Event) -> Option<CachedEvent> {
        let object = OnceLock::new();
        let json = match stored_json::with_resource_version(&event.kv.value, event.kv.mod_revision) {
            Some(json) => json,
            None => {
                let decoded = objects::parse_stored(&event.kv).ok()?;
                let json = serde_json::to_vec(&decoded).ok()?;
                let _ = object.set(decoded);
                json
            }
        };
        Some(CachedEvent {
            kind: event.kind,
            key: event.kv.key.clone(),
            revision: event.revision(),
            json: Bytes::from(json),
            prev_stored: event.prev.clone(),
            object,
            prev: OnceLock::new(),
            picked: Mutex::default(),
        })
    }

    pub fn object(&self) -> &Value {
        self.object.get_or_init(|| serde_json::from_slice(&self.json).unwrap_or(Value::Null))
    }

    pub fn had_prev(&self) -> bool {
        self.prev_stored.is_some()
    }

    pub fn prev(&self) -> Option<&Value> {
        self.prev.get_or_init(|| self.prev_stored.as_ref().and_then(|p| objects::parse_stored(p).ok())).as_ref()
    }

    /// The members at `pointers` of the object and of the one before, cut from their text,
    /// once for every watcher whose selection reads them: a thousand kubelets watch pods by
    /// `spec.nodeName`, and none needs the pod decoded to know whether it is theirs. `None`
    /// when the text will not cut; the caller decodes the objects instead.
    pub fn picked(&self, pointers: &[String]) -> Option<Arc<Picked>> {
        let mut picked = self.picked.lock().unwrap();
        if let Some((_, found)) = picked.iter().find(|(read, _)| read == pointers) {
            return found.clone();
        }
        let cut = || {
            let object = stored_json::pick(&self.json, pointers)?;
            let prev = match &self.prev_stored {
                Some(kv) => Some(stored_json::pick(&kv.value, pointers)?),
                None => None,
            };
            Some(Arc::new(Picked { object, prev }))
        };
        let made = cut();
        picked.push((pointers.to_vec(), made.clone()));
        made
    }
}

#[derive(Clone)]
pub enum CacheItem {
    Event(Arc<CachedEvent>),
    /// Every event up to this revision has been delivered.
    Progress(i64),
}

struct Window {
    events: VecDeque<Arc<CachedEvent>>,
    /// The encoded size of the events held.
    bytes: usize,
    /// The window holds every event after this revision.
    start: i64,
}

pub struct WatchCache {
    window: Mutex<Window>,
    tx: broadcast::Sender<CacheItem>,
}

/// What a client subscription starts with: the buffered events it missed, then the live feed.
pub struct Subscription {
    pub backlog: Vec<Arc<CachedEvent>>,
    pub live: broadcast::Receiver<CacheItem>,
}

impl WatchCache {
    /// Events after `after` if the window still covers them; `None` if the client must be
    /// served from the store's history instead.
    pub fn subscribe(&self, after: i64) -> Option<Subscription> {
        let window = self.window.lock().unwrap();
        if after < window.start {
            return None;
        }
        let backlog = window.events.iter().filter(|e| e.revision > after).cloned().collect();
        Some(Subscription { backlog, live: self.tx.subscribe() })
    }

    fn push(&self, event: CachedEvent) {
        let event = Arc::new(event);
        let mut window = self.window.lock().unwrap();
        window.bytes += event.footprint();
        window.events.push_back(event.clone());
        while window.events.len() > WINDOW || (window.bytes > WINDOW_BYTES && window.events.len() > 1) {
            let Some(old) = window.events.pop_front() else { break };
            window.bytes -= old.footprint();
            window.start = old.revision;
        }
        let _ = self.tx.send(CacheItem::Event(event));
    }

    fn progress(&self, revision: i64) {
        let mut window = self.window.lock().unwrap();
        if window.events.is_empty() {
            window.start = window.start.max(revision);
        }
        let _ = self.tx.send(CacheItem::Progress(revision));
    }
}

/// The caches, one per storage prefix, made on first use.
#[derive(Default)]
pub struct WatchCaches {
    caches: Arc<Mutex<HashMap<String, Arc<WatchCache>>>>,
}

impl WatchCaches {
    pub async fn get(&self, store: &Arc<dyn Store>, prefix: &str) -> store::Result<Arc<WatchCache>> {
        if let Some(c) = self.caches.lock().unwrap().get(prefix) {
            return Ok(c.clone());
        }
        let start = store.current_revision().await?;
        let mut stream = store.watch(prefix, start + 1).await?;
        let (tx, _) = broadcast::channel(FANOUT_CAPACITY);
        let cache =
            Arc::new(WatchCache { window: Mutex::new(Window { events: VecDeque::new(), bytes: 0, start }), tx });
        {
            let mut caches = self.caches.lock().unwrap();
            if let Some(existing) = caches.get(prefix) {
                return Ok(existing.clone());
            }
            caches.insert(prefix.to_string(), cache.clone());
        }
        let feeding = cache.clone();
        let caches = self.caches.clone();
        let prefix = prefix.to_string();
        tokio::spawn(async move {
            while let Some(item) = stream.recv().await {
                match item {
                    Ok(WatchItem::Event(e)) => match CachedEvent::from_store(&e) {
                        Some(ce) => feeding.push(ce),
                        None => tracing::error!(key = %e.kv.key, "undecodable object in the store; skipped in watches"),
                    },
                    Ok(WatchItem::Progress(rev)) => feeding.progress(rev),
                    Err(e) => {
                        tracing::error!(error = %e, "store watch failed");
                        break;
                    }
                }
            }
            // Forget this cache (ending its watchers' streams), so the next watch starts anew.
            caches.lock().unwrap().remove(&prefix);
        });
        Ok(cache)
    }
}
