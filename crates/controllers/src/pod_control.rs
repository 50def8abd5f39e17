//! Creating and deleting a controller's pods as kube-controller-manager's PodControl does:
//! each write is expected before it is made (and forgotten if it fails, since nothing will
//! come back for it), and each outcome is an event on the owner in Kubernetes' words
//! (SuccessfulCreate, FailedCreate, SuccessfulDelete, FailedDelete).

use crate::expectations::Expectations;
use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use std::sync::Arc;

/// How many names a pod with a generated name is tried under, as the API server tries.
const NAME_ATTEMPTS: usize = 8;

/// Whose pods these are, and who says so in events.
pub struct PodControl<'a, O> {
    pub client: &'a kube::Client,
    pub component: &'a str,
    pub owner: &'a O,
    pub expectations: &'a Expectations,
}

impl<O: Resource<DynamicType = ()>> PodControl<'_, O> {
    fn owner_uid(&self) -> &str {
        self.owner.meta().uid.as_deref().unwrap_or_default()
    }

    fn api(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), self.owner.meta().namespace.as_deref().unwrap_or_default())
    }

    /// Creates `pod` (named already, so that it can be expected); the error is the
    /// FailedCreate message. A generated name that is taken is generated again, as the API
    /// server does for generateName: among thousands of pods, five random characters collide.
    pub async fn create(&self, mut pod: Pod) -> Result<(), String> {
        let mut attempts = 1;
        loop {
            let name = pod.metadata.name.clone().unwrap_or_default();
            self.expectations.expect_creation(self.owner_uid(), &name);
            let result = self.api().create(&PostParams::default(), &pod).await;
            if result.is_err() {
                self.expectations.forget(self.owner_uid(), &name);
            }
            match (result, &pod.metadata.generate_name) {
                (Err(kube::Error::Api(e)), Some(base)) if e.reason == "AlreadyExists" && attempts < NAME_ATTEMPTS => {
                    pod.metadata.name = Some(crate::pods::generate_name(base));
                    attempts += 1;
                }
                (result, _) => return self.created(&name, result).await,
            }
        }
    }

    /// Records how creating the pod `name` went.
    async fn created(&self, name: &str, result: kube::Result<Pod>) -> Result<(), String> {
        match result {
            Ok(_) => {
                self.event("Normal", "SuccessfulCreate", &format!("Created pod: {name}")).await;
                Ok(())
            }
            Err(e) => {
                let message = format!("Error creating: {}", api_message(&e));
                self.event("Warning", "FailedCreate", &message).await;
                Err(message)
            }
        }
    }

    /// Creates `pods` in batches that double while they succeed (1, 2, 4, ...), as
    /// kube-controller-manager's slow start does, so that a failing template costs one
    /// error rather than hundreds; stops at the first batch with a failure.
    pub async fn create_all(&self, pods: Vec<Pod>) -> Result<(), String> {
        let mut pods = pods.into_iter();
        let mut batch = 1;
        loop {
            let creations: Vec<_> = pods.by_ref().take(batch).map(|pod| self.create(pod)).collect();
            if creations.is_empty() {
                return Ok(());
            }
            if let Some(error) = join_all(creations).await.into_iter().find_map(Result::err) {
                return Err(error);
            }
            batch *= 2;
        }
    }

    /// Deletes `pods` at once; the error is the first FailedDelete message.
    pub async fn delete_all(&self, pods: &[Arc<Pod>]) -> Result<(), String> {
        let deletions = pods.iter().map(|pod| self.delete(pod));
        join_all(deletions).await.into_iter().find_map(Result::err).map_or(Ok(()), Err)
    }

    /// Deletes `pod`, on the condition that it is still the pod that was read; one already
    /// gone or replaced is not an error. The error is the FailedDelete message.
    pub async fn delete(&self, pod: &Pod) -> Result<(), String> {
        let (name, uid) = (pod.metadata.name.clone().unwrap_or_default(), pod.metadata.uid.clone().unwrap_or_default());
        self.expectations.expect_deletion(self.owner_uid(), &uid);
        let preconditions = Preconditions { uid: Some(uid.clone()), resource_version: None };
        match self.api().delete(&name, &DeleteParams { preconditions: Some(preconditions), ..Default::default() }).await
        {
            Ok(_) => {
                self.event("Normal", "SuccessfulDelete", &format!("Deleted pod: {name}")).await;
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {
                self.expectations.forget(self.owner_uid(), &uid);
                Ok(())
            }
            Err(e) => {
                self.expectations.forget(self.owner_uid(), &uid);
                let message = format!("Error deleting: {}", api_message(&e));
                self.event("Warning", "FailedDelete", &message).await;
                Err(message)
            }
        }
    }

    pub async fn event(&self, type_: &str, reason: &str, message: &str) {
        events::record(self.client, self.component, self.owner, type_, reason, message).await;
    }
}

/// What the API server said, without the client's wrapping.
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}
