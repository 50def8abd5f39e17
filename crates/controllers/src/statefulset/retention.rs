//! persistentVolumeClaimRetentionPolicy, carried out as Kubernetes does it: through owner
//! references on the claims, which the garbage collector acts on. `whenDeleted: Delete` makes
//! the set the controller of the claims of the pods it keeps, so that they go with the set;
//! `whenScaled: Delete` makes a scaled-down pod the controller of its claims before the pod is
//! deleted, so that they go with it. Retain leaves no reference of ours.
//!
//! A claim that refers to an earlier set or pod of the same name (a stale reference) is left
//! alone; while `whenScaled` is Delete it also holds back recreating its pod, since the
//! garbage collector is about to delete it. A claim that another object controls keeps that
//! controller, and loses our references.

use super::{COMPONENT, Pass, claims, identity};
use crate::{Error, owner};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::Api;
use kube::{Resource, ResourceExt};

/// (whenDeleted, whenScaled), true for Delete.
fn policy(set: &StatefulSet) -> (bool, bool) {
    let policy = set.spec.persistent_volume_claim_retention_policy.as_ref();
    let delete = |rule: Option<&String>| rule.map(String::as_str) == Some("Delete");
    (delete(policy.and_then(|p| p.when_deleted.as_ref())), delete(policy.and_then(|p| p.when_scaled.as_ref())))
}

/// A reference to an object of this kind and name, whatever its uid.
fn names<K: Resource<DynamicType = ()>>(r: &OwnerReference, object: &K) -> bool {
    r.name == object.meta().name.as_deref().unwrap_or_default()
        && r.kind == K::kind(&())
        && r.api_version == K::api_version(&())
}

fn uid<K: Resource>(object: &K) -> &str {
    object.meta().uid.as_deref().unwrap_or_default()
}

/// Whether the claim's reference to an object of `owner`'s name is to another uid: an
/// earlier object of that name.
fn has_stale_reference<K: Resource<DynamicType = ()>>(claim: &PersistentVolumeClaim, owner: &K) -> bool {
    claim.owner_references().iter().find(|r| names(r, owner)).is_some_and(|r| r.uid != uid(owner))
}

fn has_reference<K: Resource>(claim: &PersistentVolumeClaim, owner: &K) -> bool {
    claim.owner_references().iter().any(|r| r.uid == uid(owner))
}

