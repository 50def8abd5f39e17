//! events.k8s.io/v1 Events are core v1 Events with some fields renamed.

use super::set_type;
use serde_json::{Map, Value};

/// (events.k8s.io/v1 field, core v1 field).
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(value: Value, from_index: usize) -> Value {
    let Value::Object(mut from) = value else { return value };
    let mut to = Map::with_capacity(from.len());
    for pair in RENAMES {
        let (src, dst) = if from_index == 0 { (pair.0, pair.1) } else { (pair.1, pair.0) };
        if let Some(v) = from.remove(src) {
            to.insert(dst.to_string(), v);
        }
    }
    to.extend(from);
    Value::Object(to)
}

pub fn to_core(value: Value) -> Value {
    let mut v = rename(value, 0);
    set_type(&mut v, "v1", "Event");
    v
}

pub fn from_core(value: Value) -> Value {
    let mut v = rename(value, 1);
    set_type(&mut v, "events.k8s.io/v1", "Event");
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip() {
        let served = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "note": "hi", "regarding": {"name": "p"}, "reason": "X"});
        let stored = to_core(served.clone());
        assert_eq!(stored["message"], "hi");
        assert_eq!(stored["involvedObject"]["name"], "p");
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(from_core(stored), served);
    }
}
