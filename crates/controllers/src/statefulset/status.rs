//! A StatefulSet's status as Kubernetes reports it: replicas (pods that exist, being deleted
//! or not), readyReplicas (Running and Ready), availableReplicas (ready for minReadySeconds),
//! currentReplicas and updatedReplicas (pods not being deleted at the current and the update
//! revision), the two revisions, collisionCount and observedGeneration. A rolling update is
//! complete, and the update revision becomes the current one, once every pod is updated and
//! ready.

use super::health::{is_created, is_terminating, running_and_available, running_and_ready};
use super::identity::revision_of;
use crate::status::count;
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct SetStatus {
    pub observed_generation: Option<i64>,
    pub replicas: i32,
    pub ready_replicas: i32,
    pub available_replicas: i32,
    pub current_replicas: i32,
    pub updated_replicas: i32,
    pub current_revision: String,
    pub update_revision: String,
    pub collision_count: i32,
}

impl SetStatus {
    /// Counts `pods` (those a pass has yet to create count for nothing).
    pub fn count<'a>(&mut self, pods: impl IntoIterator<Item = &'a Arc<Pod>>, min_ready: i32, now: DateTime<Utc>) {
        (self.replicas, self.ready_replicas, self.available_replicas, self.current_replicas, self.updated_replicas) =
            (0, 0, 0, 0, 0);
        for pod in pods.into_iter().filter(|p| is_created(p)) {
            self.replicas += 1;
            if running_and_ready(pod) {
                self.ready_replicas += 1;
                if running_and_available(pod, min_ready, now) {
                    self.available_replicas += 1;
                }
            }
            if !is_terminating(pod) {
                let revision = revision_of(pod);
                self.current_replicas += (revision == self.current_revision) as i32;
                self.updated_replicas += (revision == self.update_revision) as i32;
            }
        }
    }

    /// Under RollingUpdate, every pod updated and ready makes the update revision current.
    pub fn complete_rolling_update(&mut self, set: &StatefulSet) {
        let strategy = set.spec.update_strategy.as_ref().and_then(|s| s.type_.as_deref());
        if strategy.unwrap_or("RollingUpdate") == "RollingUpdate"
            && self.updated_replicas == self.replicas
            && self.ready_replicas == self.replicas
        {
            self.current_replicas = self.updated_replicas;
            self.current_revision = self.update_revision.clone();
        }
    }

    /// The status as the API serializes it: counts left out when zero, but for replicas and
    /// availableReplicas.
    pub fn to_json(&self) -> Value {
        let omit_zero = |n: i32| count(n.max(0) as usize);
        let name = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
        json!({
            "observedGeneration": self.observed_generation,
            "replicas": self.replicas,
            "readyReplicas": omit_zero(self.ready_replicas),
            "currentReplicas": omit_zero(self.current_replicas),
            "updatedReplicas": omit_zero(self.updated_replicas),
            "availableReplicas": self.available_replicas,
            "currentRevision": name(&self.current_revision),
            "updateRevision": name(&self.update_revision),
            "collisionCount": self.collision_count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statefulset::health::tests::pod;
    use crate::statefulset::identity::{REVISION_LABEL, tests::set};
    use kube::ResourceExt;

    fn at(revision: &str, mut pod: Pod) -> Arc<Pod> {
        pod.labels_mut().insert(REVISION_LABEL.into(), revision.into());
        Arc::new(pod)
    }

    #[test]
    fn counts_and_completes_a_rollout() {
        let mut status =
            SetStatus { current_revision: "web-1".into(), update_revision: "web-2".into(), ..Default::default() };
        let pods = vec![
            at("web-1", pod("web-0", "Running", Some(100))),
            at("web-2", pod("web-1", "Running", Some(1))),
            at("web-2", pod("web-2", "Pending", None)),
            Arc::new(Pod::default()),
        ];
        status.count(&pods, 10, Utc::now());
        assert_eq!((status.replicas, status.ready_replicas, status.available_replicas), (3, 2, 1));
        assert_eq!((status.current_replicas, status.updated_replicas), (1, 2));
        let web = set("web", 3, None);
        status.complete_rolling_update(&web);
        assert_eq!(status.current_revision, "web-1");
        let done = vec![at("web-2", pod("web-0", "Running", Some(1))), at("web-2", pod("web-1", "Running", Some(1)))];
        status.count(&done, 0, Utc::now());
        status.complete_rolling_update(&web);
        assert_eq!((status.current_revision.as_str(), status.current_replicas), ("web-2", 2));
        let value = status.to_json();
        assert_eq!(value["availableReplicas"], 2);
        assert_eq!(value["collisionCount"], 0);
    }
}
