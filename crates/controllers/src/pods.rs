//! What controllers read from a pod: whether it is active, ready, available, and since when.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Pending")
}

/// Neither finished (Succeeded or Failed) nor being deleted: a replica that counts.
pub fn is_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && !is_terminal(pod)
}

pub fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Being deleted but not yet finished: counted as terminatingReplicas.
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some() && !is_terminal(pod)
}

pub fn timestamp(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> DateTime<Utc> {
    DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32).unwrap_or_default()
}

/// When the pod last became Ready, if it is Ready.
pub fn ready_since(pod: &Pod) -> Option<Option<DateTime<Utc>>> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions.iter().find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(ready.last_transition_time.as_ref().map(timestamp))
}

pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` at `now`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: DateTime<Utc>) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => since + chrono::Duration::seconds(min_ready_seconds as i64) <= now,
    }
}

/// The most restarts of any of its containers.
pub fn max_restarts(pod: &Pod) -> i32 {
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    statuses.into_iter().flatten().map(|c| c.restart_count).max().unwrap_or(0)
}

pub fn node_name(pod: &Pod) -> &str {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("")
}

/// A pod as its controller creates it from a template: the template's labels, annotations,
/// finalizers and spec, owned by the controller, named `name` in `namespace`.
pub fn from_template(
    template: &k8s_openapi::api::core::v1::PodTemplateSpec,
    owner: k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    name: String,
    namespace: &str,
) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.to_string()),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// A pod from a template named as the API server names one from `generateName: base`, which
/// it keeps (as Kubernetes' controllers' pods show it); the controller knows the name before
/// creating, so that it can expect it.
pub fn generated_from_template(
    template: &k8s_openapi::api::core::v1::PodTemplateSpec,
    owner: k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    base: &str,
    namespace: &str,
) -> Pod {
    let mut pod = from_template(template, owner, generate_name(base), namespace);
    pod.metadata.generate_name = Some(base.to_string());
    pod
}

/// `base` and five random characters, as the API server's generateName makes names.
pub fn generate_name(base: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    const MAX_BASE: usize = 63 - 5;
    let base = if base.len() > MAX_BASE { &base[..MAX_BASE] } else { base };
    let random = uuid::Uuid::new_v4();
    let suffix: String =
        random.as_bytes()[..5].iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect();
    format!("{base}{suffix}")
}
