//! Autoscalers, leases, priority classes, disruption budgets, RBAC objects, resource quotas,
//! and the kinds Kubernetes prints with their creation time.

use super::{AGE, NAME, Printer, age, col, int, name, or_none, text, wide};
use serde_json::Value;

/// What an autoscaler aims for, per metric: `cpu: 40%/80%`, `<unknown>` where not yet measured.
fn targets(hpa: &Value) -> String {
    let current: Vec<&Value> =
        hpa.pointer("/status/currentMetrics").and_then(Value::as_array).into_iter().flatten().collect();
    let metrics = hpa.pointer("/spec/metrics").and_then(Value::as_array).cloned().unwrap_or_default();
    let shown: Vec<String> = metrics
        .iter()
        .filter(|m| m["type"] == "Resource")
        .map(|m| {
            let resource = m["resource"]["name"].as_str().unwrap_or("");
            let now = current
                .iter()
                .find(|c| c["type"] == "Resource" && c["resource"]["name"] == resource)
                .and_then(|c| c["resource"]["current"]["averageUtilization"].as_i64())
                .map_or("<unknown>".to_string(), |u| format!("{u}%"));
            let target = m["resource"]["target"]["averageUtilization"]
                .as_i64()
                .map(|u| format!("{u}%"))
                .or_else(|| m["resource"]["target"]["averageValue"].as_str().map(String::from))
                .unwrap_or_default();
            format!("{resource}: {now}/{target}")
        })
        .collect();
    if shown.is_empty() { "<none>".into() } else { shown.join(", ") }
}

pub const HORIZONTAL_POD_AUTOSCALERS: Printer = Printer {
    columns: &[
        NAME,
        col("Reference", "string"),
        col("Targets", "string"),
        col("MinPods", "string"),
        col("MaxPods", "integer"),
        col("Replicas", "integer"),
        AGE,
    ],
    row: |h| {
        let reference = format!("{}/{}", text(h, "/spec/scaleTargetRef/kind"), text(h, "/spec/scaleTargetRef/name"));
        let min = h.pointer("/spec/minReplicas").and_then(Value::as_i64).map_or("<unset>".into(), |m| m.to_string());
        vec![
            name(h),
            Value::String(reference),
            Value::String(targets(h)),
            Value::String(min),
            int(h, "/spec/maxReplicas").into(),
            int(h, "/status/currentReplicas").into(),
            age(h),
        ]
    },
};

pub const LEASES: Printer = Printer {
    columns: &[NAME, col("Holder", "string"), AGE],
    row: |l| vec![name(l), Value::String(text(l, "/spec/holderIdentity").into()), age(l)],
};

pub const PRIORITY_CLASSES: Printer = Printer {
    columns: &[NAME, col("Value", "integer"), col("Global-Default", "boolean"), AGE, col("PreemptionPolicy", "string")],
    row: |p| {
        vec![
            name(p),
            int(p, "/value").into(),
            Value::Bool(p.get("globalDefault").and_then(Value::as_bool).unwrap_or(false)),
            age(p),
            Value::String(match text(p, "/preemptionPolicy") {
                "" => "PreemptLowerPriority".into(),
                s => s.into(),
            }),
        ]
    },
};

pub const POD_DISRUPTION_BUDGETS: Printer = Printer {
    columns: &[
        NAME,
        col("Min Available", "string"),
        col("Max Unavailable", "string"),
        col("Allowed Disruptions", "integer"),
        AGE,
    ],
    row: |p| {
        let shown = |ptr: &str| match p.pointer(ptr) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => "N/A".into(),
        };
        vec![
            name(p),
            Value::String(shown("/spec/minAvailable")),
            Value::String(shown("/spec/maxUnavailable")),
            int(p, "/status/disruptionsAllowed").into(),
            age(p),
        ]
    },
};

