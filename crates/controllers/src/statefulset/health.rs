//! What a StatefulSet reads from its pods' phases and conditions. Unlike a ReplicaSet it
//! counts a pod as ready only while it is Running, and holds back while any pod it depends on
//! is being deleted.

use crate::pods::{is_available, is_ready};
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default()
}

/// Whether the pod exists: the API server gives every pod it stores a phase; the pods a pass
/// has yet to create have none.
pub fn is_created(pod: &Pod) -> bool {
    !phase(pod).is_empty()
}

pub fn is_pending(pod: &Pod) -> bool {
    phase(pod) == "Pending"
}

pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

pub fn running_and_ready(pod: &Pod) -> bool {
    phase(pod) == "Running" && is_ready(pod)
}

pub fn running_and_available(pod: &Pod, min_ready_seconds: i32, now: DateTime<Utc>) -> bool {
    phase(pod) == "Running" && is_available(pod, min_ready_seconds, now)
}

/// Not available for minReadySeconds, or being deleted: what maxUnavailable counts.
pub fn is_unavailable(pod: &Pod, min_ready_seconds: i32, now: DateTime<Utc>) -> bool {
    !running_and_available(pod, min_ready_seconds, now) || is_terminating(pod)
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use serde_json::json;

    /// A pod as the API shows it: `phase`, Ready since `ready_secs_ago` if given.
    pub fn pod(name: &str, phase: &str, ready_secs_ago: Option<i64>) -> Pod {
        let conditions = ready_secs_ago.map(|ago| {
            let since = (Utc::now() - chrono::Duration::seconds(ago)).to_rfc3339();
            json!([{"type": "Ready", "status": "True", "lastTransitionTime": since}])
        });
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
            "spec": {"containers": []},
            "status": {"phase": phase, "conditions": conditions},
        }))
        .unwrap()
    }

    #[test]
    fn readiness_needs_running_and_availability_needs_time() {
        let now = Utc::now();
        assert!(!is_created(&Pod::default()));
        assert!(is_created(&pod("a", "Pending", None)) && is_pending(&pod("a", "Pending", None)));
        assert!(!running_and_ready(&pod("a", "Pending", Some(5))));
        let ready = pod("a", "Running", Some(5));
        assert!(running_and_ready(&ready));
        assert!(running_and_available(&ready, 3, now) && !running_and_available(&ready, 60, now));
        assert!(is_unavailable(&ready, 60, now) && !is_unavailable(&ready, 0, now));
        let mut deleting = ready.clone();
        deleting.metadata.deletion_timestamp = Some(serde_json::from_value(json!(now.to_rfc3339())).unwrap());
        assert!(is_terminating(&deleting) && is_unavailable(&deleting, 0, now));
    }
}
