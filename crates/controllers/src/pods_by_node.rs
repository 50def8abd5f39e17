//! Pods by the node they are bound to, kept from the pods informer's changes, so that the
//! controllers that act on a node's pods (node lifecycle, taint eviction) read them without
//! scanning every pod in the cluster.

use crate::informer::Informer;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use tokio::task::JoinSet;

type Key = (String, String);

#[derive(Default)]
struct Index {
    node_of: HashMap<Key, String>,
    on: HashMap<String, BTreeSet<Key>>,
}

impl Index {
    fn remove(&mut self, key: &Key) {
        if let Some(node) = self.node_of.remove(key)
            && let Some(keys) = self.on.get_mut(&node)
        {
            keys.remove(key);
            if keys.is_empty() {
                self.on.remove(&node);
            }
        }
    }

    fn insert(&mut self, key: Key, node: &str) {
        self.remove(&key);
        if !node.is_empty() {
            self.on.entry(node.to_string()).or_default().insert(key.clone());
            self.node_of.insert(key, node.to_string());
        }
    }
}

pub struct PodsByNode {
    pods: Arc<Informer<Pod>>,
    index: RwLock<Index>,
}

impl PodsByNode {
    /// Follows the pods informer's changes in `tasks`.
    pub fn start(pods: Arc<Informer<Pod>>, tasks: &mut JoinSet<()>) -> Arc<PodsByNode> {
        let index = Arc::new(PodsByNode { pods: pods.clone(), index: RwLock::default() });
        let changes = pods.subscribe();
        let writer = index.clone();
        tasks.spawn(changes.for_each(move |change| {
            let meta = &change.object.metadata;
            let key = (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default());
            let mut index = writer.index.write().unwrap();
            if change.deleted {
                index.remove(&key);
            } else {
                index.insert(key, crate::pods::node_name(&change.object));
            }
            std::future::ready(())
        }));
        index
    }

    /// The pods bound to `node`, as the informer has them now.
    pub fn on(&self, node: &str) -> Vec<Arc<Pod>> {
        let index = self.index.read().unwrap();
        let keys = index.on.get(node).into_iter().flatten();
        keys.filter_map(|(ns, name)| self.pods.get(ns, name)).filter(|p| crate::pods::node_name(p) == node).collect()
    }
}
