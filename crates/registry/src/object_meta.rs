//! What every kind does with `metadata` on create and update: names (and generateName),
//! namespace checks, uid, creationTimestamp, generation, and the fields no update may change.
//! Also the split between a resource and its `status` subresource.

use crate::field_error::{FieldError, Path};
use crate::names::{qualified_name, validate_annotations, validate_labels};
use crate::resource::ResourceInfo;
use crate::strategy::AdmitError;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Generated names are the prefix plus five characters from this alphabet (no vowels, so no
/// words), as Kubernetes does.
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const MAX_GENERATED_PREFIX: usize = 58;

pub fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn random_suffix() -> String {
    uuid::Uuid::new_v4().as_bytes()[..5]
        .iter()
        .map(|b| SUFFIX_ALPHABET[*b as usize % SUFFIX_ALPHABET.len()] as char)
        .collect()
}

fn meta_mut(obj: &mut Value) -> Result<&mut Map<String, Value>, AdmitError> {
    let Value::Object(map) = obj else { return Err(AdmitError::BadRequest("the body is not a JSON object".into())) };
    let meta = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    match meta {
        Value::Object(m) => Ok(m),
        _ => Err(AdmitError::BadRequest("metadata must be an object".into())),
    }
}

fn str_of<'a>(meta: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    meta.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn string_map(meta: &Map<String, Value>, key: &str) -> Result<BTreeMap<String, String>, AdmitError> {
    match meta.get(key) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| AdmitError::BadRequest(format!("metadata.{key}: {e}")))
        }
    }
}

/// Checks the namespace of the body against the request's, filling it in when absent.
pub fn check_namespace(info: &ResourceInfo, obj: &mut Value, namespace: Option<&str>) -> Result<(), AdmitError> {
    let meta = meta_mut(obj)?;
    match (info.namespaced, namespace) {
        (true, Some(ns)) => match str_of(meta, "namespace") {
            Some(body_ns) if body_ns != ns => Err(AdmitError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            )),
            _ => {
                meta.insert("namespace".into(), Value::String(ns.into()));
                Ok(())
            }
        },
        _ => {
            meta.remove("namespace");
            Ok(())
        }
    }
}

fn validate_meta(info: &ResourceInfo, meta: &Map<String, Value>) -> Result<Vec<FieldError>, AdmitError> {
    let path = Path::new("metadata");
    let mut errs = Vec::new();
    match str_of(meta, "name") {
        None => errs.push(FieldError::required(path.child("name"), "name or generateName is required")),
        Some(name) => {
            for msg in info.name_rule.check(name) {
                errs.push(FieldError::invalid(path.child("name"), name, msg));
            }
        }
    }
    validate_labels(&string_map(meta, "labels")?, &path.child("labels"), &mut errs);
    validate_annotations(&string_map(meta, "annotations")?, &path.child("annotations"), &mut errs);
    let finalizers: Vec<String> = match meta.get("finalizers") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| AdmitError::BadRequest(format!("metadata.finalizers: {e}")))?,
    };
    for (i, f) in finalizers.iter().enumerate() {
        for msg in qualified_name(f) {
            errs.push(FieldError::invalid(path.child("finalizers").index(i), f, msg));
        }
    }
    Ok(errs)
}

fn fail_on(errs: Vec<FieldError>) -> Result<(), AdmitError> {
    if errs.is_empty() { Ok(()) } else { Err(AdmitError::Invalid(errs)) }
}

/// Names the object from its generateName, if it has one, and returns the name: again when
/// the name it got is taken, as the API server retries such a create.
pub fn name_from_generate_name(meta: &mut Map<String, Value>) -> Option<String> {
    let prefix: String = str_of(meta, "generateName")?.chars().take(MAX_GENERATED_PREFIX).collect();
    let name = format!("{prefix}{}", random_suffix());
    meta.insert("name".into(), Value::String(name.clone()));
    Some(name)
}

/// Prepares the metadata of a new object: its name (from generateName if needed), uid,
/// creationTimestamp and generation; clears what only the server sets.
pub fn prepare_create(info: &ResourceInfo, obj: &mut Value, namespace: Option<&str>) -> Result<(), AdmitError> {
    check_namespace(info, obj, namespace)?;
    let meta = meta_mut(obj)?;
    if str_of(meta, "name").is_none() {
        name_from_generate_name(meta);
    }
    fail_on(validate_meta(info, meta)?)?;
    for key in ["resourceVersion", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"] {
        meta.remove(key);
    }
    meta.insert("uid".into(), Value::String(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), Value::String(now_rfc3339()));
    if info.generation {
        meta.insert("generation".into(), Value::from(1));
    } else {
        meta.remove("generation");
    }
    drop_empty_collections(meta);
    Ok(())
}

