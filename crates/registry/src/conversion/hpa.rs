//! autoscaling/v1 HorizontalPodAutoscalers seen through the stored autoscaling/v2 form: the v1
//! CPU target is v2's CPU utilization metric. What v1 cannot express (other metrics, status
//! conditions, behavior) rides in annotations, as Kubernetes does, so nothing is lost when a
//! v1 client writes back what it read.

use super::set_type;
use serde_json::{Value, json};

const METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
const CURRENT_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";

fn is_cpu_utilization(metric: &Value) -> bool {
    metric["type"] == "Resource"
        && metric["resource"]["name"] == "cpu"
        && metric["resource"]["target"]["type"] == "Utilization"
}

fn annotations(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !obj["metadata"]["annotations"].is_object() {
        obj["metadata"]["annotations"] = json!({});
    }
    obj["metadata"]["annotations"].as_object_mut().expect("just made an object")
}

/// Moves a JSON value into an annotation (as a string), when it is present.
fn stash(obj: &mut Value, annotation: &str, value: Option<Value>) {
    if let Some(v) = value.filter(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty())) {
        annotations(obj).insert(annotation.into(), Value::String(v.to_string()));
    }
}

/// Takes a JSON value back out of an annotation.
fn unstash(obj: &mut Value, annotation: &str) -> Option<Value> {
    let annotations = obj.pointer_mut("/metadata/annotations")?.as_object_mut()?;
    let raw = annotations.remove(annotation)?;
    if annotations.is_empty() {
        obj.pointer_mut("/metadata")?.as_object_mut()?.remove("annotations");
    }
    serde_json::from_str(raw.as_str()?).ok()
}

fn cpu_metric(utilization: i64) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": utilization}}})
}

pub fn v2_to_v1(mut v2: Value) -> Value {
    let spec = v2.get("spec").cloned().unwrap_or(json!({}));
    let status = v2.get("status").cloned();
    let metrics = spec["metrics"].as_array().cloned().unwrap_or_default();
    let (cpu, others): (Vec<Value>, Vec<Value>) = metrics.into_iter().partition(is_cpu_utilization);
    let mut v1_spec = json!({"scaleTargetRef": spec["scaleTargetRef"], "maxReplicas": spec["maxReplicas"]});
    if !spec["minReplicas"].is_null() {
        v1_spec["minReplicas"] = spec["minReplicas"].clone();
    }
    if let Some(cpu) = cpu.first() {
        v1_spec["targetCPUUtilizationPercentage"] = cpu["resource"]["target"]["averageUtilization"].clone();
    }
    stash(&mut v2, METRICS_ANNOTATION, Some(Value::Array(others)));
    stash(&mut v2, BEHAVIOR_ANNOTATION, spec.get("behavior").cloned());
    v2["spec"] = v1_spec;
    if let Some(status) = status {
        let current = status["currentMetrics"].as_array().cloned().unwrap_or_default();
        let (cpu, others): (Vec<Value>, Vec<Value>) =
            current.into_iter().partition(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu");
        let mut v1_status =
            json!({"currentReplicas": status["currentReplicas"], "desiredReplicas": status["desiredReplicas"]});
        for field in ["observedGeneration", "lastScaleTime"] {
            if !status[field].is_null() {
                v1_status[field] = status[field].clone();
            }
        }
        if let Some(u) =
            cpu.first().map(|m| m["resource"]["current"]["averageUtilization"].clone()).filter(|u| !u.is_null())
        {
            v1_status["currentCPUUtilizationPercentage"] = u;
        }
        stash(&mut v2, CURRENT_METRICS_ANNOTATION, Some(Value::Array(others)));
        stash(&mut v2, CONDITIONS_ANNOTATION, status.get("conditions").cloned());
        v2["status"] = v1_status;
    }
    set_type(&mut v2, "autoscaling/v1", "HorizontalPodAutoscaler");
    v2
}

pub fn v1_to_v2(mut v1: Value) -> Value {
    let spec = v1.get("spec").cloned().unwrap_or(json!({}));
    let status = v1.get("status").cloned();
    let mut metrics = unstash(&mut v1, METRICS_ANNOTATION).and_then(|m| m.as_array().cloned()).unwrap_or_default();
    // v1's CPU target is v2's CPU utilization metric; with no metric at all, v2 defaults to 80%.
    let cpu_target = spec["targetCPUUtilizationPercentage"].as_i64().or(metrics.is_empty().then_some(80));
    if let Some(target) = cpu_target {
        metrics.insert(0, cpu_metric(target));
    }
    let mut v2_spec =
        json!({"scaleTargetRef": spec["scaleTargetRef"], "maxReplicas": spec["maxReplicas"], "metrics": metrics});
    v2_spec["minReplicas"] = if spec["minReplicas"].is_null() { json!(1) } else { spec["minReplicas"].clone() };
    if let Some(behavior) = unstash(&mut v1, BEHAVIOR_ANNOTATION) {
        v2_spec["behavior"] = behavior;
    }
    v1["spec"] = v2_spec;
    let mut current =
        unstash(&mut v1, CURRENT_METRICS_ANNOTATION).and_then(|m| m.as_array().cloned()).unwrap_or_default();
    let conditions = unstash(&mut v1, CONDITIONS_ANNOTATION);
    if let Some(status) = status {
        let mut v2_status =
            json!({"currentReplicas": status["currentReplicas"], "desiredReplicas": status["desiredReplicas"]});
        for field in ["observedGeneration", "lastScaleTime"] {
            if !status[field].is_null() {
                v2_status[field] = status[field].clone();
            }
        }
        if let Some(u) = status["currentCPUUtilizationPercentage"].as_i64() {
            current.insert(
                0,
                json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": u}}}),
            );
        }
        if !current.is_empty() {
            v2_status["currentMetrics"] = Value::Array(current);
        }
        if let Some(c) = conditions {
            v2_status["conditions"] = c;
        }
        v1["status"] = v2_status;
    }
    set_type(&mut v1, "autoscaling/v2", "HorizontalPodAutoscaler");
    v1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_round_trips_through_v2() {
        let v1 = json!({
            "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}, "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60},
        });
        let v2 = v1_to_v2(v1.clone());
        assert_eq!(v2["apiVersion"], "autoscaling/v2");
        assert_eq!(v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 60);
        assert_eq!(v2_to_v1(v2), v1);
        assert!(v1_to_v2(json!({"metadata": {"name": "x"}, "spec": {}})).pointer("/metadata/annotations").is_none());
    }

    #[test]
    fn v2_only_fields_survive_a_v1_round_trip() {
        let v2 = json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5, "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
            ]},
        });
        let v1 = v2_to_v1(v2.clone());
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
        assert!(v1["metadata"]["annotations"][METRICS_ANNOTATION].as_str().unwrap().contains("memory"));
        assert_eq!(v1_to_v2(v1), v2);
    }

    #[test]
    fn a_memory_only_hpa_gains_no_cpu_target_through_v1() {
        let v2 = json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5, "metrics": [
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
            ]},
        });
        let v1 = v2_to_v1(v2.clone());
        assert!(v1["spec"].get("targetCPUUtilizationPercentage").is_none());
        assert_eq!(v1_to_v2(v1), v2);
    }
}
