//! Unknown and duplicate fields: what a client sent that the kind's schema does not have, or
//! sent twice. Decoding into the typed struct ignores the first, and noting what it ignores
//! names them, as `spec.template.spec.containers[0].imagee`. JSON
//! decoding keeps the last of duplicates; a pass over the raw body names them. Both are for
//! `fieldValidation` (Strict refuses them, Warn, the default, reports them in Warning headers).

use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;

/// The paths in `sent` that decoding it as a `T` ignores (the fields its schema does not
/// have), in one decoding pass; none if it does not decode (the decoding error says more).
pub fn unknown<T: DeserializeOwned>(sent: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match serde_ignored::deserialize::<_, _, T>(sent, |path| out.push(dotted(&path))) {
        Ok(_) => out,
        Err(_) => Vec::new(),
    }
}

/// `value` decoded as a `T`, with the paths of the fields `T` does not have pushed on
/// `unknown`: one pass for the decoding that admission does anyway and the unknown-field
/// warnings of every write.
pub fn decode_noting_unknown<T: DeserializeOwned>(value: Value, unknown: &mut Vec<String>) -> serde_json::Result<T> {
    serde_ignored::deserialize(value, |path| unknown.push(dotted(&path)))
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
    let _ = Walk { at: &Step::Root, found: &found }.deserialize(&mut de);
    found.into_inner()
}

/// Where a walk is in the document. Every write is walked and almost none repeats a key, so
/// the path is spelled out only for a key met twice.
enum Step<'a> {
    Root,
    Member(&'a Step<'a>, &'a str),
    Item(&'a Step<'a>, usize),
}

impl Step<'_> {
    fn spelled(&self) -> String {
        match self {
            Step::Root => String::new(),
            Step::Member(Step::Root, key) => key.to_string(),
            Step::Member(parent, key) => format!("{}.{key}", parent.spelled()),
            Step::Item(parent, index) => format!("{}[{index}]", parent.spelled()),
        }
    }
}

/// Walks a JSON value, noting repeated keys.
struct Walk<'a> {
    at: &'a Step<'a>,
    found: &'a RefCell<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

/// The keys of one object met so far: scanned while they are few, hashed once they are many
/// (a ConfigMap may hold thousands).
enum Seen<'de> {
    Few(Vec<Cow<'de, str>>),
    Many(HashSet<Cow<'de, str>>),
}

impl<'de> Seen<'de> {
    const FEW: usize = 16;

    /// Notes `key`; false if it was met before.
    fn insert(&mut self, key: Cow<'de, str>) -> bool {
        match self {
            Seen::Few(keys) if keys.contains(&key) => false,
            Seen::Few(keys) if keys.len() < Self::FEW => {
                keys.push(key);
                true
            }
            Seen::Few(keys) => {
                let mut many: HashSet<_> = keys.drain(..).collect();
                many.insert(key);
                *self = Seen::Many(many);
                true
            }
            Seen::Many(keys) => keys.insert(key),
        }
    }
}

/// A key, borrowed from the document unless it has escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Cow<'de, str>, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(key))
    }
    fn visit_str<E>(self, key: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(key.to_string()))
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = Seen::Few(Vec::new());
        while let Some(key) = map.next_key_seed(Key)? {
            let first = seen.insert(key.clone());
            let at = Step::Member(self.at, &key);
            if !first {
                self.found.borrow_mut().push(at.spelled());
            }
            map.next_value_seed(Walk { at: &at, found: self.found })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while seq.next_element_seed(Walk { at: &Step::Item(self.at, index), found: self.found })?.is_some() {
            index += 1;
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
    use super::{decode_noting_unknown, duplicated, unknown};
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
        let mut noted = Vec::new();
        let decoded: Deployment = decode_noting_unknown(sent.clone(), &mut noted).unwrap();
        assert_eq!(noted, unknown::<Deployment>(&sent));
        assert_eq!(decoded.metadata.name.as_deref(), Some("web"));
    }

    #[test]
    fn names_keys_sent_twice() {
        let body = br#"{"metadata": {"name": "a", "name": "b"}, "spec": {"containers": [{"name": "c", "image": "x", "image": "y"}]}}"#;
        assert_eq!(duplicated(body), ["metadata.name", "spec.containers[0].image"]);
        assert!(duplicated(br#"{"a": 1, "b": {"a": 2}}"#).is_empty());
        assert_eq!(duplicated(br#"{"a\u0062": 1, "ab": 2, "l": [0, {"k": 1, "k": 2}]}"#), ["ab", "l[1].k"]);
        let many: Vec<String> = (0..40).map(|i| format!("\"k{i}\": {i}")).collect();
        let body = format!("{{\"data\": {{{}, \"k3\": 0, \"k39\": 0}}}}", many.join(", "));
        assert_eq!(duplicated(body.as_bytes()), ["data.k3", "data.k39"]);
    }
}
