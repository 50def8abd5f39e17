//! The new ReplicaSet of a Deployment and its revision. The new ReplicaSet is the one whose
//! pod template is the Deployment's, apart from the `pod-template-hash` label; if none is,
//! it is created, named `<deployment>-<hash>`, with the next revision. Rolling back to an
//! old template makes its ReplicaSet the new one again, with a new revision and the old
//! revision kept in `deployment.kubernetes.io/revision-history`. Old ReplicaSets scaled to
//! zero are deleted beyond `revisionHistoryLimit`.

use super::{COMPONENT, Rollout, max_surge, replicas, rs_replicas};
use crate::Error;
use crate::owner;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const HASH_LABEL: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Deployment annotations that are the controller's own, never copied to ReplicaSets.
const NOT_COPIED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

fn without_hash(template: &PodTemplateSpec) -> Value {
    let mut value = serde_json::to_value(template).unwrap_or_default();
    if let Some(labels) = value["metadata"]["labels"].as_object_mut() {
        labels.remove(HASH_LABEL);
        if labels.is_empty() {
            value["metadata"].as_object_mut().map(|m| m.remove("labels"));
        }
    }
    value
}

/// Equal pod templates, but for the hash label.
pub fn same_template(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

/// The template's hash, over its JSON without the hash label, and the collision count.
pub fn template_hash(template: &PodTemplateSpec, collisions: Option<i32>) -> String {
    crate::controller_revision::safe_hash(without_hash(template).to_string().as_bytes(), collisions)
}

pub fn revision_of(rs: &ReplicaSet) -> i64 {
    rs.annotations().get(REVISION).and_then(|r| r.parse().ok()).unwrap_or(0)
}

/// Sets the annotations a ReplicaSet gets from its Deployment; true if any changed.
fn copy_annotations(d: &Deployment, annotations: &mut BTreeMap<String, String>) -> bool {
    let mut changed = false;
    for (k, v) in d.annotations() {
        if NOT_COPIED.contains(&k.as_str()) || annotations.get(k) == Some(v) {
            continue;
        }
        annotations.insert(k.clone(), v.clone());
        changed = true;
    }
    changed
}

/// Gives the ReplicaSet `revision` if it has an older one, keeping the older one in its
/// history (a rollback); true if anything changed.
fn set_revision(annotations: &mut BTreeMap<String, String>, revision: i64) -> bool {
    let old = annotations.get(REVISION).cloned();
    let old_number: i64 = old.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0);
    if old_number >= revision {
        return false;
    }
    annotations.insert(REVISION.into(), revision.to_string());
    if let Some(old) = old.filter(|o| !o.is_empty()) {
        let history =
            annotations.get(REVISION_HISTORY).filter(|h| !h.is_empty()).map(|h| format!("{h},{old}")).unwrap_or(old);
        annotations.insert(REVISION_HISTORY.into(), history);
    }
    true
}

