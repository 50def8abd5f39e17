//! ControllerRevisions: the immutable snapshots of a pod template that StatefulSets and
//! DaemonSets keep as their history (`kubectl rollout history`, `rollout undo`). A
//! revision's data is the patch that restores the template,
//! `{"spec":{"template":{..., "$patch":"replace"}}}`; its name is `<parent>-<hash>`, with
//! the hash also in a label (`controller.kubernetes.io/hash` for StatefulSets,
//! `controller-revision-hash` for DaemonSets). Two different templates
//! with one hash are a collision: the parent's `status.collisionCount` goes up, which
//! changes the hash.

use crate::owner;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The label a StatefulSet's revisions carry their hash in.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";
/// The label a DaemonSet's revisions, and the pods of every revision-keeping controller,
/// carry the revision's hash in.
pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";

/// FNV-1a over `bytes` and the collision count, spelled with Kubernetes' safe alphabet (no
/// vowels, so no words): the hash in pod-template-hash labels and revision names.
pub fn safe_hash(bytes: &[u8], collisions: Option<i32>) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut hash: u32 = 0x811c9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= *b as u32;
            hash = hash.wrapping_mul(0x01000193);
        }
    };
    feed(bytes);
    if let Some(n) = collisions {
        feed(&n.to_le_bytes());
    }
    hash.to_string().bytes().map(|b| ALPHABET[b as usize % ALPHABET.len()] as char).collect()
}

/// The revision data that restores `template`.
pub fn data_of(template: &PodTemplateSpec) -> Value {
    let mut template = serde_json::to_value(template).unwrap_or_default();
    if let Some(t) = template.as_object_mut() {
        t.insert("$patch".into(), "replace".into());
    }
    json!({ "spec": { "template": template } })
}

/// The pod template a revision restores.
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision.data.0.get("spec")?.get("template")?.clone();
    template.as_object_mut()?.remove("$patch");
    serde_json::from_value(template).ok()
}

/// Whether a revision holds this data.
pub fn holds(revision: &ControllerRevision, data: &Value) -> bool {
    &revision.data.0 == data
}

/// The number the next revision takes: one more than the highest.
pub fn next_number<'a>(revisions: impl IntoIterator<Item = &'a ControllerRevision>) -> i64 {
    revisions.into_iter().filter_map(|r| r.revision).max().unwrap_or(0) + 1
}

/// The revision `parent` would create for `data`: controlled by the parent, labelled with
/// `labels` and the hash (under `hash_label`), named `<parent>-<hash>` (the parent's name
/// cut to 223 characters, so that the name stays within 253).
pub fn new<P: Resource<DynamicType = ()>>(
    parent: &P,
    labels: BTreeMap<String, String>,
    hash_label: &str,
    hash: &str,
    data: Value,
    number: i64,
) -> ControllerRevision {
    let prefix: String = parent.name_any().chars().take(223).collect();
    let mut labels = labels;
    labels.insert(hash_label.into(), hash.into());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{prefix}-{hash}")),
            namespace: parent.namespace(),
            labels: Some(labels),
            owner_references: Some(vec![owner::reference(parent)]),
            ..Default::default()
        },
        data: RawExtension(data),
        revision: Some(number),
    }
}

/// The old revisions to delete so that at most `limit` remain, oldest first, sparing those
/// `in_use` says pods still run (they stay even beyond the limit).
pub fn beyond_limit<'a>(
    old: &[&'a ControllerRevision],
    limit: i32,
    in_use: impl Fn(&ControllerRevision) -> bool,
) -> Vec<&'a ControllerRevision> {
    let excess = old.len().saturating_sub(limit.max(0) as usize);
    let mut by_age = old.to_vec();
    by_age.sort_by_key(|r| r.revision.unwrap_or(0));
    by_age.into_iter().filter(|r| !in_use(r)).take(excess).collect()
}

/// Creates `revision`, or finds it already there. Another revision under its name (a hash
/// collision) is an error the caller resolves by raising the parent's collisionCount.
pub async fn create(
    api: &Api<ControllerRevision>,
    revision: &ControllerRevision,
) -> Result<ControllerRevision, Collision> {
    match api.create(&PostParams::default(), revision).await {
        Ok(created) => Ok(created),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let existing = api.get(&revision.name_any()).await.map_err(Collision::Api)?;
            let ours = existing
                .owner_references()
                .iter()
                .any(|r| revision.owner_references().first().is_some_and(|o| o.uid == r.uid));
            if ours && holds(&existing, &revision.data.0) { Ok(existing) } else { Err(Collision::Hash) }
        }
        Err(e) => Err(Collision::Api(e)),
    }
}

/// Why a revision could not be created.
#[derive(Debug, thiserror::Error)]
pub enum Collision {
    #[error("another revision has the same name: hash collision")]
    Hash,
    #[error(transparent)]
    Api(kube::Error),
}

impl From<Collision> for crate::Error {
    fn from(c: Collision) -> crate::Error {
        match c {
            Collision::Api(e) => e.into(),
            other => crate::Error(other.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(
            json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": image}]}}),
        )
        .unwrap()
    }

    #[test]
    fn data_round_trips_to_the_template() {
        let revision = ControllerRevision { data: RawExtension(data_of(&template("nginx:1"))), ..Default::default() };
        assert_eq!(revision.data.0["spec"]["template"]["$patch"], "replace");
        assert_eq!(template_of(&revision), Some(template("nginx:1")));
        assert!(holds(&revision, &data_of(&template("nginx:1"))));
        assert!(!holds(&revision, &data_of(&template("nginx:2"))));
    }

    #[test]
    fn history_beyond_the_limit_goes_oldest_first_sparing_live_revisions() {
        let revision = |n: i64| ControllerRevision {
            revision: Some(n),
            metadata: ObjectMeta { name: Some(format!("r{n}")), ..Default::default() },
            ..Default::default()
        };
        let all: Vec<_> = [4, 1, 3, 2].into_iter().map(revision).collect();
        let old: Vec<_> = all.iter().collect();
        let names = |v: Vec<&ControllerRevision>| v.iter().map(|r| r.name_any()).collect::<Vec<_>>();
        assert_eq!(names(beyond_limit(&old, 2, |_| false)), ["r1", "r2"]);
        assert_eq!(names(beyond_limit(&old, 2, |r| r.name_any() == "r1")), ["r2", "r3"]);
        assert!(beyond_limit(&old, 10, |_| false).is_empty());
    }

    #[test]
    fn hashes_differ_by_content_and_collision_count() {
        let a = safe_hash(b"a", None);
        assert_eq!(a, safe_hash(b"a", None));
        assert_ne!(a, safe_hash(b"b", None));
        assert_ne!(a, safe_hash(b"a", Some(1)));
        assert!(a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }
}
