//! The PersistentVolumeClaims of a StatefulSet's pods: one per volumeClaimTemplate and
//! ordinal, named `<template>-<set>-<ordinal>`, with the template's labels and the set's
//! selector labels, mounted in the pod as the volume named after the template. They are
//! created before their pod, and again if one goes while its pod is Pending. Nothing here
//! deletes a claim: the retention policy ([`super::retention`]) leaves that to the garbage
//! collector.

use super::{Pass, identity};
use crate::Error;
use crate::pod_control::api_message;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, Volume};
use kube::ResourceExt;
use kube::api::{Api, PostParams};

pub fn templates(set: &StatefulSet) -> &[PersistentVolumeClaim] {
    set.spec.volume_claim_templates.as_deref().unwrap_or_default()
}

pub fn claim_name(template: &PersistentVolumeClaim, set: &StatefulSet, ordinal: i32) -> String {
    format!("{}-{}-{ordinal}", template.name_any(), set.name_any())
}

/// The claims of the pod with `ordinal`, as they are created.
pub fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let selector_labels = set.spec.selector.match_labels.clone().unwrap_or_default();
    let claims = templates(set).iter().map(|template| {
        let mut claim = template.clone();
        claim.metadata.name = Some(claim_name(template, set, ordinal));
        claim.metadata.namespace = set.namespace();
        claim.metadata.labels.get_or_insert_default().extend(selector_labels.clone());
        claim.status = None;
        claim
    });
    claims.collect()
}

fn claim_volume(name: String, claim_name: String) -> Volume {
    let source = PersistentVolumeClaimVolumeSource { claim_name, read_only: Some(false) };
    Volume { name, persistent_volume_claim: Some(source), ..Default::default() }
}

/// Mounts the pod's claims as the volumes named after their templates, replacing volumes of
/// those names and keeping the others.
pub fn set_storage(set: &StatefulSet, pod: &mut Pod) {
    let Some(ordinal) = identity::ordinal(pod) else { return };
    let spec = pod.spec.get_or_insert_default();
    let names: Vec<String> = templates(set).iter().map(|t| t.name_any()).collect();
    let mut volumes: Vec<Volume> =
        templates(set).iter().map(|t| claim_volume(t.name_any(), claim_name(t, set, ordinal))).collect();
    let others = spec.volumes.take().into_iter().flatten().filter(|v| !names.contains(&v.name));
    volumes.extend(others);
    spec.volumes = (!volumes.is_empty()).then_some(volumes);
}

/// Whether the pod mounts each of its claims under its template's name.
pub fn storage_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let Some(ordinal) = identity::ordinal(pod) else { return false };
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
    templates(set).iter().all(|t| {
        let volume = volumes.into_iter().flatten().find(|v| v.name == t.name_any());
        let claim = volume.and_then(|v| v.persistent_volume_claim.as_ref());
        claim.is_some_and(|c| c.claim_name == claim_name(t, set, ordinal))
    })
}

impl Pass<'_> {
    /// Creates the pod's claims that do not exist yet; an error says which could not be, or
    /// which are being deleted (the pod waits for them to go, then gets new ones).
    pub async fn create_claims(&self, pod: &Pod) -> Result<(), Error> {
        let Some(ordinal) = identity::ordinal(pod) else { return Ok(()) };
        let namespace = self.namespace();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.ctx.client.clone(), &namespace);
        let mut errors = Vec::new();
        for claim in claims_for(self.set, ordinal) {
            let name = claim.name_any();
            if let Some(existing) = self.ctx.informers.persistent_volume_claims.get(&namespace, &name) {
                if existing.metadata.deletion_timestamp.is_some() {
                    errors.push(format!("pvc {name} is being deleted"));
                }
                continue;
            }
            match api.create(&PostParams::default(), &claim).await {
                Ok(_) => self.claim_event(pod, &name, None).await,
                // There already, but not yet seen: the next pass looks at it.
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    errors.push(format!("failed to create PVC {name}: {}", e.message))
                }
                Err(e) => {
                    self.claim_event(pod, &name, Some(&api_message(&e))).await;
                    errors.push(format!("failed to create PVC {name}: {}", api_message(&e)));
                }
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(anyhow::anyhow!(errors.join(", ")).into()) }
    }

    async fn claim_event(&self, pod: &Pod, claim: &str, error: Option<&str>) {
        let (pod, set) = (pod.name_any(), self.set.name_any());
        let (kind, reason, message) = match error {
            None => {
                ("Normal", "SuccessfulCreate", format!("create Claim {claim} Pod {pod} in StatefulSet {set} success"))
            }
            Some(e) => (
                "Warning",
                "FailedCreate",
                format!("create Claim {claim} for Pod {pod} in StatefulSet {set} failed error: {e}"),
            ),
        };
        events::record(&self.ctx.client, super::COMPONENT, self.set, kind, reason, &message).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statefulset::identity::tests::set;
    use serde_json::json;

    fn with_template(mut set: StatefulSet) -> StatefulSet {
        let template = json!({"metadata": {"name": "www", "labels": {"tier": "data"}},
                              "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
        set.spec.volume_claim_templates = Some(vec![serde_json::from_value(template).unwrap()]);
        set
    }

    #[test]
    fn each_pod_gets_its_own_claims() {
        let set = with_template(set("web", 2, None));
        let claims = claims_for(&set, 1);
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].name_any(), "www-web-1");
        assert_eq!(claims[0].namespace().as_deref(), Some("ns"));
        assert_eq!(claims[0].labels()["tier"], "data");
        assert_eq!(claims[0].labels()["app"], "web");
        let mut pod = identity::new_pod(&set, 1, "rev");
        assert!(storage_matches(&set, &pod));
        let volumes = pod.spec.as_ref().unwrap().volumes.clone().unwrap();
        assert_eq!(volumes[0].persistent_volume_claim.as_ref().unwrap().claim_name, "www-web-1");
        // A volume of the template's name in the pod template is replaced; others stay.
        pod.spec.as_mut().unwrap().volumes = Some(vec![
            Volume { name: "www".into(), empty_dir: Some(Default::default()), ..Default::default() },
            Volume { name: "scratch".into(), empty_dir: Some(Default::default()), ..Default::default() },
        ]);
        assert!(!storage_matches(&set, &pod));
        set_storage(&set, &mut pod);
        assert!(storage_matches(&set, &pod));
        let names: Vec<_> = pod.spec.unwrap().volumes.unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names, ["www", "scratch"]);
    }
}
