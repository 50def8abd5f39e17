//! The OpenAPI definitions of the built-in kinds: the schemas `k8s-openapi` generates (with
//! Kubernetes' descriptions and definition names) plus the `x-kubernetes-*` extensions from
//! the facts table, and the list kinds. Refs point at `#/definitions/<name>`; each OpenAPI
//! document rewrites them to its own form.

use super::facts::TypeFacts;
use crate::ResourceInfo;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

pub const REF_PREFIX: &str = "#/definitions/";

/// Builds every definition the resources reach, keyed by definition name.
pub fn build(resources: &[ResourceInfo], facts: &HashMap<&'static str, TypeFacts>) -> BTreeMap<String, Value> {
    let mut generator =
        SchemaGenerator::new(SchemaSettings::draft2020_12().with(|s| s.definitions_path = "/definitions".into()));
    for resource in resources {
        (resource.schema)(&mut generator);
    }
    for seed in EXTRA_SEEDS {
        seed(&mut generator);
    }
    let mut defs: BTreeMap<String, Value> = generator.take_definitions(false).into_iter().collect();
    for (name, schema) in defs.iter_mut() {
        if let Some(facts) = facts.get(name.as_str()) {
            add_extensions(schema, facts);
        }
        optional_metadata(schema);
    }
    for resource in resources {
        let kind_def = resource.definition.clone();
        add_gvk(&mut defs, &kind_def, resource.group, resource.version, resource.kind);
        let list_def = format!("{kind_def}List");
        if !defs.contains_key(&list_def) {
            let list = list_schema(&kind_def, defs.get(&kind_def), resource.kind);
            defs.insert(list_def.clone(), list);
        }
        add_gvk(&mut defs, &list_def, resource.group, resource.version, &format!("{}List", resource.kind));
    }
    defs
}

/// Types the API serves besides the resources themselves.
const EXTRA_SEEDS: &[fn(&mut SchemaGenerator) -> schemars::Schema] = &[
    |g| g.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>(),
    |g| g.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions>(),
    |g| g.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::WatchEvent<()>>(),
    |g| g.subschema_for::<k8s_openapi::api::autoscaling::v1::Scale>(),
    |g| g.subschema_for::<k8s_openapi::api::core::v1::Binding>(),
    |g| g.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::Patch>(),
];

fn add_extensions(schema: &mut Value, facts: &TypeFacts) {
    let Some(obj) = schema.as_object_mut() else { return };
    if facts.atomic {
        obj.insert("x-kubernetes-map-type".into(), "atomic".into());
    }
    let Some(Value::Object(props)) = obj.get_mut("properties") else { return };
    for f in &facts.fields {
        let Some(Value::Object(prop)) = props.get_mut(f.name) else { continue };
        if let Some(key) = f.merge_key {
            prop.insert("x-kubernetes-patch-merge-key".into(), key.into());
        }
        if !f.patch.is_empty() {
            prop.insert("x-kubernetes-patch-strategy".into(), f.patch.join(",").into());
        }
        if let Some(list) = f.list_type {
            prop.insert("x-kubernetes-list-type".into(), list.into());
        }
        if !f.list_keys.is_empty() {
            prop.insert("x-kubernetes-list-map-keys".into(), f.list_keys.clone().into());
        }
        if let Some(map) = f.map_type {
            prop.insert("x-kubernetes-map-type".into(), map.into());
        }
    }
}

/// `metadata` is never required in Kubernetes' schemas; k8s-openapi marks it so because its
/// Rust field is not optional.
fn optional_metadata(schema: &mut Value) {
    let Some(Value::Array(required)) = schema.get_mut("required") else { return };
    required.retain(|r| r != "metadata");
    if required.is_empty() {
        schema.as_object_mut().map(|o| o.remove("required"));
    }
}

fn add_gvk(defs: &mut BTreeMap<String, Value>, def: &str, group: &str, version: &str, kind: &str) {
    let Some(Value::Object(schema)) = defs.get_mut(def) else { return };
    let gvk = json!({"group": group, "kind": kind, "version": version});
    match schema.entry("x-kubernetes-group-version-kind").or_insert_with(|| json!([])) {
        Value::Array(list) if !list.contains(&gvk) => list.push(gvk),
        _ => {}
    }
}

/// A `<Kind>List`, whose `apiVersion` and `kind` fields read as the kind's own do.
fn list_schema(item_def: &str, item: Option<&Value>, kind: &str) -> Value {
    let item_prop = |name: &str| item.and_then(|i| i.pointer(&format!("/properties/{name}"))).cloned();
    let mut props = Map::new();
    props.insert("apiVersion".into(), item_prop("apiVersion").unwrap_or_else(|| json!({"type": "string"})));
    props.insert(
        "items".into(),
        json!({"description": format!("List of {kind} objects."), "type": "array",
               "items": {"$ref": format!("{REF_PREFIX}{item_def}")}}),
    );
    props.insert("kind".into(), item_prop("kind").unwrap_or_else(|| json!({"type": "string"})));
    props.insert(
        "metadata".into(),
        json!({"$ref": format!("{REF_PREFIX}io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"),
               "description": "Standard list metadata."}),
    );
    json!({"description": format!("{kind}List is a list of {kind} objects."), "type": "object",
           "required": ["items"], "properties": props})
}
