//! Which pods a controller removes first when it has too many, in kube-controller-manager's
//! order: unscheduled before scheduled, Pending before Unknown before Running, not ready
//! before ready, lower `controller.kubernetes.io/pod-deletion-cost` first, pods doubled up
//! on a node with their siblings first, ready for less time first, more restarts first,
//! newer first. Times are compared in powers of two of their age (LogarithmicScaleDown), so
//! that pods of about the same age are picked by uid (at random) rather than strictly
//! youngest first.

use crate::pods::{is_ready, max_restarts, node_name, ready_since, timestamp};
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;

const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

fn phase_rank(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") | None => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 3,
    }
}

fn deletion_cost(pod: &Pod) -> i32 {
    let annotations = pod.metadata.annotations.as_ref();
    annotations.and_then(|a| a.get(DELETION_COST)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// log2 of the age in nanoseconds: pods of about the same age share a bucket. An unknown
/// time sorts first.
fn age_bucket(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> i64 {
    match t {
        None => -2,
        Some(t) => {
            let age = (now - t).num_nanoseconds().unwrap_or(i64::MAX);
            if age <= 0 { -1 } else { (age as f64).log2() as i64 }
        }
    }
}

/// The order key: smaller goes first. A key rather than a comparison, so that the order is
/// total (a sort may panic on one that is not).
type Key = (bool, u8, bool, i32, Reverse<usize>, i64, Reverse<i32>, i64, String);

fn key(pod: &Pod, rank: &HashMap<&str, usize>, now: DateTime<Utc>) -> Key {
    let ready = is_ready(pod);
    let ready_bucket = if ready { age_bucket(ready_since(pod).flatten(), now) } else { 0 };
    (
        !node_name(pod).is_empty(),
        phase_rank(pod),
        ready,
        deletion_cost(pod),
        Reverse(rank.get(node_name(pod)).copied().unwrap_or(0)),
        ready_bucket,
        Reverse(max_restarts(pod)),
        age_bucket(pod.metadata.creation_timestamp.as_ref().map(timestamp), now),
        pod.metadata.uid.clone().unwrap_or_default(),
    )
}

/// The `count` pods of `pods` to delete first; `related` are the pods of the owner and its
/// siblings (the other ReplicaSets of the same Deployment), counted per node.
pub fn to_delete(mut pods: Vec<Arc<Pod>>, related: &[Arc<Pod>], count: usize) -> Vec<Arc<Pod>> {
    if count < pods.len() {
        let mut rank: HashMap<&str, usize> = HashMap::new();
        for pod in related {
            *rank.entry(node_name(pod)).or_default() += 1;
        }
        let now = Utc::now();
        pods.sort_by_cached_key(|p| key(p, &rank, now));
    }
    pods.truncate(count);
    pods
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: &str, phase: &str, ready: bool, created_secs_ago: i64) -> Arc<Pod> {
        let created = (Utc::now() - chrono::Duration::seconds(created_secs_ago)).to_rfc3339();
        let conditions =
            if ready { json!([{"type": "Ready", "status": "True", "lastTransitionTime": created}]) } else { json!([]) };
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "uid": name, "creationTimestamp": created},
                "spec": {"containers": [], "nodeName": if node.is_empty() { None } else { Some(node) }},
                "status": {"phase": phase, "conditions": conditions},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn ranks_as_kube_controller_manager_does() {
        let pods = vec![
            pod("old-ready", "n1", "Running", true, 100_000),
            pod("unscheduled", "", "Pending", false, 10),
            pod("pending", "n2", "Pending", false, 10),
            pod("not-ready", "n2", "Running", false, 10),
            pod("young-ready", "n3", "Running", true, 10),
            pod("doubled-up", "n1", "Running", true, 100_000),
        ];
        let order: Vec<_> =
            to_delete(pods.clone(), &pods, 5).iter().map(|p| p.metadata.name.clone().unwrap()).collect();
        // The two ready pods sharing n1 go before the one alone on n3; between them, of the
        // same age, the uid decides.
        assert_eq!(order, ["unscheduled", "pending", "not-ready", "doubled-up", "old-ready"]);
    }
}
