//! A DaemonSet's history, kept as kube's DaemonSet controller keeps it: one
//! ControllerRevision per template it has had (through [`crate::controller_revision`]),
//! labelled `controller-revision-hash` and carrying the DaemonSet's annotations (so that
//! `kubectl rollout history` shows change causes). The revision of the current template is
//! numbered above every other, renumbered when an old template comes back (`rollout
//! undo`); duplicates of it are merged; old revisions beyond revisionHistoryLimit that no
//! pod runs are deleted, oldest first. A hash that names another template's revision raises
//! status.collisionCount, which changes the hash.

use super::Context;
use crate::controller_revision::{self, Collision, REVISION_HASH_LABEL};
use crate::{Error, owner};
use anyhow::anyhow;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::core::Selector;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;

/// The revisions of a DaemonSet.
pub struct History {
    /// The current revision's hash, which labels the pods made from its template.
    pub hash: String,
    pub old: Vec<Arc<ControllerRevision>>,
}

fn hash_of(revision: &ControllerRevision) -> Option<&str> {
    revision.metadata.labels.as_ref()?.get(REVISION_HASH_LABEL).map(String::as_str)
}

/// The hash of a DaemonSet's template, as its revision and pods are labelled.
fn template_hash(ds: &DaemonSet) -> String {
    let collisions = ds.status.as_ref().and_then(|s| s.collision_count);
    let template = serde_json::to_string(&ds.spec.template).unwrap_or_default();
    controller_revision::safe_hash(template.as_bytes(), collisions)
}

/// Claims the DaemonSet's revisions and makes sure one holds its current template.
pub async fn construct(ctx: &Context, ds: &DaemonSet, selector: &Selector) -> Result<History, Error> {
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &ds.namespace().unwrap_or_default());
    let claimed = owner::claim(&ctx.client, ds, selector, &ctx.informers.controller_revisions).await?;
    let data = controller_revision::data_of(&ds.spec.template);
    let (mut current, mut old) = (Vec::new(), Vec::new());
    for revision in claimed {
        // Revisions made before the label was used are labelled with their name.
        let revision = match hash_of(&revision) {
            Some(_) => revision,
            None => {
                let patch = json!({"metadata": {"labels": {REVISION_HASH_LABEL: revision.name_any()}}});
                Arc::new(api.patch(&revision.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?)
            }
        };
        if controller_revision::holds(&revision, &data) { current.push(revision) } else { old.push(revision) }
    }
    let next = controller_revision::next_number(old.iter().map(Arc::as_ref));
    let current = if current.is_empty() {
        snapshot(ctx, &api, ds, data, next).await?
    } else {
        let kept = merge_duplicates(ctx, &api, ds, current).await?;
        if kept.revision.unwrap_or(0) < next {
            let patch = json!({"revision": next});
            Arc::new(api.patch(&kept.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?)
        } else {
            kept
        }
    };
    Ok(History { hash: hash_of(&current).unwrap_or_default().to_string(), old })
}

/// Creates the revision of the current template.
async fn snapshot(
    ctx: &Context,
    api: &Api<ControllerRevision>,
    ds: &DaemonSet,
    data: serde_json::Value,
    number: i64,
) -> Result<Arc<ControllerRevision>, Error> {
    let hash = template_hash(ds);
    let labels = ds.spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    let mut revision = controller_revision::new(ds, labels, REVISION_HASH_LABEL, &hash, data, number);
    revision.metadata.annotations = ds.metadata.annotations.clone();
    match controller_revision::create(api, &revision).await {
        Ok(created) => Ok(Arc::new(created)),
        Err(Collision::Hash) => Err(raise_collision_count(ctx, ds).await),
        Err(e) => Err(e.into()),
    }
}

/// Raises status.collisionCount, unless the count this pass hashed with is already stale;
/// either way the pass is retried with the fresh count.
async fn raise_collision_count(ctx: &Context, ds: &DaemonSet) -> Error {
    let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &ds.namespace().unwrap_or_default());
    let fresh = match api.get(&ds.name_any()).await {
        Ok(fresh) => fresh,
        Err(e) => return e.into(),
    };
    let seen = ds.status.as_ref().and_then(|s| s.collision_count);
    let count = fresh.status.as_ref().and_then(|s| s.collision_count);
    if seen != count {
        return Error(anyhow!(
            "stale collisionCount {seen:?} (now {count:?}) for DaemonSet {}; retrying",
            ds.name_any()
        ));
    }
    let patch = json!({"metadata": {"resourceVersion": fresh.resource_version()}, "status": {"collisionCount": count.unwrap_or(0) + 1}});
    if let Err(e) = api.patch_status(&ds.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        return e.into();
    }
    Error(anyhow!("hash collision for a revision of DaemonSet {}; collisionCount raised", ds.name_any()))
}

/// Of several revisions holding the current template, keeps the highest numbered: pods
/// labelled with another's hash are relabelled, and the others deleted.
async fn merge_duplicates(
    ctx: &Context,
    api: &Api<ControllerRevision>,
    ds: &DaemonSet,
    mut revisions: Vec<Arc<ControllerRevision>>,
) -> Result<Arc<ControllerRevision>, Error> {
    revisions.sort_by_key(|r| std::cmp::Reverse(r.revision.unwrap_or(0)));
    let kept = revisions.remove(0);
    let kept_hash = hash_of(&kept).unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ds.namespace().unwrap_or_default());
    let owned = ctx.informers.pods.owned_by(ds.uid().as_deref().unwrap_or_default());
    for duplicate in revisions {
        let duplicate_hash = hash_of(&duplicate);
        for pod in owned.iter().filter(|p| p.labels().get(REVISION_HASH_LABEL).map(String::as_str) == duplicate_hash) {
            let patch = json!({"metadata": {"labels": {REVISION_HASH_LABEL: kept_hash}}});
            pods.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
        delete(api, &duplicate.name_any()).await?;
    }
    Ok(kept)
}

/// Deletes the old revisions beyond revisionHistoryLimit that none of `pods` runs.
pub async fn clean_up(
    ctx: &Context,
    ds: &DaemonSet,
    old: &[Arc<ControllerRevision>],
    pods: &[Arc<Pod>],
) -> Result<(), Error> {
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &ds.namespace().unwrap_or_default());
    let live: HashSet<&str> =
        pods.iter().filter_map(|p| p.labels().get(REVISION_HASH_LABEL).map(String::as_str)).collect();
    let old: Vec<&ControllerRevision> = old.iter().map(Arc::as_ref).collect();
    let limit = ds.spec.revision_history_limit.unwrap_or(10);
    for revision in controller_revision::beyond_limit(&old, limit, |r| hash_of(r).is_some_and(|h| live.contains(h))) {
        delete(&api, &revision.name_any()).await?;
    }
    Ok(())
}

async fn delete(api: &Api<ControllerRevision>, name: &str) -> kube::Result<()> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
