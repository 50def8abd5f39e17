//! Events: when last seen, TYPE, REASON, the OBJECT they are about, and the MESSAGE.

use super::{Printer, col, human_duration, name, since, text, wide};
use serde_json::Value;

fn last_seen(e: &Value) -> String {
    let when =
        ["/series/lastObservedTime", "/lastTimestamp", "/eventTime", "/firstTimestamp", "/metadata/creationTimestamp"]
            .iter()
            .find_map(|p| e.pointer(p).and_then(Value::as_str));
    since(when).map(human_duration).unwrap_or_else(|| "<unknown>".into())
}

pub const EVENTS: Printer = Printer {
    columns: &[
        col("Last Seen", "string"),
        col("Type", "string"),
        col("Reason", "string"),
        col("Object", "string"),
        wide("Subobject", "string"),
        wide("Source", "string"),
        col("Message", "string"),
        wide("First Seen", "string"),
        wide("Count", "integer"),
        wide("Name", "string"),
    ],
    row: |e| {
        let object = format!("{}/{}", text(e, "/involvedObject/kind").to_lowercase(), text(e, "/involvedObject/name"));
        let first = since(e.pointer("/firstTimestamp").and_then(Value::as_str)).map(human_duration).unwrap_or_default();
        vec![
            Value::String(last_seen(e)),
            Value::String(text(e, "/type").into()),
            Value::String(text(e, "/reason").into()),
            Value::String(object),
            Value::String(text(e, "/involvedObject/fieldPath").into()),
            Value::String(text(e, "/source/component").into()),
            Value::String(text(e, "/message").into()),
            Value::String(first),
            e.pointer("/count").and_then(Value::as_i64).unwrap_or(1).into(),
            name(e),
        ]
    },
};
