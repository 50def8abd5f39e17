//! Which pods a controller removes first when it has too many, in kube-controller-manager's
//! order: unscheduled before scheduled, Pending before Unknown before Running, not ready
//! before ready, lower `controller.kubernetes.io/pod-deletion-cost` first, pods doubled up
//! on a node with their siblings first, ready for less time first, more restarts first,
//! newer first. Times are compared in powers of two of their age (LogarithmicScaleDown), so
//! that pods of about the same age are picked at random (by uid) rather than strictly
//! youngest first.

use crate::pods::{is_ready, max_restarts, node_name, ready_since, timestamp};
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use std::cmp::Ordering;
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

/// log2 of the age in nanoseconds; -1 for no age.
fn age_bucket(t: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let age = (now - t).num_nanoseconds().unwrap_or(i64::MAX);
    if age <= 0 { -1 } else { (age as f64).log2() as i64 }
}

/// Younger (in powers of two) first; the same bucket orders by uid.
fn by_age(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>, pods: (&Pod, &Pod), now: DateTime<Utc>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        // An unknown time sorts first.
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) if a == b => Ordering::Equal,
        (Some(a), Some(b)) => match age_bucket(a, now).cmp(&age_bucket(b, now)) {
            Ordering::Equal => pods.0.metadata.uid.cmp(&pods.1.metadata.uid),
            other => other,
        },
    }
}

fn compare(a: &Pod, b: &Pod, rank: &HashMap<&str, usize>, now: DateTime<Utc>) -> Ordering {
    let on_node = |p: &Pod| rank.get(node_name(p)).copied().unwrap_or(0);
    (!node_name(a).is_empty())
        .cmp(&!node_name(b).is_empty())
        .then(phase_rank(a).cmp(&phase_rank(b)))
        .then(is_ready(a).cmp(&is_ready(b)))
        .then(deletion_cost(a).cmp(&deletion_cost(b)))
        .then(on_node(b).cmp(&on_node(a)))
        .then_with(|| {
            if is_ready(a) && is_ready(b) {
                by_age(ready_since(a).flatten(), ready_since(b).flatten(), (a, b), now)
            } else {
                Ordering::Equal
            }
        })
        .then(max_restarts(b).cmp(&max_restarts(a)))
        .then_with(|| {
            let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(timestamp);
            by_age(created(a), created(b), (a, b), now)
        })
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
        pods.sort_by(|a, b| compare(a, b, &rank, now));
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
        let conditions = if ready { json!([{"type": "Ready", "status": "True", "lastTransitionTime": created}]) } else { json!([]) };
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
        let order: Vec<_> = to_delete(pods.clone(), &pods, 5).iter().map(|p| p.metadata.name.clone().unwrap()).collect();
        // The two ready pods sharing n1 go before the one alone on n3; between them, of the
        // same age, the uid decides.
        assert_eq!(order, ["unscheduled", "pending", "not-ready", "doubled-up", "old-ready"]);
    }
}
