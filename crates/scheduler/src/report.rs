//! Telling users why a pod was not scheduled, in kube-scheduler's words: a FailedScheduling
//! event and the pod's PodScheduled=False condition, both saying how many nodes failed for
//! which reason.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// `0/5 nodes are available: 2 Insufficient cpu, 3 node(s) didn't match Pod's node
/// affinity/selector.` The counts and reasons are sorted as text, as Kubernetes sorts them.
pub fn unschedulable_message(total: usize, reasons: &BTreeMap<String, usize>) -> String {
    let mut parts: Vec<String> = reasons.iter().map(|(reason, n)| format!("{n} {reason}")).collect();
    parts.sort();
    if parts.is_empty() {
        return format!("0/{total} nodes are available.");
    }
    format!("0/{total} nodes are available: {}.", parts.join(", "))
}

/// The FailedScheduling event and PodScheduled=False condition, from the pod's profile.
pub async fn failed_scheduling(client: kube::Client, scheduler: String, pod: Arc<Pod>, message: String) {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let current = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
        .and_then(|c| c.message.as_deref());
    if current == Some(message.as_str()) {
        return;
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let condition = json!({"status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                                      "message": message, "lastProbeTime": null, "lastTransitionTime": now}]}});
    if let Err(e) = pods.patch_status(&name, &PatchParams::default(), &Patch::Strategic(condition)).await {
        tracing::debug!(pod = name, error = %e, "could not set PodScheduled=False");
    }
    event(&client, &scheduler, &pod, "Warning", "FailedScheduling", &message).await;
}

/// The Scheduled event, once the binding is written.
pub async fn scheduled(client: kube::Client, scheduler: String, pod: Arc<Pod>, node: String) {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let message = format!("Successfully assigned {namespace}/{name} to {node}");
    event(&client, &scheduler, &pod, "Normal", "Scheduled", &message).await;
}

/// Records an event about a pod, from the scheduler profile that handled it.
pub async fn event(client: &kube::Client, scheduler: &str, pod: &Pod, type_: &str, reason: &str, message: &str) {
    events::record(client, scheduler, pod, type_, reason, message).await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_message_reads_like_kube_schedulers() {
        let reasons = [
            ("node(s) didn't match Pod's node affinity/selector".to_string(), 4997),
            ("Insufficient cpu".to_string(), 3),
        ];
        assert_eq!(
            super::unschedulable_message(5000, &reasons.into_iter().collect()),
            "0/5000 nodes are available: 3 Insufficient cpu, 4997 node(s) didn't match Pod's node affinity/selector."
        );
    }
}