/// Whether something other than the set or the pod controls the claim, under a policy that
/// deletes (under Retain, whoever controls a claim is no concern of ours).
fn has_unexpected_controller(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> bool {
    if policy(set) == (false, false) {
        return false;
    }
    claim.owner_references().iter().any(|r| {
        if names(r, set) {
            r.uid != uid(set)
        } else if names(r, pod) {
            r.uid != uid(pod)
        } else {
            r.controller == Some(true)
        }
    })
}

/// Whether the set or the pod owns the claim without controlling it (as earlier releases
/// left claims): to be rewritten.
fn has_non_controller_owner(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> bool {
    let ours = |r: &&OwnerReference| r.uid == uid(set) || (!uid(pod).is_empty() && r.uid == uid(pod));
    claim.owner_references().iter().filter(ours).any(|r| r.controller != Some(true))
}

fn scaled_down(set: &StatefulSet, pod: &Pod) -> bool {
    !identity::ordinal(pod).is_some_and(|o| identity::in_range(set, o))
}

/// Whether the claim's owner references are those the policy asks for: the set's for
/// whenDeleted=Delete while the pod is kept, the pod's for whenScaled=Delete once it is
/// scaled down, none of ours otherwise.
pub fn up_to_date(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> bool {
    if has_stale_reference(claim, set) || has_stale_reference(claim, pod) {
        return true;
    }
    if has_unexpected_controller(claim, set, pod) {
        return !(has_reference(claim, set) || has_reference(claim, pod));
    }
    if has_non_controller_owner(claim, set, pod) {
        return false;
    }
    let (when_deleted, when_scaled) = policy(set);
    let scaled_down = scaled_down(set, pod);
    let want_set = when_deleted && !(when_scaled && scaled_down);
    let want_pod = when_scaled && scaled_down;
    has_reference(claim, set) == want_set && has_reference(claim, pod) == want_pod
}

/// The claim's owner references as the policy wants them; ours are dropped, and not put
/// back, where another object controls the claim.
pub fn references(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> Vec<OwnerReference> {
    let unexpected = has_unexpected_controller(claim, set, pod);
    let mut refs: Vec<OwnerReference> =
        claim.owner_references().iter().filter(|r| !names(r, set) && !names(r, pod)).cloned().collect();
    if unexpected {
        return refs;
    }
    let (when_deleted, when_scaled) = policy(set);
    let scaled_down = scaled_down(set, pod);
    if when_scaled && scaled_down {
        refs.push(owner::reference(pod));
    } else if when_deleted {
        refs.push(owner::reference(set));
    }
    refs
}

/// Whether a claim of a pod not yet created still refers to an earlier pod of that name,
/// which the garbage collector is about to delete it with.
pub fn is_stale(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> bool {
    policy(set).1 && has_stale_reference(claim, pod)
}

impl Pass<'_> {
    fn claims_of(&self, pod: &Pod) -> Vec<std::sync::Arc<PersistentVolumeClaim>> {
        let Some(ordinal) = identity::ordinal(pod) else { return Vec::new() };
        let namespace = self.namespace();
        let names = claims::templates(self.set).iter().map(|t| claims::claim_name(t, self.set, ordinal));
        names.filter_map(|name| self.ctx.informers.persistent_volume_claims.get(&namespace, &name)).collect()
    }

    /// Whether the pod's existing claims have the owner references the policy asks for.
    pub fn claims_match_policy(&self, pod: &Pod) -> bool {
        self.claims_of(pod).iter().all(|c| up_to_date(c, self.set, pod))
    }

    /// Whether a claim of the pod about to be created is still being deleted with an earlier
    /// pod of its name.
    pub fn claims_stale(&self, pod: &Pod) -> bool {
        self.claims_of(pod).iter().any(|c| is_stale(c, self.set, pod))
    }

    /// Gives the pod's claims the owner references the policy asks for.
    pub async fn apply_policy(&self, pod: &Pod) -> Result<(), Error> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.ctx.client.clone(), &self.namespace());
        for claim in self.claims_of(pod) {
            if has_unexpected_controller(&claim, self.set, pod) {
                let message = format!(
                    "PersistentVolumeClaim {} has a conflicting OwnerReference that acts as a managing controller, the retention policy is ignored for this claim",
                    claim.name_any()
                );
                events::record(&self.ctx.client, COMPONENT, self.set, "Warning", "ConflictingController", &message)
                    .await;
            }
            if up_to_date(&claim, self.set, pod) {
                continue;
            }
            let refs = references(&claim, self.set, pod);
            owner::set_references(&api, claim.as_ref(), |current| *current = refs).await.map_err(|e| {
                anyhow::anyhow!("could not update claim {} for delete policy ownerRefs: {e}", claim.name_any())
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statefulset::health::tests::pod;
    use crate::statefulset::identity::tests::set;
    use serde_json::json;

    fn with_policy(when_deleted: &str, when_scaled: &str, replicas: i32) -> StatefulSet {
        let mut set = set("web", replicas, None);
        set.spec.persistent_volume_claim_retention_policy =
            Some(serde_json::from_value(json!({"whenDeleted": when_deleted, "whenScaled": when_scaled})).unwrap());
        set
    }

    fn claim(refs: Vec<OwnerReference>) -> PersistentVolumeClaim {
        let mut claim: PersistentVolumeClaim =
            serde_json::from_value(json!({"metadata": {"name": "www-web-1", "namespace": "ns"}})).unwrap();
        claim.metadata.owner_references = Some(refs);
        claim
    }

    fn converge(set: &StatefulSet, pod: &Pod, claim: &mut PersistentVolumeClaim) {
        if !up_to_date(claim, set, pod) {
            claim.metadata.owner_references = Some(references(claim, set, pod));
        }
        assert!(up_to_date(claim, set, pod));
    }

    #[test]
    fn owners_follow_the_policy() {
        let pod = pod("web-1", "Running", Some(10));
        let kept_by = |set: &StatefulSet| {
            let mut c = claim(Vec::new());
            converge(set, &pod, &mut c);
            c.owner_references().iter().map(|r| r.kind.clone()).collect::<Vec<_>>()
        };
        assert!(kept_by(&with_policy("Retain", "Retain", 2)).is_empty());
        assert_eq!(kept_by(&with_policy("Delete", "Retain", 2)), ["StatefulSet"]);
        assert!(kept_by(&with_policy("Retain", "Delete", 2)).is_empty());
        assert_eq!(kept_by(&with_policy("Delete", "Delete", 2)), ["StatefulSet"]);
        // Scaled down to one, web-1 is condemned: its claim goes with the pod.
        assert!(kept_by(&with_policy("Delete", "Retain", 1)) == ["StatefulSet"]);
        assert_eq!(kept_by(&with_policy("Retain", "Delete", 1)), ["Pod"]);
        assert_eq!(kept_by(&with_policy("Delete", "Delete", 1)), ["Pod"]);
        // Scaled back up, the set takes the claim back from the pod.
        let mut c = claim(vec![owner::reference(&pod)]);
        converge(&with_policy("Delete", "Delete", 2), &pod, &mut c);
        assert_eq!(c.owner_references()[0].kind, "StatefulSet");
    }

    #[test]
    fn other_controllers_and_stale_references_are_respected() {
        let set = with_policy("Delete", "Delete", 1);
        let pod = pod("web-1", "Running", Some(10));
        let other = OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "x".into(),
            uid: "x".into(),
            controller: Some(true),
            ..Default::default()
        };
        let mut c = claim(vec![other.clone(), owner::reference(&set)]);
        converge(&set, &pod, &mut c);
        assert_eq!(c.owner_references(), [other]);
        // A reference to an earlier web-1: left for the garbage collector, and the new web-1
        // waits.
        let mut earlier = owner::reference(&pod);
        earlier.uid = "earlier".into();
        let c = claim(vec![earlier]);
        assert!(up_to_date(&c, &set, &pod));
        assert!(is_stale(&c, &set, &Pod { metadata: pod.metadata.clone(), ..Default::default() }));
        assert!(!is_stale(&c, &with_policy("Delete", "Retain", 1), &pod));
    }
}
