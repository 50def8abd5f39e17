//! How objects of a resource sit in the store: their keys, and the bytes they are kept as.
//! The resourceVersion is not stored in the object: it is the key's mod revision, set on read.

use crate::error::{ApiError, ApiResult};
use bytes::Bytes;
use registry::ResourceInfo;
use serde_json::{Value, json};
use store::KeyValue;

pub const ROOT: &str = "/registry/";

/// `/registry/apps/deployments/` or, in one namespace, `/registry/apps/deployments/default/`.
pub fn prefix(info: &ResourceInfo, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if info.namespaced => format!("{ROOT}{}/{ns}/", info.storage),
        _ => format!("{ROOT}{}/", info.storage),
    }
}

pub fn key(info: &ResourceInfo, namespace: Option<&str>, name: &str) -> String {
    format!("{}{name}", prefix(info, namespace))
}

/// The stored bytes of an object (in its storage version, without a resourceVersion).
pub fn encode(info: &ResourceInfo, obj: &Value) -> ApiResult<Bytes> {
    let encoded = match &info.conversion {
        Some(c) => serde_json::to_vec(&WithoutResourceVersion(&(c.to_storage)(obj.clone()))),
        // Every write encodes its object: written as it is, leaving one member out, rather
        // than copied to take it out.
        None => serde_json::to_vec(&WithoutResourceVersion(obj)),
    };
    encoded.map(Bytes::from).map_err(|e| ApiError::internal(format!("encoding object: {e}")))
}

/// An object serialized without `metadata.resourceVersion`.
struct WithoutResourceVersion<'a>(&'a Value);

/// An object's members but one.
struct Without<'a>(&'a serde_json::Map<String, Value>, &'static str);

impl serde::Serialize for WithoutResourceVersion<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Value::Object(members) = self.0 else { return self.0.serialize(serializer) };
        let mut map = serializer.serialize_map(Some(members.len()))?;
        for (name, value) in members {
            match value {
                Value::Object(meta) if name == "metadata" => {
                    map.serialize_entry(name, &Without(meta, "resourceVersion"))?
                }
                _ => map.serialize_entry(name, value)?,
            }
        }
        map.end()
    }
}

impl serde::Serialize for Without<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().filter(|(name, _)| name.as_str() != self.1))
    }
}

/// Parses stored bytes, as stored (the watch cache keeps this form).
pub fn parse_stored(kv: &KeyValue) -> ApiResult<Value> {
    let mut obj: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored object {} is not valid JSON: {e}", kv.key)))?;
    set_resource_version(&mut obj, kv.mod_revision);
    Ok(obj)
}

pub fn set_resource_version(obj: &mut Value, revision: i64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(revision.to_string()));
    }
}

/// A stored object as this resource version serves it.
pub fn to_served(info: &ResourceInfo, stored: Value) -> Value {
    match &info.conversion {
        Some(c) => (c.from_storage)(stored),
        None => stored,
    }
}

pub fn decode(info: &ResourceInfo, kv: &KeyValue) -> ApiResult<Value> {
    Ok(to_served(info, parse_stored(kv)?))
}

pub fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

/// The resourceVersion a write is guarded by, from the object (or merge patch) it sent:
/// none when absent, empty or "0" (an unconditional write, as Kubernetes reads it).
pub fn precondition_of(obj: &Value) -> ApiResult<Option<i64>> {
    let Some(rv) = obj.pointer("/metadata/resourceVersion").and_then(Value::as_str).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let n: i64 = rv.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version: \"{rv}\"")))?;
    Ok((n != 0).then_some(n))
}

/// The object as a meta.k8s.io/v1 PartialObjectMetadata: its metadata alone.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_bytes_leave_out_the_resource_version_and_nothing_else() {
        let registry = registry::Registry::builtin();
        let pods = registry.get("", "v1", "pods").unwrap();
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"resourceVersion": "kept"},
                         "metadata": {"name": "a", "resourceVersion": "7", "labels": {"resourceVersion": "kept"}}});
        let mut want = pod.clone();
        want["metadata"].as_object_mut().unwrap().remove("resourceVersion");
        assert_eq!(encode(pods, &pod).unwrap(), serde_json::to_vec(&want).unwrap());
        assert_eq!(encode(pods, &want).unwrap(), serde_json::to_vec(&want).unwrap());
    }
}
