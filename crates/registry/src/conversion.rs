//! Versions and groups that share storage: objects are stored in one version and converted
//! when served through another, as Kubernetes does for `events.k8s.io/v1` Events (stored as
//! core `v1` Events).

use serde_json::{Map, Value};

/// A conversion between the served form and the stored form, by renaming top-level fields.
#[derive(Clone, Copy, Debug)]
pub struct Conversion {
    /// apiVersion and kind of the stored form.
    pub stored_api_version: &'static str,
    pub stored_kind: &'static str,
    /// (served field, stored field) pairs.
    pub renames: &'static [(&'static str, &'static str)],
}

impl Conversion {
    pub fn to_storage(&self, value: Value) -> Value {
        self.rename(value, self.stored_api_version, self.stored_kind, |(served, stored)| (served, stored))
    }

    pub fn from_storage(&self, value: Value, api_version: &str, kind: &str) -> Value {
        self.rename(value, api_version, kind, |(served, stored)| (stored, served))
    }

    fn rename(
        &self,
        value: Value,
        api_version: &str,
        kind: &str,
        direction: impl Fn((&'static str, &'static str)) -> (&'static str, &'static str),
    ) -> Value {
        let Value::Object(mut from) = value else { return value };
        let mut to = Map::with_capacity(from.len());
        for &pair in self.renames {
            let (src, dst) = direction(pair);
            if let Some(v) = from.remove(src) {
                to.insert(dst.to_string(), v);
            }
        }
        to.extend(from);
        to.insert("apiVersion".into(), Value::String(api_version.into()));
        to.insert("kind".into(), Value::String(kind.into()));
        Value::Object(to)
    }
}

/// events.k8s.io/v1 Event fields and the core v1 Event fields they are stored as.
pub const EVENTS_V1: Conversion = Conversion {
    stored_api_version: "v1",
    stored_kind: "Event",
    renames: &[
        ("regarding", "involvedObject"),
        ("related", "related"),
        ("note", "message"),
        ("reportingController", "reportingComponent"),
        ("deprecatedSource", "source"),
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedCount", "count"),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_round_trip() {
        let served = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "note": "hi", "regarding": {"name": "p"}, "reason": "X"});
        let stored = EVENTS_V1.to_storage(served.clone());
        assert_eq!(stored["message"], "hi");
        assert_eq!(stored["involvedObject"]["name"], "p");
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(EVENTS_V1.from_storage(stored, "events.k8s.io/v1", "Event"), served);
    }
}
