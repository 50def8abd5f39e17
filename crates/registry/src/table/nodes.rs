//! Nodes: STATUS from the Ready condition (and SchedulingDisabled), ROLES from the
//! node-role labels, the kubelet VERSION, and with -o wide addresses and OS details.

use super::{AGE, NAME, Printer, age, col, name, or_none, text, wide};
use serde_json::Value;

fn status(node: &Value) -> String {
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .map(|c| if c["status"] == "True" { "Ready" } else { "NotReady" })
        .unwrap_or("Unknown");
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        format!("{ready},SchedulingDisabled")
    } else {
        ready.to_string()
    }
}

fn roles(node: &Value) -> String {
    let labels = node.pointer("/metadata/labels").and_then(Value::as_object);
    let roles: Vec<&str> = labels
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/"))
        .filter(|r| !r.is_empty())
        .collect();
    roles.join(",")
}

fn address(node: &Value, kind: &str) -> String {
    node.pointer("/status/addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|a| a["type"] == kind)
        .and_then(|a| a["address"].as_str())
        .unwrap_or("")
        .to_string()
}

pub const NODES: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string"),
        col("Roles", "string"),
        AGE,
        col("Version", "string"),
        wide("Internal-IP", "string"),
        wide("External-IP", "string"),
        wide("OS-Image", "string"),
        wide("Kernel-Version", "string"),
        wide("Container-Runtime", "string"),
    ],
    row: |n| {
        vec![
            name(n),
            Value::String(status(n)),
            or_none(roles(n)),
            age(n),
            Value::String(text(n, "/status/nodeInfo/kubeletVersion").into()),
            or_none(address(n, "InternalIP")),
            or_none(address(n, "ExternalIP")),
            or_none(text(n, "/status/nodeInfo/osImage")),
            or_none(text(n, "/status/nodeInfo/kernelVersion")),
            or_none(text(n, "/status/nodeInfo/containerRuntimeVersion")),
        ]
    },
};
