//! Creating, updating and deleting a StatefulSet's pods, each with the event Kubernetes
//! records ("create Pod web-0 in StatefulSet web successful") and an expectation, so that a
//! pass working from a cache that has not yet seen the change does not make it again.
//! A pod's claims are created before it, and given the retention policy's owners after.

use super::{Pass, claims, identity};
use crate::Error;
use crate::pod_control::api_message;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};

impl Pass<'_> {
    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace())
    }

    /// Records `verb` on the pod as an event of the set: SuccessfulCreate, FailedDelete, ...
    async fn pod_event(&self, verb: &str, pod: &Pod, error: Option<&str>) {
        let (pod, set) = (pod.name_any(), self.set.name_any());
        let title = format!("{}{}", verb[..1].to_uppercase(), &verb[1..]);
        let (kind, reason, message) = match error {
            None => {
                ("Normal", format!("Successful{title}"), format!("{verb} Pod {pod} in StatefulSet {set} successful"))
            }
            Some(e) => (
                "Warning",
                format!("Failed{title}"),
                format!("{verb} Pod {pod} in StatefulSet {set} failed error: {e}"),
            ),
        };
        events::record(&self.ctx.client, super::COMPONENT, self.set, kind, &reason, &message).await;
    }

    /// Creates the pod's claims, then the pod, then sets the claims' owners.
    pub async fn create_pod(&self, pod: &Pod) -> Result<(), Error> {
        if let Err(e) = self.create_claims(pod).await {
            self.pod_event("create", pod, Some(&e.to_string())).await;
            return Err(e);
        }
        let name = pod.name_any();
        self.ctx.expectations.expect_creation(self.uid(), &name);
        match self.pods().create(&PostParams::default(), pod).await {
            Ok(created) => {
                if let Err(e) = self.apply_policy(&created).await {
                    self.pod_event("update", &created, Some(&e.to_string())).await;
                    return Err(e);
                }
                self.pod_event("create", pod, None).await;
                Ok(())
            }
            Err(e) => {
                self.ctx.expectations.forget(self.uid(), &name);
                // A pod of that name already there is seen by the next pass.
                if !matches!(&e, kube::Error::Api(s) if s.code == 409) {
                    self.pod_event("create", pod, Some(&api_message(&e))).await;
                }
                Err(e.into())
            }
        }
    }

    /// Deletes the pod (the very one seen: a newer pod of its name stays).
    pub async fn delete_pod(&self, pod: &Pod) -> Result<(), Error> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        self.ctx.expectations.expect_deletion(self.uid(), &uid);
        let preconditions = Preconditions { uid: Some(uid.clone()), resource_version: None };
        match self
            .pods()
            .delete(&pod.name_any(), &DeleteParams { preconditions: Some(preconditions), ..Default::default() })
            .await
        {
            Ok(_) => {
                self.pod_event("delete", pod, None).await;
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {
                self.ctx.expectations.forget(self.uid(), &uid);
                Ok(())
            }
            Err(e) => {
                self.ctx.expectations.forget(self.uid(), &uid);
                self.pod_event("delete", pod, Some(&api_message(&e))).await;
                Err(e.into())
            }
        }
    }

    /// Whether the pod has lost its identity, its storage, or its claims' owners.
    pub fn needs_update(&self, pod: &Pod) -> bool {
        let set = &self.update_set;
        !(identity::identity_matches(set, pod) && claims::storage_matches(set, pod) && self.claims_match_policy(pod))
    }

    /// Brings a pod back to its identity, its storage and its claims' owners.
    pub async fn update_pod(&self, pod: &Pod) -> Result<(), Error> {
        let set = &self.update_set;
        let mut updated = pod.clone();
        let mut dirty = false;
        if !identity::identity_matches(set, &updated) {
            identity::set_identity(set, &mut updated);
            dirty = true;
        }
        let result = async {
            if !claims::storage_matches(set, &updated) {
                claims::set_storage(set, &mut updated);
                dirty = true;
                self.create_claims(&updated).await?;
            }
            if !self.claims_match_policy(&updated) {
                self.apply_policy(&updated).await?;
                dirty = true;
            }
            if dirty {
                self.pods().replace(&updated.name_any(), &PostParams::default(), &updated).await?;
            }
            Ok::<_, Error>(())
        }
        .await;
        if dirty || result.is_err() {
            let error = result.as_ref().err().map(|e| e.to_string());
            self.pod_event("update", pod, error.as_deref()).await;
        }
        result
    }
}