/// Role and ClusterRole bindings: the role, and with -o wide who it is bound to.
pub const ROLE_BINDINGS: Printer = Printer {
    columns: &[
        NAME,
        col("Role", "string"),
        AGE,
        wide("Users", "string"),
        wide("Groups", "string"),
        wide("ServiceAccounts", "string"),
    ],
    row: |b| {
        let subjects = b.get("subjects").and_then(Value::as_array).cloned().unwrap_or_default();
        let of_kind = |kind: &str| {
            subjects
                .iter()
                .filter(|s| s["kind"] == kind)
                .map(|s| match (kind, s["namespace"].as_str()) {
                    ("ServiceAccount", Some(ns)) => format!("{ns}/{}", s["name"].as_str().unwrap_or("")),
                    _ => s["name"].as_str().unwrap_or("").to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        vec![
            name(b),
            Value::String(format!("{}/{}", text(b, "/roleRef/kind"), text(b, "/roleRef/name"))),
            age(b),
            Value::String(of_kind("User")),
            Value::String(of_kind("Group")),
            Value::String(of_kind("ServiceAccount")),
        ]
    },
};

/// Kinds Kubernetes prints with their creation time rather than an age: roles, cluster
/// roles, CustomResourceDefinitions.
pub const CREATED_AT: Printer = Printer {
    columns: &[NAME, col("Created At", "date")],
    row: |o| vec![name(o), Value::String(text(o, "/metadata/creationTimestamp").into())],
};

/// A quantity as stored (quantities are strings, though a number is accepted); a missing one is 0.
fn quantity(q: Option<&Value>) -> String {
    match q {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".into(),
    }
}

/// The REQUEST and LIMIT cells: each hard limit in name order as `name: used/hard`, those
/// named `limits.*` in LIMIT and the others in REQUEST.
fn quota_usage(q: &Value) -> (String, String) {
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    let mut hard: Vec<(&String, &Value)> =
        q.pointer("/status/hard").and_then(Value::as_object).into_iter().flatten().collect();
    hard.sort_by(|a, b| a.0.cmp(b.0));
    for (resource, limit) in hard {
        let used = quantity(q.pointer("/status/used").and_then(|u| u.get(resource)));
        let entry = format!("{resource}: {used}/{}", quantity(Some(limit)));
        match resource.split_once('.') {
            Some(("limits", _)) => limits.push(entry),
            _ => requests.push(entry),
        }
    }
    (requests.join(", "), limits.join(", "))
}

/// ResourceQuotas: usage against the hard limits (AGE last since Kubernetes 1.33).
pub const RESOURCE_QUOTAS: Printer = Printer {
    columns: &[NAME, col("Request", "string"), col("Limit", "string"), AGE],
    row: |q| {
        let (requests, limits) = quota_usage(q);
        vec![name(q), Value::String(requests), Value::String(limits), age(q)]
    },
};

pub const RUNTIME_CLASSES: Printer = Printer {
    columns: &[NAME, col("Handler", "string"), AGE],
    row: |r| vec![name(r), Value::String(text(r, "/handler").into()), age(r)],
};

pub const CERTIFICATE_SIGNING_REQUESTS: Printer = Printer {
    columns: &[
        NAME,
        AGE,
        col("SignerName", "string"),
        col("Requestor", "string"),
        col("RequestedDuration", "string"),
        col("Condition", "string"),
    ],
    row: |c| {
        let conditions: Vec<&str> = c
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|cond| cond["type"].as_str())
            .collect();
        let duration = c.pointer("/spec/expirationSeconds").and_then(Value::as_i64).map(super::human_duration);
        vec![
            name(c),
            age(c),
            Value::String(text(c, "/spec/signerName").into()),
            Value::String(text(c, "/spec/username").into()),
            or_none(duration.unwrap_or_default()),
            Value::String(if conditions.is_empty() { "Pending".into() } else { conditions.join(",") }),
        ]
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn autoscaler_targets() {
        let hpa = json!({"spec": {"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]},
                         "status": {"currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 40}}}]}});
        assert_eq!(targets(&hpa), "cpu: 40%/80%");
        assert_eq!(
            targets(
                &json!({"spec": {"metrics": [{"type": "Resource", "resource": {"name": "memory", "target": {"averageValue": "1Gi"}}}]}})
            ),
            "memory: <unknown>/1Gi"
        );
    }

    #[test]
    fn quotas_split_requests_and_limits() {
        assert_eq!(super::super::column_names(&RESOURCE_QUOTAS), ["Name", "Request", "Limit", "Age"]);
        let q = json!({"metadata": {"name": "compute"},
                       "status": {"hard": {"requests.cpu": "1", "limits.memory": "2Gi", "pods": "10", "limits.cpu": "2", "requests.memory": "1Gi"},
                                  "used": {"requests.cpu": "500m", "limits.cpu": "1", "pods": "3"}}});
        assert_eq!(
            (RESOURCE_QUOTAS.row)(&q),
            vec![
                json!("compute"),
                json!("pods: 3/10, requests.cpu: 500m/1, requests.memory: 0/1Gi"),
                json!("limits.cpu: 1/2, limits.memory: 0/2Gi"),
                json!("<unknown>")
            ]
        );
    }

    #[test]
    fn bindings_name_their_subjects() {
        let b = json!({"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": "r"},
                       "subjects": [{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}]});
        let cells = (ROLE_BINDINGS.row)(&b);
        assert_eq!(cells[1], "Role/r");
        assert_eq!((cells[3].clone(), cells[5].clone()), (json!("jane"), json!("ns/sa")));
    }
}
