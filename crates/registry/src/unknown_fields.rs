//! Unknown and duplicate fields: what a client sent that the kind's schema does not have, or
//! sent twice. Decoding into the typed struct ignores the first, and noting what it ignores
//! names them, as `spec.template.spec.containers[0].imagee`. JSON
//! decoding keeps the last of duplicates; a pass over the raw body names them. Both are for
//! `fieldValidation` (Strict refuses them, Warn, the default, reports them in Warning headers).

use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::cell::RefCell;

/// The paths in `sent` that decoding it as a `T` ignores (the fields its schema does not
/// have), in one decoding pass; none if it does not decode (the decoding error says more).
pub fn unknown<T: DeserializeOwned>(sent: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match serde_ignored::deserialize::<_, _, T>(sent, |path| out.push(dotted(&path))) {
        Ok(_) => out,
        Err(_) => Vec::new(),
    }
}

/// `spec.containers[1].imagee`, as Kubernetes names a field.
fn dotted(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", dotted(parent)),
        Path::Map { parent, key } => match dotted(parent) {
            p if p.is_empty() => key.clone(),
            p => format!("{p}.{key}"),
        },
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => dotted(parent),
    }
}

/// The paths of object keys that appear more than once in a JSON document, in the order met.
/// A body that is not JSON has none (its decoding reports the error).
pub fn duplicated(json: &[u8]) -> Vec<String> {
    let found = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_slice(json);
    let _ = Walk { path: String::new(), found: &found }.deserialize(&mut de);
    found.into_inner()
}

/// Walks a JSON value, noting repeated keys.
struct Walk<'a> {
    path: String,
    found: &'a RefCell<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() { key.clone() } else { format!("{}.{key}", self.path) };
            if !seen.insert(key) {
                self.found.borrow_mut().push(path.clone());
            }
            map.next_value_seed(Walk { path, found: self.found })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq.next_element_seed(Walk { path: format!("{}[{i}]", self.path), found: self.found })?.is_some() {
            i += 1;
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{duplicated, unknown};
    use k8s_openapi::api::apps::v1::Deployment;
    use serde_json::json;

    #[test]
    fn names_what_the_schema_drops() {
        let sent = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "bogus": 1, "creationTimestamp": null},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "replicaz": 2, "template": {"spec": {"containers": [
                {"name": "c", "image": "x"},
                {"name": "d", "imagee": "y"},
            ]}}},
        });
        assert_eq!(
            unknown::<Deployment>(&sent),
            ["metadata.bogus", "spec.replicaz", "spec.template.spec.containers[1].imagee"]
        );
        assert!(unknown::<Deployment>(&json!({"spec": {"replicas": "many", "bogus": 1}})).is_empty());
    }

    #[test]
    fn names_keys_sent_twice() {
        let body = br#"{"metadata": {"name": "a", "name": "b"}, "spec": {"containers": [{"name": "c", "image": "x", "image": "y"}]}}"#;
        assert_eq!(duplicated(body), ["metadata.name", "spec.containers[0].image"]);
        assert!(duplicated(br#"{"a": 1, "b": {"a": 2}}"#).is_empty());
    }
}
