//! Server-side printing: the columns `kubectl get` shows for each kind, as Kubernetes prints
//! them (priority 0 always, priority 1 with `-o wide`). Kinds without their own columns get
//! NAME and AGE.

mod cluster;
mod config;
mod events;
mod networking;
mod nodes;
mod pods;
mod services;
mod storage;
mod workloads;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub struct Column {
    pub name: &'static str,
    /// OpenAPI type of the cells: string, integer, number, boolean, date.
    pub kind: &'static str,
    /// `name` for the object's name column, else empty.
    pub format: &'static str,
    /// 0: always shown; 1: only with `-o wide`.
    pub priority: i32,
}

pub struct Printer {
    pub columns: &'static [Column],
    pub row: fn(&Value) -> Vec<Value>,
}

pub(crate) const fn col(name: &'static str, kind: &'static str) -> Column {
    Column { name, kind, format: "", priority: 0 }
}

pub(crate) const fn wide(name: &'static str, kind: &'static str) -> Column {
    Column { name, kind, format: "", priority: 1 }
}

pub(crate) const NAME: Column = Column { name: "Name", kind: "string", format: "name", priority: 0 };
pub(crate) const AGE: Column = col("Age", "string");

const DEFAULT: Printer = Printer { columns: &[NAME, AGE], row: |o| vec![name(o), age(o)] };

/// The printer for a resource.
pub fn printer(group: &str, plural: &str) -> &'static Printer {
    match (group, plural) {
        ("", "pods") => &pods::PODS,
        ("", "services") => &services::SERVICES,
        ("", "endpoints") => &services::ENDPOINTS,
        ("", "configmaps") => &config::CONFIG_MAPS,
        ("", "secrets") => &config::SECRETS,
        ("", "serviceaccounts") => &config::SERVICE_ACCOUNTS,
        ("", "namespaces") => &config::NAMESPACES,
        ("", "nodes") => &nodes::NODES,
        ("", "events") => &events::EVENTS,
        ("events.k8s.io", "events") => &events::EVENTS_V1,
        ("", "replicationcontrollers") => &workloads::REPLICATION_CONTROLLERS,
        ("", "podtemplates") => &workloads::POD_TEMPLATES,
        ("apps", "controllerrevisions") => &workloads::CONTROLLER_REVISIONS,
        ("apps", "deployments") => &workloads::DEPLOYMENTS,
        ("apps", "replicasets") => &workloads::REPLICA_SETS,
        ("apps", "statefulsets") => &workloads::STATEFUL_SETS,
        ("apps", "daemonsets") => &workloads::DAEMON_SETS,
        ("batch", "jobs") => &workloads::JOBS,
        ("batch", "cronjobs") => &workloads::CRON_JOBS,
        ("", "persistentvolumeclaims") => &storage::PERSISTENT_VOLUME_CLAIMS,
        ("", "persistentvolumes") => &storage::PERSISTENT_VOLUMES,
        ("storage.k8s.io", "storageclasses") => &storage::STORAGE_CLASSES,
        ("storage.k8s.io", "volumeattributesclasses") => &storage::VOLUME_ATTRIBUTES_CLASSES,
        ("storage.k8s.io", "csistoragecapacities") => &storage::CSI_STORAGE_CAPACITIES,
        ("storage.k8s.io", "csidrivers") => &storage::CSI_DRIVERS,
        ("storage.k8s.io", "csinodes") => &storage::CSI_NODES,
        ("storage.k8s.io", "volumeattachments") => &storage::VOLUME_ATTACHMENTS,
        ("networking.k8s.io", "ingresses") => &networking::INGRESSES,
        ("networking.k8s.io", "ingressclasses") => &networking::INGRESS_CLASSES,
        ("networking.k8s.io", "networkpolicies") => &networking::NETWORK_POLICIES,
        ("discovery.k8s.io", "endpointslices") => &networking::ENDPOINT_SLICES,
        ("autoscaling", "horizontalpodautoscalers") => &cluster::HORIZONTAL_POD_AUTOSCALERS,
        ("coordination.k8s.io", "leases") => &cluster::LEASES,
        ("scheduling.k8s.io", "priorityclasses") => &cluster::PRIORITY_CLASSES,
        ("policy", "poddisruptionbudgets") => &cluster::POD_DISRUPTION_BUDGETS,
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => &cluster::ROLE_BINDINGS,
        ("rbac.authorization.k8s.io", "roles" | "clusterroles")
        | ("apiextensions.k8s.io", "customresourcedefinitions") => &cluster::CREATED_AT,
        ("", "limitranges") => &cluster::CREATED_AT,
        ("", "resourcequotas") => &cluster::RESOURCE_QUOTAS,
        ("node.k8s.io", "runtimeclasses") => &cluster::RUNTIME_CLASSES,
        ("certificates.k8s.io", "certificatesigningrequests") => &cluster::CERTIFICATE_SIGNING_REQUESTS,
        _ => &DEFAULT,
    }
}

/// Kubernetes' short human durations: 45s, 3m20s, 5h, 2d3h, 400d.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{m}m{}s", s % 60),
        s if s < 3 * 3600 => format!("{m}m"),
        s if s < 8 * 3600 => format!("{h}h{}m", m % 60),
        s if s < 48 * 3600 => format!("{h}h"),
        s if s < 8 * 86400 => format!("{d}d{}h", h % 24),
        s if s < 2 * 365 * 86400 => format!("{d}d"),
        _ => format!("{}y{}d", d / 365, d % 365),
    }
}

pub(crate) fn since(timestamp: Option<&str>) -> Option<i64> {
    let t = DateTime::parse_from_rfc3339(timestamp?).ok()?;
    Some((Utc::now() - t.with_timezone(&Utc)).num_seconds())
}

pub(crate) fn name(obj: &Value) -> Value {
    obj.pointer("/metadata/name").cloned().unwrap_or(Value::Null)
}

pub(crate) fn age(obj: &Value) -> Value {
    let secs = since(obj.pointer("/metadata/creationTimestamp").and_then(Value::as_str));
    Value::String(secs.map(human_duration).unwrap_or_else(|| "<unknown>".into()))
}

pub(crate) fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

pub(crate) fn text<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// A string cell that shows `<none>` when empty.
pub(crate) fn or_none(s: impl Into<String>) -> Value {
    let s = s.into();
    Value::String(if s.is_empty() { "<none>".into() } else { s })
}

/// The names of a printer's columns, for tests.
#[cfg(test)]
pub(crate) fn column_names(printer: &Printer) -> Vec<&'static str> {
    printer.columns.iter().map(|c| c.name).collect()
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(3600), "60m");
        assert_eq!(human_duration(5 * 3600 + 60), "5h1m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 7200), "3d2h");
    }
}
