//! Every object of every kind, as the garbage collector sees it: its owner references,
//! whether it is being deleted and with which finalizers, and who depends on it. Each
//! change returns the uids whose fate it may decide.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::discovery::ApiResource;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub const ORPHAN: &str = "orphan";
pub const FOREGROUND: &str = "foregroundDeletion";

#[derive(Clone, Debug)]
pub struct Object {
    pub resource: Arc<ApiResource>,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub owners: Vec<OwnerReference>,
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

impl Object {
    pub fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }

    /// Being deleted in the foreground: waiting for its dependents to go first.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND)
    }
}

#[derive(Default)]
pub struct Graph {
    objects: HashMap<String, Object>,
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Object> {
        self.objects.get(uid)
    }

    pub fn dependents(&self, uid: &str) -> Vec<Object> {
        let uids = self.dependents.get(uid).into_iter().flatten();
        uids.filter_map(|d| self.objects.get(d)).cloned().collect()
    }

    pub fn uids_of(&self, resource: &ApiResource) -> Vec<String> {
        self.objects.values().filter(|o| *o.resource == *resource).map(|o| o.uid.clone()).collect()
    }

    fn unlink(&mut self, object: &Object) {
        for owner in &object.owners {
            if let Some(set) = self.dependents.get_mut(&owner.uid) {
                set.remove(&object.uid);
                if set.is_empty() {
                    self.dependents.remove(&owner.uid);
                }
            }
        }
    }

    /// An object added or changed: itself if it has owners to check or is being deleted
    /// with a policy to carry out, and its dependents when it starts deleting them.
    pub fn upsert(&mut self, object: Object) -> Vec<String> {
        let old = self.objects.remove(&object.uid);
        if let Some(old) = &old {
            self.unlink(old);
        }
        for owner in &object.owners {
            self.dependents.entry(owner.uid.clone()).or_default().insert(object.uid.clone());
        }
        let mut todo = Vec::new();
        // An owner deleting its dependents that this object no longer blocks may finish.
        if let Some(old) = &old {
            let blocks = |o: &Object, owner: &str| {
                o.owners.iter().any(|r| r.uid == owner && r.block_owner_deletion == Some(true))
            };
            for r in &old.owners {
                let waiting = self.objects.get(&r.uid).is_some_and(Object::deleting_dependents);
                if waiting && blocks(old, &r.uid) && !blocks(&object, &r.uid) {
                    todo.push(r.uid.clone());
                }
            }
        }
        let owners_changed = old.as_ref().is_none_or(|o| o.owners != object.owners);
        if (!object.owners.is_empty() && owners_changed)
            || (object.deleting && (object.has_finalizer(ORPHAN) || object.has_finalizer(FOREGROUND)))
        {
            todo.push(object.uid.clone());
        }
        if object.deleting_dependents() && !old.as_ref().is_some_and(Object::deleting_dependents) {
            todo.extend(self.dependents.get(&object.uid).into_iter().flatten().cloned());
        }
        self.objects.insert(object.uid.clone(), object);
        todo
    }

    /// An object gone: its dependents may be dangling now, and owners waiting for it may
    /// finish.
    pub fn remove(&mut self, uid: &str) -> Vec<String> {
        let Some(old) = self.objects.remove(uid) else {
            return Vec::new();
        };
        self.unlink(&old);
        let mut todo: Vec<String> = self.dependents.get(uid).into_iter().flatten().cloned().collect();
        todo.extend(
            old.owners
                .iter()
                .map(|o| o.uid.clone())
                .filter(|o| self.objects.get(o).is_some_and(Object::deleting_dependents)),
        );
        todo
    }
}
