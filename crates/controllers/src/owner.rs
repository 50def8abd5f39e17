//! Controller references, as kube-controller-manager manages them: an object belongs to the
//! controller named by its owner reference with `controller: true`; a controller adopts the
//! orphans its selector matches and releases the objects it no longer matches.

use crate::informer::{Informer, controller_uid};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::reflector::{ObjectRef, Store};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::fmt::Debug;
use std::sync::Arc;

/// The owner reference a controller puts on what it creates.
pub fn reference<O: Resource<DynamicType = ()>>(owner: &O) -> OwnerReference {
    let meta = owner.meta();
    OwnerReference {
        api_version: O::api_version(&()).into_owned(),
        kind: O::kind(&()).into_owned(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

pub fn labels_of<K: Resource>(object: &K) -> &std::collections::BTreeMap<String, String> {
    static EMPTY: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    object.meta().labels.as_ref().unwrap_or(&EMPTY)
}

fn terminating<K: Resource>(object: &K) -> bool {
    object.meta().deletion_timestamp.is_some()
}

/// The `O`s a change to `child` concerns: its controller if that is an `O`, or, for an
/// orphan, every `O` in its namespace whose selector matches it (one may adopt it).
pub fn owners_of<O, K>(child: &K, owners: &Store<O>, selector: impl Fn(&O) -> Option<Selector>) -> Vec<ObjectRef<O>>
where
    O: Resource<DynamicType = ()> + Clone + 'static,
    K: Resource,
{
    let meta = child.meta();
    let namespace = meta.namespace.clone().unwrap_or_default();
    let controller = meta.owner_references.iter().flatten().find(|r| r.controller == Some(true));
    match controller {
        Some(r) if r.kind == O::kind(&()) && r.api_version == O::api_version(&()) => {
            vec![ObjectRef::new(&r.name).within(&namespace)]
        }
        Some(_) => Vec::new(),
        None => owners
            .state()
            .iter()
            .filter(|o| o.meta().namespace.as_deref() == Some(&namespace))
            .filter(|o| selector(o).is_some_and(|s| s.matches(labels_of(child))))
            .map(|o| ObjectRef::from_obj(o.as_ref()))
            .collect(),
    }
}

/// The `K`s `owner` controls after adopting the orphans `selector` matches and releasing
/// the objects it no longer matches (kube's ControllerRefManager). Adoption first checks,
/// against the API rather than a cache, that the owner still exists and is not being
/// deleted.
pub async fn claim<O, K>(
    client: &kube::Client,
    owner: &O,
    selector: &Selector,
    children: &Informer<K>,
) -> kube::Result<Vec<Arc<K>>>
where
    O: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    claim_where(client, owner, |child: &K| selector.matches(labels_of(child)), children).await
}

/// [`claim`] with a test of its own in place of a selector: a StatefulSet claims only the
/// pods its selector matches that are also named as its members.
pub async fn claim_where<O, K>(
    client: &kube::Client,
    owner: &O,
    matches: impl Fn(&K) -> bool,
    children: &Informer<K>,
) -> kube::Result<Vec<Arc<K>>>
where
    O: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    let meta = owner.meta();
    let (uid, namespace) = (meta.uid.clone().unwrap_or_default(), meta.namespace.clone().unwrap_or_default());
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    let owner_terminating = terminating(owner);
    let mut claimed = Vec::new();
    for child in children.owned_by(&uid) {
        if owner_terminating || matches(child.as_ref()) {
            claimed.push(child);
        } else if !terminating(child.as_ref()) {
            set_references(&api, child.as_ref(), |refs| refs.retain(|r| r.uid != uid)).await?;
        }
    }
    let orphans: Vec<_> = children
        .orphans_in(&namespace)
        .into_iter()
        .filter(|c| !terminating(c.as_ref()) && matches(c.as_ref()))
        .collect();
    if orphans.is_empty() || owner_terminating {
        return Ok(claimed);
    }
    let owners: Api<O> = Api::namespaced(client.clone(), &namespace);
    let fresh = owners.get(meta.name.as_deref().unwrap_or_default()).await?;
    if fresh.meta().uid.as_deref() != Some(uid.as_str()) || terminating(&fresh) {
        return Ok(claimed);
    }
    let ours = reference(owner);
    for orphan in orphans {
        match set_references(&api, orphan.as_ref(), |refs| refs.push(ours.clone())).await {
            Ok(adopted) => claimed.push(Arc::new(adopted)),
            // Gone, or changed since it was seen (perhaps adopted by another): the next
            // reconcile sees what became of it.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(claimed)
}

/// Rewrites the object's owner references, on the condition that it has not changed since
/// it was read.
pub async fn set_references<K>(
    api: &Api<K>,
    child: &K,
    change: impl FnOnce(&mut Vec<OwnerReference>),
) -> kube::Result<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let meta = child.meta();
    let mut refs = meta.owner_references.clone().unwrap_or_default();
    change(&mut refs);
    let patch =
        json!({"metadata": {"ownerReferences": refs, "resourceVersion": meta.resource_version, "uid": meta.uid}});
    api.patch(meta.name.as_deref().unwrap_or_default(), &PatchParams::default(), &Patch::Merge(&patch)).await
}

/// Whether `child` is controlled by the object with this uid.
pub fn controlled_by<K: Resource>(child: &K, uid: &str) -> bool {
    controller_uid(child).as_deref() == Some(uid)
}