/// The replica annotations, recording the size the Deployment had when the ReplicaSet
/// was last scaled (for proportional scaling).
pub fn replica_annotations(d: &Deployment) -> [(&'static str, String); 2] {
    [(DESIRED_REPLICAS, replicas(d).to_string()), (MAX_REPLICAS, (replicas(d) + max_surge(d)).to_string())]
}

impl Rollout<'_> {
    /// The new ReplicaSet, brought to the Deployment's revision, with the Deployment's
    /// revision annotation synced to it; created (with `initial` replicas, given the other
    /// ReplicaSets) when `create` and there is none.
    pub async fn new_rs_synced(
        &self,
        create: bool,
        initial: impl Fn(&[Arc<ReplicaSet>]) -> i32,
    ) -> Result<Option<Arc<ReplicaSet>>, Error> {
        let existing = self.new_rs();
        let old = self.old_rss(existing.as_ref());
        let revision = old.iter().map(|rs| revision_of(rs)).max().unwrap_or(0) + 1;
        let rs = match existing {
            Some(rs) => {
                let mut annotations = rs.annotations().clone();
                let min_ready = self.d.spec.min_ready_seconds;
                let stale_min_ready = rs.spec.min_ready_seconds != min_ready;
                let copied = copy_annotations(self.d, &mut annotations);
                if set_revision(&mut annotations, revision) | copied | stale_min_ready {
                    let patch = json!({"metadata": {"annotations": annotations, "resourceVersion": rs.resource_version()},
                                       "spec": {"minReadySeconds": min_ready}});
                    Arc::new(self.rs_api().patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?)
                } else {
                    rs
                }
            }
            None if !create => return Ok(None),
            None => match self.create_new_rs(revision, &initial(&old)).await? {
                Some(rs) => rs,
                None => return Ok(None),
            },
        };
        self.sync_deployment_revision(&rs).await?;
        Ok(Some(rs))
    }

    async fn create_new_rs(&self, revision: i64, initial: &i32) -> Result<Option<Arc<ReplicaSet>>, Error> {
        let d = self.d;
        let spec = d.spec.clone();
        let collisions = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = template_hash(&spec.template, collisions);
        let mut template = spec.template.clone();
        template
            .metadata
            .get_or_insert_default()
            .labels
            .get_or_insert_default()
            .insert(HASH_LABEL.into(), hash.clone());
        let mut selector = spec.selector.clone();
        selector.match_labels.get_or_insert_default().insert(HASH_LABEL.into(), hash.clone());
        let mut annotations = BTreeMap::new();
        copy_annotations(d, &mut annotations);
        set_revision(&mut annotations, revision);
        annotations.extend(replica_annotations(d).map(|(k, v)| (k.to_string(), v)));
        let name = format!("{}-{hash}", d.name_any());
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": d.namespace(), "labels": template.metadata.as_ref().and_then(|m| m.labels.clone()),
                         "annotations": annotations, "ownerReferences": [owner::reference(d)]},
            "spec": {"replicas": initial, "minReadySeconds": spec.min_ready_seconds, "selector": selector, "template": template},
        }))
        .map_err(anyhow::Error::from)?;
        match self.rs_api().create(&PostParams::default(), &rs).await {
            Ok(created) => {
                if *initial > 0 {
                    let message = format!("Scaled up replica set {name} from 0 to {initial}");
                    events::record(&self.ctx.client, COMPONENT, d, "Normal", "ScalingReplicaSet", &message).await;
                }
                self.progressing_on_creation(&name).await?;
                Ok(Some(Arc::new(created)))
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                // Ours, not yet seen by the informer; or another template with the same hash,
                // which a bumped collision count resolves.
                let existing = self.rs_api().get(&name).await?;
                let ours = existing.spec.template.as_ref().is_some_and(|t| same_template(t, &spec.template));
                if ours && owner::controlled_by(&existing, d.metadata.uid.as_deref().unwrap_or_default()) {
                    return Ok(Some(Arc::new(existing)));
                }
                let api: Api<Deployment> = Api::namespaced(self.ctx.client.clone(), &d.namespace().unwrap_or_default());
                let patch = json!({"metadata": {"resourceVersion": d.resource_version()},
                                   "status": {"collisionCount": collisions.unwrap_or(0) + 1}});
                api.patch_status(&d.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
                Ok(None)
            }
            Err(e) => {
                self.progressing_failed_creation(&name, &e).await?;
                Err(e.into())
            }
        }
    }

    /// The Deployment carries its new ReplicaSet's revision.
    async fn sync_deployment_revision(&self, rs: &ReplicaSet) -> Result<(), Error> {
        let revision = rs.annotations().get(REVISION).cloned().unwrap_or_default();
        if self.d.annotations().get(REVISION) == Some(&revision) {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(self.ctx.client.clone(), &self.d.namespace().unwrap_or_default());
        let patch =
            json!({"metadata": {"annotations": {REVISION: revision}, "resourceVersion": self.d.resource_version()}});
        api.patch(&self.d.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        Ok(())
    }

    /// Deletes the oldest of the old ReplicaSets with no pods beyond revisionHistoryLimit.
    pub async fn clean_up(&self, new: Option<&Arc<ReplicaSet>>) -> Result<(), Error> {
        let limit = self.d.spec.revision_history_limit.unwrap_or(10).max(0) as usize;
        let mut idle: Vec<_> = self
            .old_rss(new)
            .into_iter()
            .filter(|rs| rs_replicas(rs) == 0)
            .filter(|rs| rs.status.as_ref().is_none_or(|s| s.replicas == 0))
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        if idle.len() <= limit {
            return Ok(());
        }
        idle.sort_by_key(|rs| revision_of(rs));
        for rs in &idle[..idle.len() - limit] {
            let preconditions =
                Preconditions { uid: rs.metadata.uid.clone(), resource_version: rs.metadata.resource_version.clone() };
            match self
                .rs_api()
                .delete(&rs.name_any(), &DeleteParams { preconditions: Some(preconditions), ..Default::default() })
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(image: &str, hash: Option<&str>) -> PodTemplateSpec {
        let mut labels = serde_json::json!({"app": "web"});
        if let Some(h) = hash {
            labels[HASH_LABEL] = h.into();
        }
        serde_json::from_value(
            json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": image}]}}),
        )
        .unwrap()
    }

    #[test]
    fn templates_compare_and_hash_without_the_hash_label() {
        assert!(same_template(&template("nginx", None), &template("nginx", Some("abc"))));
        assert!(!same_template(&template("nginx", None), &template("httpd", None)));
        let hash = template_hash(&template("nginx", None), None);
        assert_eq!(hash, template_hash(&template("nginx", Some("zzz")), None));
        assert_ne!(hash, template_hash(&template("nginx", None), Some(1)));
        assert!(hash.bytes().all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)));
    }

    #[test]
    fn a_rollback_keeps_the_old_revision_in_the_history() {
        let mut annotations = BTreeMap::from([(REVISION.to_string(), "1".to_string())]);
        assert!(set_revision(&mut annotations, 4));
        assert!(!set_revision(&mut annotations, 3));
        assert!(set_revision(&mut annotations, 6));
        assert_eq!(annotations[REVISION], "6");
        assert_eq!(annotations[REVISION_HISTORY], "1,4");
    }
}