/// Empty labels, annotations, finalizers and owner references are left out of an object,
/// as Kubernetes' encoding leaves them.
fn drop_empty_collections(meta: &mut Map<String, Value>) {
    meta.retain(|key, value| {
        let empty = match value {
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        !(empty && matches!(key.as_str(), "labels" | "annotations" | "finalizers" | "ownerReferences"))
    });
}

/// Everything but metadata and status: a change here bumps the generation.
fn spec_part(obj: &Value) -> Vec<(&String, &Value)> {
    obj.as_object()
        .map(|m| {
            m.iter().filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")).collect()
        })
        .unwrap_or_default()
}

/// Bumps metadata.generation when the spec changed. Called on the defaulted object, so that
/// re-sending an unchanged manifest (without its defaults) changes nothing.
pub fn bump_generation(info: &ResourceInfo, new: &mut Value, old: &Value) {
    if !info.generation || spec_part(new) == spec_part(old) {
        return;
    }
    let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
    if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("generation".into(), Value::from(generation + 1));
    }
}

/// Why an update is refused before the kind's own rules are asked.
pub enum UpdateRefusal {
    Admit(AdmitError),
    /// The object's uid is not the stored one's (a 409 Conflict).
    UidMismatch(String),
}

impl From<AdmitError> for UpdateRefusal {
    fn from(e: AdmitError) -> Self {
        UpdateRefusal::Admit(e)
    }
}

/// Which part of an object an update writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateScope {
    /// The main resource: for kinds with a status subresource, status changes are ignored.
    Main,
    /// The `status` subresource: only status changes are taken.
    Status,
}

/// Prepares an update of `old` to `new`: the status/spec split, and the metadata no update
/// may change.
pub fn prepare_update(
    info: &ResourceInfo,
    new: &mut Value,
    old: &Value,
    scope: UpdateScope,
) -> Result<(), UpdateRefusal> {
    if let Some(uid) = new.pointer("/metadata/uid").and_then(Value::as_str).filter(|u| !u.is_empty())
        && Some(uid) != old.pointer("/metadata/uid").and_then(Value::as_str)
    {
        return Err(UpdateRefusal::UidMismatch(uid.to_string()));
    }
    let new_rv = new.pointer("/metadata/resourceVersion").cloned();
    match scope {
        UpdateScope::Status => {
            // The new status on the old object; nothing else changes. What the writer left
            // as it was is not copied again.
            if let (Value::Object(m), Some(old)) = (&mut *new, old.as_object()) {
                m.retain(|key, _| key == "status" || old.contains_key(key));
                for (key, value) in old.iter().filter(|(key, _)| *key != "status") {
                    if m.get(key) != Some(value) {
                        m.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        UpdateScope::Main if info.status => {
            if let Value::Object(m) = new {
                match old.get("status") {
                    Some(s) => m.insert("status".into(), s.clone()),
                    None => m.remove("status"),
                };
            }
        }
        UpdateScope::Main => {}
    }
    let no_meta = Map::new();
    let old_meta = old.get("metadata").and_then(Value::as_object).unwrap_or(&no_meta);
    let meta = meta_mut(new)?;
    if let Some(rv) = new_rv {
        meta.insert("resourceVersion".into(), rv);
    }
    for key in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "namespace",
        "name",
    ] {
        match old_meta.get(key) {
            Some(v) => meta.insert(key.into(), v.clone()),
            None => meta.remove(key),
        };
    }
    meta.remove("selfLink");
    drop_empty_collections(meta);
    let mut errs = validate_meta(info, meta)?;
    if old_meta.contains_key("deletionTimestamp") {
        let old_finalizers = old_meta.get("finalizers").and_then(Value::as_array).cloned().unwrap_or_default();
        let added = meta
            .get("finalizers")
            .and_then(Value::as_array)
            .is_some_and(|now| now.iter().any(|f| !old_finalizers.contains(f)));
        if added {
            errs.push(FieldError::forbidden(
                "metadata.finalizers",
                "no new finalizers can be added if the object is being deleted",
            ));
        }
    }
    fail_on(errs)?;
    Ok(())
}
