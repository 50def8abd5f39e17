//! Pods: defaults (including those Kubernetes' admission plugins add), the initial status with
//! its QoS class, and the narrow set of spec fields an update may change.

use crate::field_error::{FieldError, Path};
use crate::pod_spec::{default_pod_spec, default_requests_from_limits, validate_pod_spec};
use crate::set_default;
use crate::strategy::Strategy;
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus, Toleration};

pub struct PodStrategy;

/// Pods tolerate an unreachable or not-ready node for 300 s before eviction (the
/// DefaultTolerationSeconds admission plugin).
fn default_tolerations(spec: &mut PodSpec) {
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
        // A toleration with an empty key (which must be Exists) covers every key; one with
        // no effect covers every effect.
        let covered = tolerations.iter().any(|t| {
            (matches!(t.key.as_deref(), None | Some("")) || t.key.as_deref() == Some(key))
                && t.effect.as_deref().is_none_or(|e| e.is_empty() || e == "NoExecute")
        });
        if !covered {
            tolerations.push(Toleration {
                key: Some(key.to_string()),
                operator: Some("Exists".into()),
                effect: Some("NoExecute".into()),
                toleration_seconds: Some(300),
                ..Default::default()
            });
        }
    }
}

/// Guaranteed when every container's cpu and memory requests equal their limits, BestEffort
/// when no container asks for anything, Burstable otherwise.
fn qos_class(spec: &PodSpec) -> &'static str {
    let containers: Vec<_> = spec.containers.iter().chain(spec.init_containers.iter().flatten()).collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let res = c.resources.clone().unwrap_or_default();
        let requests = res.requests.unwrap_or_default();
        let limits = res.limits.unwrap_or_default();
        any |= requests.keys().chain(limits.keys()).any(|k| k == "cpu" || k == "memory");
        for name in ["cpu", "memory"] {
            match (requests.get(name), limits.get(name)) {
                (_, None) => guaranteed = false,
                (Some(r), Some(l)) if r != l => guaranteed = false,
                _ => {}
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

impl Strategy for PodStrategy {
    type Object = Pod;

    fn apply_defaults(&self, pod: &mut Pod) {
        let Some(spec) = &mut pod.spec else { return };
        default_pod_spec(spec);
        default_requests_from_limits(spec);
        set_default(&mut spec.service_account_name, "default".to_string());
        spec.service_account = spec.service_account_name.clone();
        set_default(&mut spec.enable_service_links, true);
        if spec.priority_class_name.is_none() {
            set_default(&mut spec.priority, 0);
        }
        set_default(&mut spec.preemption_policy, "PreemptLowerPriority".to_string());
        default_tolerations(spec);
    }

    fn prepare_create(&self, pod: &mut Pod) {
        let qos = pod.spec.as_ref().map(qos_class).unwrap_or("BestEffort");
        pod.status =
            Some(PodStatus { phase: Some("Pending".into()), qos_class: Some(qos.into()), ..Default::default() });
    }

    fn validate(&self, pod: &Pod) -> Vec<FieldError> {
        match &pod.spec {
            None => vec![FieldError::required("spec", "")],
            Some(spec) => validate_pod_spec(spec, &Path::new("spec")),
        }
    }

    fn validate_update(&self, new: &Pod, old: &Pod) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        let (Some(new_spec), Some(old_spec)) = (&new.spec, &old.spec) else { return errs };
        // Only images, activeDeadlineSeconds and added tolerations may change.
        let mut comparable = new_spec.clone();
        for (c, o) in comparable.containers.iter_mut().zip(&old_spec.containers) {
            c.image.clone_from(&o.image);
        }
        for (c, o) in comparable.init_containers.iter_mut().flatten().zip(old_spec.init_containers.iter().flatten()) {
            c.image.clone_from(&o.image);
        }
        comparable.active_deadline_seconds = old_spec.active_deadline_seconds;
        let old_tolerations = old_spec.tolerations.clone().unwrap_or_default();
        let kept_old = new_spec.tolerations.iter().flatten().take(old_tolerations.len()).eq(old_tolerations.iter());
        if kept_old {
            comparable.tolerations = old_spec.tolerations.clone();
        }
        if &comparable != old_spec {
            errs.push(FieldError::forbidden(
                "spec",
                "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(resources: serde_json::Value) -> PodSpec {
        serde_json::from_value(json!({"containers": [{"name": "a", "image": "x", "resources": resources}]})).unwrap()
    }

    fn tolerations(spec: serde_json::Value) -> Vec<(Option<String>, Option<i64>)> {
        let mut spec: PodSpec = serde_json::from_value(spec).unwrap();
        default_tolerations(&mut spec);
        spec.tolerations.unwrap().into_iter().map(|t| (t.key, t.toleration_seconds)).collect()
    }

    #[test]
    fn pods_tolerate_unreachable_and_not_ready_nodes_for_five_minutes_unless_they_say() {
        let none = json!({"containers": []});
        let not_ready = Some("node.kubernetes.io/not-ready".to_string());
        let unreachable = Some("node.kubernetes.io/unreachable".to_string());
        assert_eq!(tolerations(none), [(not_ready.clone(), Some(300)), (unreachable.clone(), Some(300))]);
        let own = json!({"containers": [], "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]});
        assert_eq!(tolerations(own), [(unreachable.clone(), Some(5)), (not_ready, Some(300))]);
        let everything = json!({"containers": [], "tolerations": [{"key": "", "operator": "Exists"}]});
        assert_eq!(tolerations(everything), [(Some(String::new()), None)]);
        let other_effect = json!({"containers": [], "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}]});
        assert_eq!(tolerations(other_effect).len(), 3);
    }

    #[test]
    fn qos() {
        assert_eq!(qos_class(&pod(json!({}))), "BestEffort");
        assert_eq!(qos_class(&pod(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))), "Guaranteed");
        assert_eq!(qos_class(&pod(json!({"requests": {"cpu": "1"}}))), "Burstable");
    }
}
