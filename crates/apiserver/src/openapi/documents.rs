//! The OpenAPI documents: `/openapi/v2` (Swagger 2.0, every group) and one OpenAPI 3.0
//! document per group version under `/openapi/v3`, each with the definitions it reaches.

use super::operations::{Operation, PathItem, resource_paths};
use crate::handlers::ops::KUBERNETES_VERSION;
use registry::Registry;
use registry::schema::definitions::REF_PREFIX;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

const V3_PREFIX: &str = "#/components/schemas/";

/// Builds every document and hands each to `emit`, one at a time so that only one is ever
/// held as JSON values: the v2 document (path `None`), then the v3 ones by their path under
/// `/openapi/v3` (`api/v1`, `apis/apps/v1`).
pub fn build(registry: &Registry, emit: &mut dyn FnMut(Option<&str>, Value)) {
    let defs = registry::schema::definitions();
    let mut by_gv: BTreeMap<String, Vec<PathItem>> = BTreeMap::new();
    for r in registry.all() {
        let gv =
            if r.group.is_empty() { format!("api/{}", r.version) } else { format!("apis/{}/{}", r.group, r.version) };
        by_gv.entry(gv).or_default().extend(resource_paths(r));
    }

    let mut v2_paths = Map::new();
    for items in by_gv.values() {
        for item in items {
            v2_paths.insert(item.path.clone(), v2_path_item(item));
        }
    }
    let v2 = json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": v2_paths,
        "definitions": &defs,
        "securityDefinitions": {"BearerToken": {"description": "Bearer Token authentication", "type": "apiKey", "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    });
    emit(None, v2);

    for (gv, items) in by_gv {
        let mut paths = Map::new();
        let mut roots = BTreeSet::new();
        for item in &items {
            paths.insert(item.path.clone(), v3_path_item(item));
            for op in &item.operations {
                roots.extend(op.body.iter().map(|(_, def)| def.clone()));
                roots.extend(op.responses.iter().map(|(_, def)| def.clone()));
            }
        }
        let schemas: Map<String, Value> =
            reachable(&defs, roots).into_iter().map(|name| (name.clone(), v3_schema(&defs[&name]))).collect();
        let doc = json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}},
            },
        });
        emit(Some(&gv), doc);
    }
}

/// The definitions `roots` reach through `$ref`s, roots included.
fn reachable(defs: &BTreeMap<String, Value>, roots: BTreeSet<String>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.into_iter().collect();
    while let Some(name) = todo.pop() {
        if !defs.contains_key(&name) || !seen.insert(name.clone()) {
            continue;
        }
        collect_refs(&defs[&name], &mut todo);
    }
    seen
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(r) = map.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix(REF_PREFIX)) {
                out.push(r.to_string());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// A schema in OpenAPI 3.0 form: refs point at components, and a ref with siblings (a
/// description) is wrapped in `allOf`, since 3.0 ignores a `$ref`'s siblings.
fn v3_schema(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out: Map<String, Value> =
                map.iter().filter(|(k, _)| *k != "$ref").map(|(k, v)| (k.clone(), v3_schema(v))).collect();
            if let Some(r) = map.get("$ref").and_then(Value::as_str) {
                let target = json!({"$ref": r.replace(REF_PREFIX, V3_PREFIX)});
                if out.is_empty() {
                    return target;
                }
                out.insert("allOf".into(), json!([target]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(v3_schema).collect()),
        other => other.clone(),
    }
}

fn gvk(op: &Operation) -> Value {
    let (group, version, kind) = &op.gvk;
    json!({"group": group, "kind": kind, "version": version})
}

fn pretty_param() -> (&'static str, &'static str, &'static str) {
    ("pretty", "string", "If 'true', then the output is pretty printed.")
}

fn v2_path_item(item: &PathItem) -> Value {
    let mut out = Map::new();
    for op in &item.operations {
        let mut params: Vec<Value> = op
            .query
            .iter()
            .map(|(name, ty, doc)| json!({"name": name, "in": "query", "type": ty, "uniqueItems": true, "description": doc}))
            .collect();
        if let Some((_, def)) = &op.body {
            params.push(json!({"name": "body", "in": "body", "required": true, "schema": {"$ref": format!("{REF_PREFIX}{def}")}}));
        }
        let mut responses: Map<String, Value> = op
            .responses
            .iter()
            .map(|(code, def)| {
                (
                    code.to_string(),
                    json!({"description": status_text(*code), "schema": {"$ref": format!("{REF_PREFIX}{def}")}}),
                )
            })
            .collect();
        responses.insert("401".into(), json!({"description": "Unauthorized"}));
        let consumes = op.body.as_ref().map_or(&["*/*"][..], |(types, _)| types);
        out.insert(
            op.method.into(),
            json!({
                "description": op.description,
                "consumes": consumes,
                "produces": op.produces,
                "schemes": ["https"],
                "tags": [op.tag],
                "operationId": op.id,
                "parameters": params,
                "responses": responses,
                "x-kubernetes-action": op.action,
                "x-kubernetes-group-version-kind": gvk(op),
            }),
        );
    }
    let mut params: Vec<Value> = item
        .path_params
        .iter()
        .map(|(name, doc)| json!({"name": name, "in": "path", "required": true, "type": "string", "uniqueItems": true, "description": doc}))
        .collect();
    let (name, ty, doc) = pretty_param();
    params.push(json!({"name": name, "in": "query", "type": ty, "uniqueItems": true, "description": doc}));
    out.insert("parameters".into(), Value::Array(params));
    Value::Object(out)
}

fn v3_path_item(item: &PathItem) -> Value {
    let mut out = Map::new();
    for op in &item.operations {
        let params: Vec<Value> = op
            .query
            .iter()
            .map(|(name, ty, doc)| json!({"name": name, "in": "query", "description": doc, "schema": {"type": ty, "uniqueItems": true}}))
            .collect();
        let mut responses: Map<String, Value> = op
            .responses
            .iter()
            .map(|(code, def)| {
                let content: Map<String, Value> = op
                    .produces
                    .iter()
                    .map(|t| (t.to_string(), json!({"schema": {"$ref": format!("{V3_PREFIX}{def}")}})))
                    .collect();
                (code.to_string(), json!({"description": status_text(*code), "content": content}))
            })
            .collect();
        responses.insert("401".into(), json!({"description": "Unauthorized"}));
        let mut operation = json!({
            "tags": [op.tag],
            "description": op.description,
            "operationId": op.id,
            "parameters": params,
            "responses": responses,
            "x-kubernetes-action": op.action,
            "x-kubernetes-group-version-kind": gvk(op),
        });
        if let Some((types, def)) = &op.body {
            let content: Map<String, Value> = types
                .iter()
                .map(|t| (t.to_string(), json!({"schema": {"$ref": format!("{V3_PREFIX}{def}")}})))
                .collect();
            operation["requestBody"] = json!({"content": content, "required": true});
        }
        out.insert(op.method.into(), operation);
    }
    let mut params: Vec<Value> = item
        .path_params
        .iter()
        .map(|(name, doc)| json!({"name": name, "in": "path", "description": doc, "required": true, "schema": {"type": "string", "uniqueItems": true}}))
        .collect();
    let (name, ty, doc) = pretty_param();
    params.push(json!({"name": name, "in": "query", "description": doc, "schema": {"type": ty, "uniqueItems": true}}));
    out.insert("parameters".into(), Value::Array(params));
    Value::Object(out)
}

fn status_text(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        _ => "",
    }
}
