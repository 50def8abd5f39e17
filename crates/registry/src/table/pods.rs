//! Pods: READY containers, STATUS as kubectl shows it, RESTARTS, and with -o wide the pod IP,
//! node, nominated node and readiness gates.

use super::{AGE, NAME, Printer, age, col, human_duration, int, name, or_none, since, text, wide};
use serde_json::Value;

pub const PODS: Printer = Printer {
    columns: &[
        NAME,
        col("Ready", "string"),
        col("Status", "string"),
        col("Restarts", "string"),
        AGE,
        wide("IP", "string"),
        wide("Node", "string"),
        wide("Nominated Node", "string"),
        wide("Readiness Gates", "string"),
    ],
    row,
};

/// The status word: a container's waiting or terminated reason when it has one, Terminating
/// while being deleted, else the pod's reason or phase.
fn status(pod: &Value) -> String {
    let mut reason = match text(pod, "/status/reason") {
        "" => text(pod, "/status/phase").to_string(),
        r => r.to_string(),
    };
    let statuses = pod.pointer("/status/containerStatuses").and_then(Value::as_array).cloned().unwrap_or_default();
    for cs in statuses.iter().rev() {
        if let Some(r) = cs.pointer("/state/waiting/reason").and_then(Value::as_str).filter(|r| !r.is_empty()) {
            reason = r.to_string();
        } else if let Some(r) = cs.pointer("/state/terminated/reason").and_then(Value::as_str).filter(|r| !r.is_empty())
        {
            reason = r.to_string();
        }
    }
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        reason = "Terminating".into();
    }
    reason
}

fn restarts(pod: &Value) -> String {
    let statuses = pod.pointer("/status/containerStatuses").and_then(Value::as_array).cloned().unwrap_or_default();
    let total: i64 = statuses.iter().map(|cs| int(cs, "/restartCount")).sum();
    let last = statuses
        .iter()
        .filter_map(|cs| since(cs.pointer("/lastState/terminated/finishedAt").and_then(Value::as_str)))
        .min();
    match last {
        Some(secs) if total > 0 => format!("{total} ({} ago)", human_duration(secs)),
        _ => total.to_string(),
    }
}

fn row(pod: &Value) -> Vec<Value> {
    let containers = pod.pointer("/spec/containers").and_then(Value::as_array).map_or(0, Vec::len);
    let ready = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
    let gates = pod.pointer("/spec/readinessGates").and_then(Value::as_array).map_or(0, Vec::len);
    vec![
        name(pod),
        Value::String(format!("{ready}/{containers}")),
        Value::String(status(pod)),
        Value::String(restarts(pod)),
        age(pod),
        or_none(text(pod, "/status/podIP")),
        or_none(text(pod, "/spec/nodeName")),
        or_none(text(pod, "/status/nominatedNodeName")),
        or_none(if gates == 0 { String::new() } else { format!("0/{gates}") }),
    ]
}
