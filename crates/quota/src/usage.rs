//! What one object charges to a quota, by quota resource name, as Kubernetes' quota
//! evaluators count it: every object its `count/<resource>[.<group>]`, the core kinds
//! their legacy counts (`pods`, `services`, `secrets`, ...), pods their requests and
//! limits (`cpu`, `requests.memory`, `limits.cpu`, ...; finished pods only their object
//! count), Services their load balancers and node ports, claims their storage (also per
//! storage class).

use crate::pod_resources::{self, Side};
use crate::quantity::Amount;
use crate::resource_list::ResourceList;
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};

/// The core resources quotas count under their own name as well as `count/<resource>`.
const LEGACY_COUNTS: [&str; 7] =
    ["pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps", "persistentvolumeclaims"];

/// `count/pods`, `count/deployments.apps`.
pub fn object_count_name(group: &str, plural: &str) -> String {
    if group.is_empty() { format!("count/{plural}") } else { format!("count/{plural}.{group}") }
}

/// What any object charges for existing: its object count (and legacy count).
pub fn object_count(group: &str, plural: &str) -> ResourceList {
    let mut usage = ResourceList::from([(object_count_name(group, plural), Amount::count(1))]);
    if group.is_empty() && LEGACY_COUNTS.contains(&plural) {
        usage.insert(plural.to_string(), Amount::count(1));
    }
    usage
}

/// The kind (group, plural) whose objects a quota resource counts: `requests.cpu` is
/// counted from pods, `services.nodeports` from Services, `count/jobs.batch` from Jobs.
/// None for a name no evaluator knows.
pub fn counted_kind(resource: &str) -> Option<(String, String)> {
    let core = |plural: &str| Some((String::new(), plural.to_string()));
    if let Some(counted) = resource.strip_prefix("count/") {
        let (plural, group) = counted.split_once('.').unwrap_or((counted, ""));
        return Some((group.to_string(), plural.to_string()));
    }
    if LEGACY_COUNTS.contains(&resource) {
        return core(resource);
    }
    if resource == "requests.storage"
        || resource.ends_with(".storageclass.storage.k8s.io/persistentvolumeclaims")
        || resource.ends_with(".storageclass.storage.k8s.io/requests.storage")
    {
        return core("persistentvolumeclaims");
    }
    if resource.starts_with("services.") {
        return core("services");
    }
    let pod_resource = matches!(resource, "cpu" | "memory" | "ephemeral-storage")
        || resource.starts_with("requests.")
        || resource.starts_with("limits.")
        || resource.starts_with("hugepages-");
    if pod_resource { core("pods") } else { None }
}

/// Whether a pod still charges its compute resources at `now`: not finished, and not past
/// the end of its deletion grace period.
pub fn pod_is_charged(pod: &Pod, now: DateTime<Utc>) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return false;
    }
    match (&pod.metadata.deletion_timestamp, pod.metadata.deletion_grace_period_seconds) {
        (Some(at), Some(grace)) => {
            let at = DateTime::from_timestamp(at.0.as_second(), 0).unwrap_or_default();
            now <= at + chrono::Duration::seconds(grace)
        }
        _ => true,
    }
}

/// Whether a resource name is an extended resource (`example.com/dongle`), which quotas
/// only count as `requests.<name>`.
fn is_extended(name: &str) -> bool {
    name.contains('/') && !name.starts_with("kubernetes.io/") && !name.starts_with("requests.")
}

/// The compute resources of a pod's (or one container's) requests and limits, by quota
/// resource name.
pub fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut usage = ResourceList::new();
    for name in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(request) = requests.get(name) {
            usage.insert(name.to_string(), *request);
            usage.insert(format!("requests.{name}"), *request);
        }
        if let Some(limit) = limits.get(name) {
            usage.insert(format!("limits.{name}"), *limit);
        }
    }
    for (name, request) in requests {
        if name.starts_with("hugepages-") {
            usage.insert(name.clone(), *request);
            usage.insert(format!("requests.{name}"), *request);
        } else if is_extended(name) {
            usage.insert(format!("requests.{name}"), *request);
        }
    }
    usage
}

/// What a pod charges: its counts, and while it runs its requests and limits.
pub fn pod_usage(pod: &Pod, now: DateTime<Utc>) -> ResourceList {
    if !pod_is_charged(pod, now) {
        return ResourceList::from([(object_count_name("", "pods"), Amount::count(1))]);
    }
    let mut usage = object_count("", "pods");
    if let Some(spec) = &pod.spec {
        let compute = compute_usage(&pod_resources::pod(spec, Side::Requests), &pod_resources::pod(spec, Side::Limits));
        usage.extend(compute);
    }
    usage
}

/// What a Service charges: its counts, one load balancer if it is one, and a node port for
/// each port of a NodePort Service (or a LoadBalancer that allocates node ports).
pub fn service_usage(service: &Service) -> ResourceList {
    let mut usage = object_count("", "services");
    let spec = service.spec.clone().unwrap_or_default();
    let ports = spec.ports.as_ref().map_or(0, Vec::len) as i64;
    match spec.type_.as_deref() {
        Some("NodePort") => {
            usage.insert("services.nodeports".into(), Amount::count(ports));
        }
        Some("LoadBalancer") => {
            let node_ports = if spec.allocate_load_balancer_node_ports == Some(false) { 0 } else { ports };
            usage.insert("services.nodeports".into(), Amount::count(node_ports));
            usage.insert("services.loadbalancers".into(), Amount::count(1));
        }
        _ => {}
    }
    usage
}

