//! Events: when last seen, TYPE, REASON, the OBJECT they are about, and the MESSAGE; with -o
//! wide the subobject, source, first seen, count and name. core/v1 and events.k8s.io/v1 Events
//! print alike, each read through its own field names.

use super::{Column, Printer, col, human_duration, name, since, text, wide};
use serde_json::Value;

/// Where an Event's fields are in one API version's JSON.
struct Fields {
    regarding: &'static str,
    message: &'static str,
    first_timestamp: &'static str,
    last_timestamp: &'static str,
    count: &'static str,
    source_component: &'static str,
    source_host: &'static str,
    reporting_controller: &'static str,
}

const CORE: Fields = Fields {
    regarding: "/involvedObject",
    message: "/message",
    first_timestamp: "/firstTimestamp",
    last_timestamp: "/lastTimestamp",
    count: "/count",
    source_component: "/source/component",
    source_host: "/source/host",
    reporting_controller: "/reportingComponent",
};

const EVENTS_K8S_IO: Fields = Fields {
    regarding: "/regarding",
    message: "/note",
    first_timestamp: "/deprecatedFirstTimestamp",
    last_timestamp: "/deprecatedLastTimestamp",
    count: "/deprecatedCount",
    source_component: "/deprecatedSource/component",
    source_host: "/deprecatedSource/host",
    reporting_controller: "/reportingController",
};

const COLUMNS: &[Column] = &[
    col("Last Seen", "string"),
    col("Type", "string"),
    col("Reason", "string"),
    col("Object", "string"),
    wide("Subobject", "string"),
    wide("Source", "string"),
    col("Message", "string"),
    wide("First Seen", "string"),
    wide("Count", "string"),
    Column { name: "Name", kind: "string", format: "name", priority: 1 },
];

pub const EVENTS: Printer = Printer { columns: COLUMNS, row: |e| row(e, &CORE) };

/// events.k8s.io/v1 Events: the same columns as core/v1 ones.
pub const EVENTS_V1: Printer = Printer { columns: COLUMNS, row: |e| row(e, &EVENTS_K8S_IO) };

/// How long ago a timestamp was, `<unknown>` when unset.
fn ago(e: &Value, pointer: &str) -> Option<String> {
    let timestamp = e.pointer(pointer).and_then(Value::as_str).filter(|t| !t.is_empty())?;
    Some(since(Some(timestamp)).map(human_duration).unwrap_or_else(|| "<unknown>".into()))
}

/// The first of the strings that is not empty.
fn first_set<'a>(candidates: [&'a str; 2]) -> &'a str {
    candidates.into_iter().find(|s| !s.is_empty()).unwrap_or("")
}

fn row(e: &Value, f: &Fields) -> Vec<Value> {
    let unknown = || "<unknown>".to_string();
    // First seen: the first timestamp, else the event time. Last seen: the series' last
    // observation, else the last timestamp, else first seen.
    let first = ago(e, f.first_timestamp).or_else(|| ago(e, "/eventTime")).unwrap_or_else(unknown);
    let series = e.get("series").filter(|s| s.is_object());
    let last = match series {
        Some(_) => ago(e, "/series/lastObservedTime").unwrap_or_else(unknown),
        None => ago(e, f.last_timestamp).unwrap_or_else(|| first.clone()),
    };
    let count = match series {
        Some(s) => s.get("count").and_then(Value::as_i64).unwrap_or(0),
        None => e.pointer(f.count).and_then(Value::as_i64).filter(|c| *c != 0).unwrap_or(1),
    };
    let kind = text(e, &format!("{}/kind", f.regarding)).to_lowercase();
    let object = match text(e, &format!("{}/name", f.regarding)) {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let component = first_set([text(e, f.source_component), text(e, f.reporting_controller)]);
    let instance = first_set([text(e, f.source_host), text(e, "/reportingInstance")]);
    let source = if instance.is_empty() { component.to_string() } else { format!("{component}, {instance}") };
    vec![
        Value::String(last),
        Value::String(text(e, "/type").into()),
        Value::String(text(e, "/reason").into()),
        Value::String(object),
        Value::String(text(e, &format!("{}/fieldPath", f.regarding)).into()),
        Value::String(source),
        Value::String(text(e, f.message).trim().into()),
        Value::String(first),
        count.into(),
        name(e),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};
    use serde_json::json;

    fn before(d: Duration) -> String {
        (Utc::now() - d).to_rfc3339()
    }

    const HEADERS: [&str; 10] =
        ["Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message", "First Seen", "Count", "Name"];

    #[test]
    fn core_events() {
        assert_eq!(super::super::column_names(&EVENTS), HEADERS);
        let e = json!({"metadata": {"name": "web.17a"}, "type": "Normal", "reason": "Pulled",
                       "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
                       "source": {"component": "kubelet", "host": "node-1"}, "message": " Pulled image \n",
                       "firstTimestamp": before(Duration::days(30)), "lastTimestamp": before(Duration::hours(3)), "count": 4});
        assert_eq!(
            (EVENTS.row)(&e),
            vec![
                json!("3h0m"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/web"),
                json!("spec.containers{app}"),
                json!("kubelet, node-1"),
                json!("Pulled image"),
                json!("30d"),
                json!(4),
                json!("web.17a")
            ]
        );
    }

    #[test]
    fn events_k8s_io_events() {
        assert_eq!(super::super::column_names(&EVENTS_V1), HEADERS);
        let e = json!({"metadata": {"name": "n.1"}, "type": "Warning", "reason": "NodeNotReady",
                       "regarding": {"kind": "Node", "name": "n"}, "note": "Node is not ready",
                       "reportingController": "node-controller", "eventTime": before(Duration::days(30)),
                       "series": {"count": 7, "lastObservedTime": before(Duration::hours(3))}});
        assert_eq!(
            (EVENTS_V1.row)(&e),
            vec![
                json!("3h0m"),
                json!("Warning"),
                json!("NodeNotReady"),
                json!("node/n"),
                json!(""),
                json!("node-controller"),
                json!("Node is not ready"),
                json!("30d"),
                json!(7),
                json!("n.1")
            ]
        );
        // A singleton without timestamps other than its event time, about an object without a name.
        let single = json!({"regarding": {"kind": "Cluster"}, "eventTime": before(Duration::hours(3)),
                            "reportingController": "c", "reportingInstance": "c-1"});
        let cells = (EVENTS_V1.row)(&single);
        assert_eq!(
            (&cells[0], &cells[3], &cells[5], &cells[7], &cells[8]),
            (&json!("3h0m"), &json!("cluster"), &json!("c, c-1"), &json!("3h0m"), &json!(1))
        );
    }
}
