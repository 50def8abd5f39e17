//! The RollingUpdate strategy: once scaling is done, the pods not at the update revision are
//! deleted from the highest ordinal down to the partition (pods below it stay at the current
//! revision), so that scaling recreates them at the update revision; never more pods
//! unavailable at once than `maxUnavailable` (a number, or a percentage of replicas rounded
//! down; at least one). OnDelete never gets here: its pods are updated when deleted.

use super::Pass;
use super::health::{is_created, is_terminating, is_unavailable};
use super::identity::{self, revision_of};
use super::status::SetStatus;
use crate::Error;
use crate::int_or_percent::scaled;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use std::sync::Arc;

/// (partition, maxUnavailable) as the set's rollingUpdate asks.
fn bounds(set: &StatefulSet) -> (usize, usize) {
    let rolling = set.spec.update_strategy.as_ref().and_then(|s| s.rolling_update.as_ref());
    let partition = rolling.and_then(|r| r.partition).unwrap_or(0).max(0) as usize;
    let max_unavailable = rolling.and_then(|r| r.max_unavailable.as_ref());
    let max_unavailable =
        max_unavailable.map_or(1, |m| scaled(Some(m), "", identity::replicas(set), false)).max(1) as usize;
    (partition, max_unavailable)
}

/// The pods to delete next, highest ordinal first: those above the partition not at the
/// update revision and not already going, as many as maxUnavailable leaves room for.
fn to_replace<'a>(
    set: &StatefulSet,
    replicas: &'a [Arc<Pod>],
    update_revision: &str,
    min_ready: i32,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<&'a Arc<Pod>> {
    let (partition, max_unavailable) = bounds(set);
    let unavailable = replicas.iter().filter(|p| is_unavailable(p, min_ready, now)).count();
    let room = max_unavailable.saturating_sub(unavailable);
    let outdated = replicas.iter().enumerate().rev().take_while(|(index, _)| *index >= partition);
    let outdated = outdated
        .map(|(_, pod)| pod)
        .filter(|p| is_created(p) && revision_of(p) != update_revision && !is_terminating(p));
    outdated.take(room).collect()
}

impl Pass<'_> {
    pub async fn roll(&self, replicas: &[Arc<Pod>], status: &mut SetStatus) -> Result<(), Error> {
        for pod in to_replace(self.set, replicas, &self.update_revision, self.min_ready, self.now) {
            self.delete_pod(pod).await?;
            status.current_replicas -= 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statefulset::health::tests::pod;
    use crate::statefulset::identity::{REVISION_LABEL, tests::set};
    use kube::ResourceExt;
    use serde_json::json;

    fn pods(revisions: &[&str]) -> Vec<Arc<Pod>> {
        let pods = revisions.iter().enumerate().map(|(i, revision)| {
            let mut pod = pod(&format!("web-{i}"), "Running", Some(100));
            pod.labels_mut().insert(REVISION_LABEL.into(), revision.to_string());
            Arc::new(pod)
        });
        pods.collect()
    }

    fn with_rolling(partition: i32, max_unavailable: serde_json::Value) -> StatefulSet {
        let mut web = set("web", 4, None);
        web.spec.update_strategy = Some(
            serde_json::from_value(json!({"type": "RollingUpdate",
            "rollingUpdate": {"partition": partition, "maxUnavailable": max_unavailable}}))
            .unwrap(),
        );
        web
    }

    fn names(pods: Vec<&Arc<Pod>>) -> Vec<String> {
        pods.into_iter().map(|p| p.name_any()).collect()
    }

    #[test]
    fn rolls_from_the_top_down_to_the_partition() {
        let now = chrono::Utc::now();
        let replicas = pods(&["old", "old", "old", "new"]);
        assert_eq!(names(to_replace(&with_rolling(0, json!(1)), &replicas, "new", 0, now)), ["web-2"]);
        assert_eq!(names(to_replace(&with_rolling(0, json!("50%")), &replicas, "new", 0, now)), ["web-2", "web-1"]);
        assert_eq!(names(to_replace(&with_rolling(2, json!(3)), &replicas, "new", 0, now)), ["web-2"]);
        assert!(to_replace(&with_rolling(3, json!(3)), &replicas, "new", 0, now).is_empty());
        // One pod already unavailable uses up maxUnavailable=1.
        let mut waiting = replicas.clone();
        waiting[3] = Arc::new(pod("web-3", "Pending", None));
        assert!(to_replace(&with_rolling(0, json!(1)), &waiting, "new", 0, now).is_empty());
        assert_eq!(bounds(&with_rolling(0, json!("10%"))), (0, 1));
    }
}