/// What a claim charges: its counts and its storage request, in total and for its storage
/// class.
pub fn claim_usage(claim: &PersistentVolumeClaim) -> ResourceList {
    let mut usage = object_count("", "persistentvolumeclaims");
    let spec = claim.spec.clone().unwrap_or_default();
    let class = spec.storage_class_name.filter(|c| !c.is_empty());
    if let Some(class) = &class {
        usage.insert(format!("{class}.storageclass.storage.k8s.io/persistentvolumeclaims"), Amount::count(1));
    }
    let storage =
        spec.resources.and_then(|r| r.requests).and_then(|r| r.get("storage").and_then(|q| Amount::parse(&q.0)));
    if let Some(storage) = storage {
        usage.insert("requests.storage".into(), storage);
        if let Some(class) = &class {
            usage.insert(format!("{class}.storageclass.storage.k8s.io/requests.storage"), storage);
        }
    }
    usage
}

/// The quota resources pods must state for each container, when a quota limits them: a
/// quota on cpu or memory needs every container to request (or limit) it.
const MUST_BE_STATED: [&str; 6] = ["cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"];

/// Kubernetes' refusal of a pod that leaves out what a quota limits (`must specify
/// limits.cpu for: app; requests.memory for: app,side`), or None.
pub fn missing_pod_resources(pod: &Pod, limited: &ResourceList) -> Option<String> {
    let required: Vec<&str> = MUST_BE_STATED.into_iter().filter(|r| limited.contains_key(*r)).collect();
    let spec = pod.spec.as_ref()?;
    let mut missing: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        let stated =
            compute_usage(&pod_resources::container(c, Side::Requests), &pod_resources::container(c, Side::Limits));
        for resource in required.iter().filter(|r| !stated.contains_key(**r)) {
            missing.entry(resource).or_default().push(&c.name);
        }
    }
    if missing.is_empty() {
        return None;
    }
    let parts: Vec<String> = missing
        .into_iter()
        .map(|(resource, mut containers)| {
            containers.sort_unstable();
            containers.dedup();
            format!("{resource} for: {}", containers.join(","))
        })
        .collect();
    Some(format!("must specify {}", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource_list::pretty;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_running_pod_charges_its_requests_and_limits() {
        let p = pod(json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "64Mi", "example.com/dongle": "1"}, "limits": {"cpu": "1"}}},
            {"name": "b", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}}]}}));
        assert_eq!(
            pretty(&pod_usage(&p, Utc::now())),
            "count/pods=1,cpu=500m,limits.cpu=1,memory=128Mi,pods=1,requests.cpu=500m,requests.example.com/dongle=1,requests.memory=128Mi"
        );
    }

    #[test]
    fn a_finished_pod_charges_only_its_object_count() {
        let p = pod(
            json!({"spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}, "status": {"phase": "Succeeded"}}),
        );
        assert_eq!(pretty(&pod_usage(&p, Utc::now())), "count/pods=1");
    }

    #[test]
    fn services_charge_load_balancers_and_node_ports() {
        let svc: Service =
            serde_json::from_value(json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}}))
                .unwrap();
        assert_eq!(
            pretty(&service_usage(&svc)),
            "count/services=1,services=1,services.loadbalancers=1,services.nodeports=2"
        );
    }

    #[test]
    fn claims_charge_storage_per_class() {
        let pvc: PersistentVolumeClaim = serde_json::from_value(
            json!({"spec": {"storageClassName": "gold", "resources": {"requests": {"storage": "1Gi"}}}}),
        )
        .unwrap();
        assert_eq!(
            pretty(&claim_usage(&pvc)),
            "count/persistentvolumeclaims=1,gold.storageclass.storage.k8s.io/persistentvolumeclaims=1,gold.storageclass.storage.k8s.io/requests.storage=1Gi,persistentvolumeclaims=1,requests.storage=1Gi"
        );
    }

    #[test]
    fn quota_resources_are_counted_from_their_kind() {
        assert_eq!(counted_kind("limits.memory"), Some((String::new(), "pods".into())));
        assert_eq!(counted_kind("requests.storage"), Some((String::new(), "persistentvolumeclaims".into())));
        assert_eq!(counted_kind("count/deployments.apps"), Some(("apps".into(), "deployments".into())));
        assert_eq!(counted_kind("services.nodeports"), Some((String::new(), "services".into())));
        assert_eq!(counted_kind("bogus"), None);
    }

    #[test]
    fn pods_must_state_what_a_quota_limits() {
        let p = pod(json!({"spec": {"containers": [
            {"name": "b", "resources": {"requests": {"cpu": "1"}}},
            {"name": "a", "resources": {}}]}}));
        let limited: ResourceList = [("requests.cpu", "2"), ("limits.memory", "1Gi"), ("pods", "3")]
            .iter()
            .map(|(n, q)| (n.to_string(), Amount::parse(q).unwrap()))
            .collect();
        assert_eq!(
            missing_pod_resources(&p, &limited).unwrap(),
            "must specify limits.memory for: a,b; requests.cpu for: a"
        );
    }
}
