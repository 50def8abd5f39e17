//! A StatefulSet's history: a ControllerRevision per pod template it has had, numbered in
//! the order they were last used. The update revision is the one holding the set's template
//! (a revision already holding it is renumbered to the latest: a rollback); the current
//! revision is the one named by `status.currentRevision`, until the rollout completes. A
//! new revision whose name is taken by other data raises `status.collisionCount`. Revisions
//! no pod is at are deleted beyond `revisionHistoryLimit`, oldest first.

use crate::Error;
use crate::controller_revision::{self, Collision};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;

/// Oldest first: by number, then creation, then name.
pub fn sort(revisions: &mut [Arc<ControllerRevision>]) {
    revisions.sort_by(|a, b| {
        let key = |r: &ControllerRevision| {
            (r.revision.unwrap_or(0), r.metadata.creation_timestamp.as_ref().map(|t| t.0), r.name_any())
        };
        key(a).cmp(&key(b))
    });
}

pub struct History {
    pub current: ControllerRevision,
    pub update: ControllerRevision,
    pub collisions: i32,
}

/// The revision the set's template would be, numbered `number`: labelled with the template's
/// labels, annotated with the set's annotations (kubectl's change-cause among them).
fn revision_of(set: &StatefulSet, number: i64, collisions: i32) -> ControllerRevision {
    let data = controller_revision::data_of(&set.spec.template);
    let hash = controller_revision::safe_hash(data.to_string().as_bytes(), Some(collisions));
    let labels = set.spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    let mut revision = controller_revision::new(set, labels, controller_revision::HASH_LABEL, &hash, data, number);
    revision.metadata.annotations = Some(set.annotations().clone()).filter(|a| !a.is_empty());
    revision
}

/// The set's current and update revisions, creating or renumbering the update revision.
/// `revisions` are the set's, oldest first.
pub async fn resolve(
    api: &Api<ControllerRevision>,
    set: &StatefulSet,
    revisions: &[Arc<ControllerRevision>],
) -> Result<History, Error> {
    let mut collisions = set.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0);
    let next = controller_revision::next_number(revisions.iter().map(|r| r.as_ref()));
    let data = controller_revision::data_of(&set.spec.template);
    let equal = revisions.iter().rfind(|r| controller_revision::holds(r, &data));
    let update = match equal {
        Some(equal) if revisions.last().is_some_and(|last| last.name_any() == equal.name_any()) => (**equal).clone(),
        Some(equal) => {
            let patch = json!({"metadata": {"resourceVersion": equal.resource_version()}, "revision": next});
            api.patch(&equal.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?
        }
        None => loop {
            match controller_revision::create(api, &revision_of(set, next, collisions)).await {
                Ok(created) => break created,
                Err(Collision::Hash) => collisions += 1,
                Err(other) => return Err(other.into()),
            }
        },
    };
    let current_name = set.status.as_ref().and_then(|s| s.current_revision.clone());
    let current = revisions.iter().find(|r| Some(r.name_any()) == current_name);
    let current = current.map(|r| (**r).clone()).unwrap_or_else(|| update.clone());
    Ok(History { current, update, collisions })
}

/// The set with the pod template that `revision` holds.
pub fn as_of(set: &StatefulSet, revision: &ControllerRevision) -> Result<StatefulSet, Error> {
    let template = controller_revision::template_of(revision)
        .ok_or_else(|| anyhow::anyhow!("ControllerRevision {} holds no pod template", revision.name_any()))?;
    let mut set = set.clone();
    set.spec.template = template;
    Ok(set)
}

/// The revisions beyond `revisionHistoryLimit` that neither the set nor any pod is at,
/// oldest first. `revisions` are oldest first.
fn surplus<'a>(
    set: &StatefulSet,
    pods: &[Arc<Pod>],
    revisions: &'a [Arc<ControllerRevision>],
    live: [&str; 2],
) -> Vec<&'a Arc<ControllerRevision>> {
    let mut in_use: HashSet<&str> = live.into_iter().collect();
    in_use.extend(pods.iter().map(|p| super::identity::revision_of(p)));
    let idle: Vec<_> = revisions.iter().filter(|r| !in_use.contains(r.name_any().as_str())).collect();
    let limit = set.spec.revision_history_limit.unwrap_or(10).max(0) as usize;
    idle[..idle.len().saturating_sub(limit)].to_vec()
}

/// Deletes the revisions beyond the history limit.
pub async fn truncate(
    api: &Api<ControllerRevision>,
    set: &StatefulSet,
    pods: &[Arc<Pod>],
    revisions: &[Arc<ControllerRevision>],
    live: [&str; 2],
) -> Result<(), Error> {
    for revision in surplus(set, pods, revisions, live) {
        let preconditions = Preconditions { uid: revision.metadata.uid.clone(), resource_version: None };
        match api
            .delete(&revision.name_any(), &DeleteParams { preconditions: Some(preconditions), ..Default::default() })
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statefulset::identity::{self, tests::set};

    fn numbered(set: &StatefulSet, image: &str, number: i64) -> Arc<ControllerRevision> {
        let mut set = set.clone();
        set.spec.template.spec.as_mut().unwrap().containers[0].image = Some(image.into());
        Arc::new(revision_of(&set, number, 0))
    }

    #[test]
    fn revisions_hold_the_template_and_the_annotations() {
        let mut web = set("web", 1, None);
        web.metadata.annotations = Some([("kubernetes.io/change-cause".to_string(), "v2".to_string())].into());
        let revision = revision_of(&web, 3, 0);
        assert_eq!(revision.revision, Some(3));
        assert!(revision.name_any().starts_with("web-"));
        assert_eq!(revision.labels()["app"], "web");
        assert_eq!(revision.annotations()["kubernetes.io/change-cause"], "v2");
        assert_eq!(as_of(&set("web", 1, None), &revision).unwrap().spec.template, web.spec.template);
        assert_ne!(revision.name_any(), revision_of(&web, 3, 1).name_any());
    }

    #[test]
    fn history_keeps_the_limit_and_what_is_in_use() {
        let mut web = set("web", 1, None);
        web.spec.revision_history_limit = Some(1);
        let mut revisions: Vec<_> = (1..=5).map(|n| numbered(&web, &format!("nginx:{n}"), n)).collect();
        revisions.reverse();
        sort(&mut revisions);
        let names: Vec<String> = revisions.iter().map(|r| r.name_any()).collect();
        let mut pod = identity::new_pod(&web, 0, &names[0]);
        pod.metadata.name = Some("web-0".into());
        let pods = vec![Arc::new(pod)];
        // 1 is in use by a pod, 4 and 5 are the set's; of 2 and 3, the newer is kept.
        let gone: Vec<String> = surplus(&web, &pods, &revisions, [names[3].as_str(), names[4].as_str()])
            .iter()
            .map(|r| r.name_any())
            .collect();
        assert_eq!(gone, [names[1].clone()]);
    }
}
