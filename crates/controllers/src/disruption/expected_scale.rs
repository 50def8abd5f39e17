//! How many pods the controllers of a budget's pods want: the sum of their scales, each
//! controller counted once. A pod of a ReplicaSet that a Deployment controls counts the
//! Deployment's replicas; ReplicaSets, ReplicationControllers and StatefulSets are read from
//! the informers; any other controller through its `scale` subresource. Pods with no
//! controller are unmanaged: they add nothing, and the budget warns about them.

use super::Context;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use kube::api::{Api, DynamicObject};
use kube::core::GroupVersionKind;
use std::collections::HashMap;
use std::sync::Arc;

/// The controllers' summed scale, and the names of the pods that have no controller.
pub struct Scale {
    pub total: i32,
    pub unmanaged: Vec<String>,
}

pub async fn of_controllers(ctx: &Context, pods: &[Arc<Pod>]) -> Result<Scale, String> {
    let mut scales: HashMap<String, i32> = HashMap::new();
    let mut unmanaged = Vec::new();
    for pod in pods {
        let controller = pod.metadata.owner_references.iter().flatten().find(|r| r.controller == Some(true));
        let Some(controller) = controller else {
            unmanaged.push(pod.metadata.name.clone().unwrap_or_default());
            continue;
        };
        if scales.contains_key(&controller.uid) {
            continue;
        }
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let found = match from_informers(ctx, controller, namespace) {
            Some(found) => Some(found),
            None => from_scale_subresource(ctx, controller, namespace).await?,
        };
        let Some((uid, replicas)) = found else {
            return Err(format!("found no controllers for pod {:?}", pod.metadata.name.as_deref().unwrap_or_default()));
        };
        scales.insert(uid, replicas);
    }
    Ok(Scale { total: scales.values().sum(), unmanaged })
}

fn group_of(reference: &OwnerReference) -> &str {
    reference.api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// Whether `reference` names a `kind` of one of `groups`.
fn names(reference: &OwnerReference, kind: &str, groups: &[&str]) -> bool {
    reference.kind == kind && groups.contains(&group_of(reference))
}

/// Looks `reference` up in `informer`, if it still names that object (same uid).
fn lookup<K>(informer: &crate::informer::Informer<K>, reference: &OwnerReference, namespace: &str) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    informer.get(namespace, &reference.name).filter(|o| o.meta().uid.as_deref() == Some(reference.uid.as_str()))
}

/// The controlling object's uid and replicas, for the kinds the controller manager informs on.
fn from_informers(ctx: &Context, reference: &OwnerReference, namespace: &str) -> Option<(String, i32)> {
    let informers = &ctx.informers;
    if names(reference, "ReplicationController", &[""]) {
        let rc = lookup(&informers.replication_controllers, reference, namespace)?;
        return Some((reference.uid.clone(), rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)));
    }
    if names(reference, "StatefulSet", &["apps"]) {
        let set = lookup(&informers.statefulsets, reference, namespace)?;
        return Some((reference.uid.clone(), set.spec.replicas.unwrap_or(1)));
    }
    if !names(reference, "ReplicaSet", &["apps", "extensions"]) {
        return None;
    }
    let replica_set = lookup(&informers.replicasets, reference, namespace)?;
    let parent = replica_set.metadata.owner_references.iter().flatten().find(|r| r.controller == Some(true));
    match parent {
        Some(parent) if parent.kind == "Deployment" => {
            // A Deployment's pods count its replicas, whichever of its ReplicaSets runs them;
            // if it cannot be found here, the ReplicaSet is asked through its scale.
            if !names(parent, "Deployment", &["apps", "extensions"]) {
                return None;
            }
            let deployment = lookup(&informers.deployments, parent, namespace)?;
            Some((parent.uid.clone(), deployment.spec.replicas.unwrap_or(1)))
        }
        _ => Some((reference.uid.clone(), replica_set.spec.replicas.unwrap_or(1))),
    }
}

/// The scale of any other controller, read through its `scale` subresource.
async fn from_scale_subresource(
    ctx: &Context,
    reference: &OwnerReference,
    namespace: &str,
) -> Result<Option<(String, i32)>, String> {
    let (group, version) = reference.api_version.rsplit_once('/').unwrap_or(("", reference.api_version.as_str()));
    let gvk = GroupVersionKind::gvk(group, version, &reference.kind);
    let (resource, capabilities) = kube::discovery::pinned_kind(&ctx.client, &gvk).await.map_err(|e| e.to_string())?;
    let resource_name = if group.is_empty() { resource.plural.clone() } else { format!("{}.{group}", resource.plural) };
    if !capabilities.subresources.iter().any(|(sub, _)| sub.plural == "scale") {
        return Err(format!("{resource_name} does not implement the scale subresource"));
    }
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &resource);
    let scale = api.get_scale(&reference.name).await.map_err(|e| e.to_string())?;
    if scale.metadata.uid.as_deref() != Some(reference.uid.as_str()) {
        return Ok(None);
    }
    Ok(Some((reference.uid.clone(), scale.spec.and_then(|s| s.replicas).unwrap_or(0))))
}
