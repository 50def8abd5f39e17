//! What a controller has asked for and not yet seen come back through its watch, so that a
//! reconcile working from a cache that lags its own writes does not create or delete the
//! same replicas twice. Creations are expected by name (controllers name their pods before
//! creating them) and deletions by uid; a change seen on the watch settles them. As in
//! kube-controller-manager, expectations older than five minutes are dropped, so that a
//! lost event delays a controller but never stops it.

use crate::informer::{Change, controller_uid};
use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Pending {
    creations: HashSet<String>,
    deletions: HashSet<String>,
    since: Option<Instant>,
}

/// Pending creations and deletions, by the uid of the controlling object.
#[derive(Default)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    fn with<T>(&self, owner: &str, f: impl FnOnce(&mut Pending) -> T) -> T {
        let mut pending = self.pending.lock().unwrap();
        let entry = pending.entry(owner.to_string()).or_default();
        let result = f(entry);
        if entry.creations.is_empty() && entry.deletions.is_empty() {
            pending.remove(owner);
        }
        result
    }

    /// Before creating the object named `name`.
    pub fn expect_creation(&self, owner: &str, name: &str) {
        self.with(owner, |p| {
            p.creations.insert(name.to_string());
            p.since.get_or_insert_with(Instant::now);
        });
    }

    /// Before deleting the object with uid `uid`.
    pub fn expect_deletion(&self, owner: &str, uid: &str) {
        self.with(owner, |p| {
            p.deletions.insert(uid.to_string());
            p.since.get_or_insert_with(Instant::now);
        });
    }

    /// A creation or deletion that failed: nothing will come back for it.
    pub fn forget(&self, owner: &str, name_or_uid: &str) {
        self.with(owner, |p| {
            p.creations.remove(name_or_uid);
            p.deletions.remove(name_or_uid);
        });
    }

    /// A change seen on the watch for an object `owner` controls (or controlled).
    pub fn observe(&self, owner: &str, meta: &ObjectMeta, deleted: bool) {
        if !self.pending.lock().unwrap().contains_key(owner) {
            return;
        }
        self.with(owner, |p| {
            if let Some(name) = &meta.name {
                p.creations.remove(name);
            }
            if (deleted || meta.deletion_timestamp.is_some())
                && let Some(uid) = &meta.uid
            {
                p.deletions.remove(uid);
            }
        });
    }

    /// True when everything asked for has been seen, or waited for long enough.
    pub fn satisfied(&self, owner: &str) -> bool {
        let mut pending = self.pending.lock().unwrap();
        match pending.get(owner) {
            None => true,
            Some(p) if p.since.is_some_and(|t| t.elapsed() > TIMEOUT) => {
                pending.remove(owner);
                true
            }
            Some(_) => false,
        }
    }

    /// The owner is gone.
    pub fn clear(&self, owner: &str) {
        self.pending.lock().unwrap().remove(owner);
    }

    /// The children's changes as a controller's triggers, each first settling what its
    /// controller expects.
    pub fn observing<K>(
        self: &Arc<Self>,
        changes: impl Stream<Item = Change<K>> + Send + 'static,
    ) -> impl Stream<Item = Arc<K>> + Send + 'static
    where
        K: Resource + Send + Sync + 'static,
    {
        let expectations = self.clone();
        changes.map(move |change| {
            if let Some(owner) = controller_uid(change.object.as_ref()) {
                expectations.observe(&owner, change.object.meta(), change.deleted);
            }
            change.object
        })
    }

    /// The owners' changes, passed on; a deleted owner's expectations are dropped.
    pub fn clearing_deleted<K>(
        self: &Arc<Self>,
        changes: impl Stream<Item = Change<K>> + Send + 'static,
    ) -> impl Stream<Item = Change<K>> + Send + 'static
    where
        K: Resource + Send + 'static,
    {
        let expectations = self.clone();
        changes.inspect(move |change| {
            if change.deleted {
                expectations.clear(change.object.meta().uid.as_deref().unwrap_or_default());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, uid: &str, terminating: bool) -> ObjectMeta {
        let deletion = terminating.then(|| serde_json::from_value(serde_json::json!("2026-01-01T00:00:00Z")).unwrap());
        ObjectMeta {
            name: Some(name.into()),
            uid: Some(uid.into()),
            deletion_timestamp: deletion,
            ..Default::default()
        }
    }

    #[test]
    fn settled_by_what_the_watch_shows() {
        let e = Expectations::default();
        e.expect_creation("rs", "web-a");
        e.expect_deletion("rs", "uid-b");
        assert!(!e.satisfied("rs"));
        e.observe("rs", &meta("web-a", "uid-a", false), false);
        assert!(!e.satisfied("rs"));
        // Seen again, not yet terminating: the deletion is still pending.
        e.observe("rs", &meta("web-b", "uid-b", false), false);
        assert!(!e.satisfied("rs"));
        e.observe("rs", &meta("web-b", "uid-b", true), false);
        assert!(e.satisfied("rs"));
        e.expect_creation("rs", "web-c");
        e.forget("rs", "web-c");
        assert!(e.satisfied("rs"));
    }
}
