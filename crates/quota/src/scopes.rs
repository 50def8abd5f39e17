//! Quota scopes: a quota with scopes (`spec.scopes`, `spec.scopeSelector`) counts only the
//! pods that match every one of them (Terminating, NotTerminating, BestEffort,
//! NotBestEffort, PriorityClass), and no other objects.

use k8s_openapi::api::core::v1::{Pod, ResourceQuotaSpec};

/// A scope and how the pod must relate to it.
struct Requirement<'a> {
    scope: &'a str,
    operator: &'a str,
    values: &'a [String],
}

/// Every scope the quota names, from either field.
fn requirements(spec: &ResourceQuotaSpec) -> Vec<Requirement<'_>> {
    let listed = spec.scopes.iter().flatten().map(|s| Requirement { scope: s, operator: "Exists", values: &[] });
    let selected = spec.scope_selector.iter().flat_map(|s| s.match_expressions.iter().flatten()).map(|e| Requirement {
        scope: &e.scope_name,
        operator: &e.operator,
        values: e.values.as_deref().unwrap_or(&[]),
    });
    listed.chain(selected).collect()
}

/// Whether the quota has scopes at all.
pub fn is_scoped(spec: &ResourceQuotaSpec) -> bool {
    !requirements(spec).is_empty()
}

/// BestEffort: no container states any cpu or memory request or limit.
fn is_best_effort(pod: &Pod) -> bool {
    let Some(spec) = &pod.spec else { return true };
    !spec.containers.iter().chain(spec.init_containers.iter().flatten()).any(|c| {
        let r = c.resources.clone().unwrap_or_default();
        [r.requests, r.limits].iter().flatten().any(|list| list.contains_key("cpu") || list.contains_key("memory"))
    })
}

fn matches(requirement: &Requirement, pod: &Pod) -> bool {
    let spec = pod.spec.clone().unwrap_or_default();
    let terminating = spec.active_deadline_seconds.is_some_and(|s| s >= 0);
    match requirement.scope {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => is_best_effort(pod),
        "NotBestEffort" => !is_best_effort(pod),
        // The pod is seen as having its class name under the key PriorityClass (an empty
        // one if it names none), which the requirement selects like a label.
        "PriorityClass" => {
            let class = spec.priority_class_name.unwrap_or_default();
            match requirement.operator {
                "In" => requirement.values.contains(&class),
                "NotIn" => !requirement.values.contains(&class),
                "Exists" => true,
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether the quota counts this pod: unscoped quotas count every pod.
pub fn counts_pod(spec: &ResourceQuotaSpec, pod: &Pod) -> bool {
    requirements(spec).iter().all(|r| matches(r, pod))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> ResourceQuotaSpec {
        serde_json::from_value(value).unwrap()
    }

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"spec": value})).unwrap()
    }

    #[test]
    fn scopes_select_pods() {
        let best_effort = pod(json!({"containers": [{"name": "a"}]}));
        let burstable = pod(
            json!({"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}], "activeDeadlineSeconds": 30, "priorityClassName": "high"}),
        );
        let be = spec(json!({"scopes": ["BestEffort"]}));
        assert!(counts_pod(&be, &best_effort) && !counts_pod(&be, &burstable));
        let terminating = spec(json!({"scopes": ["NotBestEffort", "Terminating"]}));
        assert!(counts_pod(&terminating, &burstable) && !counts_pod(&terminating, &best_effort));
        let high = spec(
            json!({"scopeSelector": {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}),
        );
        assert!(counts_pod(&high, &burstable) && !counts_pod(&high, &best_effort));
        assert!(counts_pod(&spec(json!({})), &best_effort));
    }
}
