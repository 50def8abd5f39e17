//! One watch per kind, shared by every controller that reads that kind: a store to read
//! from, an index of objects by the controller that owns them (and of orphans by
//! namespace), and, for each subscriber, a stream of every object that changed, was deleted
//! or was listed again. kube's shared streams leave deletions out; controllers need them
//! (a deleted pod is a replica to replace).

use futures::channel::mpsc::{UnboundedSender, unbounded};
use futures::{Stream, StreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What subscribers receive: the object (the store's copy, shared by every subscriber), and
/// whether this was its deletion.
#[derive(Clone)]
pub struct Change<K> {
    pub object: Arc<K>,
    pub deleted: bool,
}

type Key = (String, String);

/// Objects by the uid of their controller (the owner reference with `controller: true`),
/// and objects without one by namespace; the objects themselves, shared with the store, so
/// that reading an owner's children takes no lookups.
struct Index<K> {
    owner_of: HashMap<Key, Option<String>>,
    owned: HashMap<String, BTreeMap<Key, Arc<K>>>,
    orphans: HashMap<String, BTreeMap<String, Arc<K>>>,
}

impl<K> Default for Index<K> {
    fn default() -> Self {
        Index { owner_of: HashMap::new(), owned: HashMap::new(), orphans: HashMap::new() }
    }
}

impl<K: Resource> Index<K> {
    fn of(objects: Vec<Arc<K>>) -> Self {
        let mut index = Index::default();
        for object in objects {
            index.insert(object);
        }
        index
    }

    fn insert(&mut self, object: Arc<K>) {
        let key = key_of(object.as_ref());
        self.remove(&key);
        let owner = controller_uid(object.as_ref());
        match &owner {
            Some(uid) => self.owned.entry(uid.clone()).or_default().insert(key.clone(), object),
            None => self.orphans.entry(key.0.clone()).or_default().insert(key.1.clone(), object),
        };
        self.owner_of.insert(key, owner);
    }

    fn remove(&mut self, key: &Key) {
        match self.owner_of.remove(key) {
            Some(Some(uid)) => {
                if let Some(objects) = self.owned.get_mut(&uid) {
                    objects.remove(key);
                    if objects.is_empty() {
                        self.owned.remove(&uid);
                    }
                }
            }
            Some(None) => {
                if let Some(objects) = self.orphans.get_mut(&key.0) {
                    objects.remove(&key.1);
                }
            }
            None => {}
        }
    }
}

fn key_of<K: Resource>(object: &K) -> Key {
    let meta = object.meta();
    (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default())
}

/// The uid of the object's controller, if it has one.
pub fn controller_uid<K: Resource>(object: &K) -> Option<String> {
    let refs = object.meta().owner_references.as_ref()?;
    refs.iter().find(|r| r.controller == Some(true)).map(|r| r.uid.clone())
}

/// Which changes a subscriber hears of.
type Interest<K> = Box<dyn Fn(&K) -> bool + Send + Sync>;

struct Shared<K: Resource<DynamicType = ()> + Clone + 'static> {
    writer: Writer<K>,
    subscribers: Vec<(UnboundedSender<Change<K>>, Interest<K>)>,
}

pub struct Informer<K: Resource<DynamicType = ()> + Clone + 'static> {
    store: Store<K>,
    /// Whether the first list has arrived. Not kube's `Store::wait_until_ready`: its
    /// one-shot channel wakes only the last of several concurrent waiters.
    listed: watch::Receiver<bool>,
    index: Arc<RwLock<Index<K>>>,
    shared: Arc<Mutex<Shared<K>>>,
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// Starts watching `api`; the watch runs in `tasks`, and stops with them.
    pub fn start(api: Api<K>, config: watcher::Config, tasks: &mut JoinSet<()>) -> Arc<Informer<K>> {
        let writer: Writer<K> = Writer::default();
        let store = writer.as_reader();
        let shared = Arc::new(Mutex::new(Shared { writer, subscribers: Vec::new() }));
        let (listed, listed_rx) = watch::channel(false);
        let informer = Arc::new(Informer {
            store: store.clone(),
            listed: listed_rx,
            index: Arc::default(),
            shared: shared.clone(),
        });
        let index = informer.index.clone();
        tasks.spawn(async move {
            let mut events = watcher::watcher(api, config).default_backoff().boxed();
            while let Some(event) = events.next().await {
                let event = match event {
                    Ok(event) => event,
                    Err(e) => {
                        tracing::debug!(kind = K::kind(&()).as_ref(), error = %e, "watch interrupted; resuming");
                        continue;
                    }
                };
                let mut shared = shared.lock().unwrap();
                let before = matches!(event, Event::InitDone).then(|| store.state());
                shared.writer.apply_watcher_event(&event);
                match &event {
                    Event::Apply(object) => {
                        // The store's own copy, shared rather than cloned.
                        let stored =
                            store.get(&ObjectRef::from_obj(object)).unwrap_or_else(|| Arc::new(object.clone()));
                        index.write().unwrap().insert(stored.clone());
                        shared.send(&stored, false);
                    }
                    Event::Delete(object) => {
                        index.write().unwrap().remove(&key_of(object));
                        shared.send(&Arc::new(object.clone()), true);
                    }
                    Event::Init | Event::InitApply(_) => {}
                    Event::InitDone => {
                        let listed_now = store.state();
                        let fresh = Index::of(listed_now.clone());
                        // Objects that went while the watch was down are gone from the new
                        // list: subscribers hear of them as deletions.
                        let vanished = before
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|o| !fresh.owner_of.contains_key(&key_of(o.as_ref())));
                        for object in vanished {
                            shared.send(&object, true);
                        }
                        *index.write().unwrap() = fresh;
                        for object in listed_now {
                            shared.send(&object, false);
                        }
                        listed.send_replace(true);
                    }
                }
            }
        });
        informer
    }

    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Every change from now on, after the objects already known.
    pub fn subscribe(&self) -> impl Stream<Item = Change<K>> + Send + 'static {
        self.subscribe_to(|_| true)
    }

    /// The changes to objects `interest` picks, from now on, after the objects already known
    /// that it picks. The others are never queued for this subscriber, so a subscriber that
    /// cares about few objects holds no copies of the rest while it catches up.
    pub fn subscribe_to(
        &self,
        interest: impl Fn(&K) -> bool + Send + Sync + 'static,
    ) -> impl Stream<Item = Change<K>> + Send + 'static {
        let (tx, rx) = unbounded();
        let mut shared = self.shared.lock().unwrap();
        for object in self.store.state().into_iter().filter(|o| interest(o)) {
            let _ = tx.unbounded_send(Change { object, deleted: false });
        }
        shared.subscribers.push((tx, Box::new(interest)));
        rx
    }

    /// Whether the first list has arrived.
    pub fn is_ready(&self) -> bool {
        *self.listed.borrow()
    }

    /// Waits until the first list has arrived.
    pub async fn ready(&self) {
        // The sender lives as long as the watch task, which lives as long as the controllers.
        let _ = self.listed.clone().wait_for(|listed| *listed).await;
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        let mut key = ObjectRef::new(name);
        if !namespace.is_empty() {
            key = key.within(namespace);
        }
        self.store.get(&key)
    }

    /// The objects the owner with this uid controls.
    pub fn owned_by(&self, uid: &str) -> Vec<Arc<K>> {
        let index = self.index.read().unwrap();
        index.owned.get(uid).into_iter().flat_map(|objects| objects.values().cloned()).collect()
    }

    /// The objects in `namespace` that no controller owns.
    pub fn orphans_in(&self, namespace: &str) -> Vec<Arc<K>> {
        let index = self.index.read().unwrap();
        index.orphans.get(namespace).into_iter().flat_map(|objects| objects.values().cloned()).collect()
    }
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Shared<K> {
    fn send(&mut self, object: &Arc<K>, deleted: bool) {
        self.subscribers.retain(|(subscriber, interest)| {
            !interest(object) || subscriber.unbounded_send(Change { object: object.clone(), deleted }).is_ok()
        });
    }
}
