//! The scheduling queue: pods waiting to be placed, highest priority first and oldest first
//! within a priority; and the pods that fit nowhere, set aside until something changes in
//! the cluster (a node added or changed, a pod gone) or a minute has passed.

use k8s_openapi::api::core::v1::Pod;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

type Key = (Reverse<i32>, String, String);

#[derive(Default)]
pub struct Queue {
    active: BTreeMap<Key, Arc<Pod>>,
    /// Each queued pod's key in `active`, by uid.
    keys: HashMap<String, Key>,
    unschedulable: HashMap<String, Arc<Pod>>,
}

fn key(pod: &Pod) -> Key {
    let priority = pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
    let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second()).unwrap_or(0);
    (Reverse(priority), format!("{created:020}"), pod.metadata.uid.clone().unwrap_or_default())
}

impl Queue {
    /// Queues a pod (or refreshes it if queued), unless it waits as unschedulable.
    pub fn add(&mut self, pod: Arc<Pod>) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if let Some(waiting) = self.unschedulable.get_mut(&uid) {
            *waiting = pod;
            return;
        }
        let key = key(&pod);
        if let Some(old) = self.keys.insert(uid, key.clone()) {
            self.active.remove(&old);
        }
        self.active.insert(key, pod);
    }

    pub fn pop(&mut self) -> Option<Arc<Pod>> {
        let (_, pod) = self.active.pop_first()?;
        self.keys.remove(pod.metadata.uid.as_deref().unwrap_or_default());
        Some(pod)
    }

    pub fn remove(&mut self, uid: &str) {
        if let Some(key) = self.keys.remove(uid) {
            self.active.remove(&key);
        }
        self.unschedulable.remove(uid);
    }

    pub fn set_aside(&mut self, pod: Arc<Pod>) {
        self.unschedulable.insert(pod.metadata.uid.clone().unwrap_or_default(), pod);
    }

    /// Something changed that may let the set-aside pods fit: try them all again.
    pub fn retry_unschedulable(&mut self) {
        for (_, pod) in std::mem::take(&mut self.unschedulable) {
            self.add(pod);
        }
    }

    pub fn has_unschedulable(&self) -> bool {
        !self.unschedulable.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(uid: &str, priority: i32, created: &str) -> Arc<Pod> {
        Arc::new(serde_json::from_value(json!({"metadata": {"uid": uid, "creationTimestamp": created},
                                                "spec": {"priority": priority, "containers": []}})).unwrap())
    }

    #[test]
    fn higher_priority_then_older_first() {
        let mut q = Queue::default();
        q.add(pod("late-low", 0, "2026-01-01T00:00:02Z"));
        q.add(pod("early-low", 0, "2026-01-01T00:00:01Z"));
        q.add(pod("high", 100, "2026-01-01T00:00:03Z"));
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).map(|p| p.metadata.uid.clone().unwrap()).collect();
        assert_eq!(order, ["high", "early-low", "late-low"]);
    }

    #[test]
    fn set_aside_pods_come_back_on_retry() {
        let mut q = Queue::default();
        q.set_aside(pod("a", 0, "2026-01-01T00:00:01Z"));
        q.add(pod("a", 0, "2026-01-01T00:00:01Z"));
        assert!(q.pop().is_none());
        q.retry_unschedulable();
        assert_eq!(q.pop().unwrap().metadata.uid.as_deref(), Some("a"));
    }
}
