//! Strategic merge patch (`application/strategic-merge-patch+json`): a JSON merge patch that
//! knows the built-in types. Lists whose field has `patchStrategy: merge` are merged by their
//! `patchMergeKey` (containers by name, ports by containerPort) or, for lists of scalars, as
//! sets (finalizers); other lists are replaced. The directives kubectl sends are honoured:
//! `$patch: replace|delete|merge`, `$retainKeys`, `$setElementOrder/<field>` and
//! `$deleteFromPrimitiveList/<field>`.

use super::Ty;
use crate::schema::{Shape, TypeModel, model};
use serde_json::{Map, Value};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Why a patch could not be applied: the patch is malformed for the type (a 400).
#[derive(Debug, PartialEq)]
pub struct PatchError(pub String);

impl std::fmt::Display for PatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Applies `patch` to `original`, an object of the OpenAPI definition `definition`.
pub fn apply(original: Value, patch: Value, definition: &str) -> Result<Value, PatchError> {
    let model = model();
    let ty = model.def(definition).map_or(Ty::Untyped, Ty::Def);
    match (original, patch) {
        (Value::Object(original), Value::Object(patch)) => {
            Patcher { model }.merge_map(original, patch, ty).map(Value::Object)
        }
        _ => Err(PatchError("a strategic merge patch must be a JSON object".into())),
    }
}

/// What the schema says about one field of an object being patched.
struct FieldMeta<'a> {
    shape: Option<&'a Shape>,
    merge: bool,
    replace: bool,
    merge_key: Option<&'a str>,
}

struct Patcher<'a> {
    model: &'a TypeModel,
}

impl<'a> Patcher<'a> {
    fn meta(&self, ty: Ty<'a>, key: &str) -> FieldMeta<'a> {
        match ty {
            Ty::Def(def) => match def.field(key) {
                Some(f) => FieldMeta {
                    shape: Some(&f.shape),
                    merge: f.facts.patch.contains(&"merge"),
                    replace: f.facts.patch.contains(&"replace"),
                    merge_key: f.facts.merge_key,
                },
                None => FieldMeta { shape: None, merge: false, replace: false, merge_key: None },
            },
            Ty::Map(shape) => FieldMeta { shape: Some(shape), merge: false, replace: false, merge_key: None },
            Ty::Untyped => FieldMeta { shape: None, merge: false, replace: false, merge_key: None },
        }
    }

    fn ty_of(&self, shape: Option<&'a Shape>) -> Ty<'a> {
        shape.map_or(Ty::Untyped, |s| Ty::of(self.model, s))
    }

    fn element_ty(&self, shape: Option<&'a Shape>) -> Ty<'a> {
        match shape {
            Some(Shape::List(element)) => Ty::of(self.model, element),
            _ => Ty::Untyped,
        }
    }

    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
        ty: Ty<'a>,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(directive) = patch.remove(PATCH) {
            return match directive.as_str() {
                Some("replace") => Ok(patch),
                Some("delete") => Ok(Map::new()),
                _ => Err(PatchError(format!("unknown patch type: {directive} in map: {}", Value::Object(patch)))),
            };
        }
        if let Some(retain) = patch.remove(RETAIN_KEYS) {
            retain_keys(&mut original, &patch, &retain)?;
        }
        self.apply_element_orders(&mut original, &mut patch, ty)?;

        for (key, value) in patch {
            if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
                let Value::Array(remove) = value else {
                    return Err(PatchError(format!("{key} must be a list")));
                };
                if let Some(Value::Array(list)) = original.get_mut(field) {
                    list.retain(|v| !remove.contains(v));
                }
                continue;
            }
            if value.is_null() {
                original.remove(&key);
                continue;
            }
            let meta = self.meta(ty, &key);
            let merged = match (original.remove(&key), value) {
                (Some(Value::Object(o)), Value::Object(p)) if !meta.replace => {
                    Value::Object(self.merge_map(o, p, self.ty_of(meta.shape))?)
                }
                (Some(Value::Array(o)), Value::Array(p)) if meta.merge => {
                    Value::Array(self.merge_list(o, p, &key, &meta)?)
                }
                // Replaced lists and maps are taken as sent, as Kubernetes does.
                (Some(Value::Object(_)), p @ Value::Object(_)) | (Some(Value::Array(_)), p @ Value::Array(_)) => p,
                (_, p) => match without_directives(p) {
                    Some(v) => v,
                    None => continue,
                },
            };
            original.insert(key, merged);
        }
        Ok(original)
    }

    /// `$setElementOrder/<field>`: merges the field's list and then orders it: the listed
    /// items in the listed order, the items only the server has where they were.
    fn apply_element_orders(
        &self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
        ty: Ty<'a>,
    ) -> Result<(), PatchError> {
        let orders: Vec<String> = patch.keys().filter(|k| k.starts_with(SET_ELEMENT_ORDER)).cloned().collect();
        for directive in orders {
            let Some(Value::Array(order)) = patch.remove(&directive) else {
                return Err(PatchError(format!("{directive} must be a list")));
            };
            let field = &directive[SET_ELEMENT_ORDER.len()..];
            let meta = self.meta(ty, field);
            let server = match original.get(field) {
                Some(Value::Array(list)) => list.clone(),
                _ => Vec::new(),
            };
            let merged = match (original.remove(field), patch.remove(field)) {
                (Some(o), None) => o,
                (None, Some(p)) => without_directives(p).unwrap_or(Value::Array(Vec::new())),
                (Some(Value::Array(o)), Some(Value::Array(p))) if meta.merge => {
                    Value::Array(self.merge_list(o, p, field, &meta)?)
                }
                (Some(_), Some(p)) => p,
                (None, None) => continue,
            };
            let Value::Array(merged) = merged else {
                return Err(PatchError(format!("{field} must be a list")));
            };
            let key = meta.merge_key;
            let (listed, server_only): (Vec<Value>, Vec<Value>) =
                merged.into_iter().partition(|item| index_of(&order, item, key).is_some());
            original.insert(field.to_string(), Value::Array(order_items(listed, server_only, &order, &server, key)));
        }
        Ok(())
    }

    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        field: &str,
        meta: &FieldMeta<'a>,
    ) -> Result<Vec<Value>, PatchError> {
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        let of_maps = original.first().or(patch.first()).is_some_and(Value::is_object);
        if !of_maps {
            let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
            for item in original.iter().chain(&patch) {
                if !merged.contains(item) {
                    merged.push(item.clone());
                }
            }
            let (listed, server_only) = merged.into_iter().partition(|item| patch.contains(item));
            return Ok(order_items(listed, server_only, &patch, &original, None));
        }
        let Some(key) = meta.merge_key else {
            return Err(PatchError(format!("cannot merge lists without merge key for {field}")));
        };
        let (mut server, patch) = special_elements(original, patch, key)?;
        let server_order = server.clone();
        let element_ty = self.element_ty(meta.shape);
        for item in &patch {
            let Value::Object(item_patch) = item else {
                return Err(PatchError(format!("{field}: every item must be an object")));
            };
            let Some(key_value) = item_patch.get(key) else {
                return Err(PatchError(format!("map: {item} does not contain declared merge key: {key}")));
            };
            match server.iter().position(|s| s.get(key) == Some(key_value)) {
                Some(at) => {
                    let Value::Object(existing) = std::mem::take(&mut server[at]) else {
                        return Err(PatchError(format!("{field}: every item must be an object")));
                    };
                    server[at] = Value::Object(self.merge_map(existing, item_patch.clone(), element_ty)?);
                }
                None => server.extend(without_directives(item.clone())),
            }
        }
        let (listed, server_only) = server.into_iter().partition(|item| index_of(&patch, item, Some(key)).is_some());
        Ok(order_items(listed, server_only, &patch, &server_order, Some(key)))
    }
}

/// Applies the list items that carry `$patch`: `delete` removes the items with that merge
/// key, `replace` makes the list exactly the patch's other items.
fn special_elements(
    mut server: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        match item.get(PATCH).and_then(Value::as_str) {
            None if item.get(PATCH).is_none() => plain.push(item),
            Some("delete") => {
                let Some(key_value) = item.get(key) else {
                    return Err(PatchError(format!("map: {item} does not contain declared merge key: {key}")));
                };
                server.retain(|s| s.get(key) != Some(key_value));
            }
            Some("replace") => replace = true,
            Some("merge") => return Err(PatchError("merging lists cannot yet be specified in the patch".into())),
            _ => return Err(PatchError(format!("unknown patch type in list item: {item}"))),
        }
    }
    if replace { Ok((plain, Vec::new())) } else { Ok((server, plain)) }
}

/// `$retainKeys`: every key the patch sets must be listed, and the original keeps only
/// the listed keys.
fn retain_keys(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    retain: &Value,
) -> Result<(), PatchError> {
    let Value::Array(retain) = retain else {
        return Err(PatchError("$retainKeys must be a list of field names".into()));
    };
    let listed = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    let unlisted = patch.iter().find(|(k, v)| {
        !v.is_null() && !k.starts_with(DELETE_FROM_PRIMITIVE_LIST) && !k.starts_with(SET_ELEMENT_ORDER) && !listed(k)
    });
    if let Some((k, _)) = unlisted {
        return Err(PatchError(format!("doesn't satisfy retainKeys directive: {k} is not listed in $retainKeys")));
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// The patch's value for a field the original lacks: without directives and nulls.
/// `None` when the value itself is a directive (`{"$patch": "delete"}`).
fn without_directives(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) if map.contains_key(PATCH) => None,
        Value::Object(map) => Some(Value::Object(
            map.into_iter()
                .filter(|(k, v)| !v.is_null() && !k.starts_with('$'))
                .filter_map(|(k, v)| without_directives(v).map(|v| (k, v)))
                .collect(),
        )),
        Value::Array(items) => Some(Value::Array(items.into_iter().filter_map(without_directives).collect())),
        other => Some(other),
    }
}

/// Where `item` is in `list`, comparing merge keys for objects and values for scalars.
fn index_of(list: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    match key {
        Some(key) => {
            let wanted = item.get(key)?;
            list.iter().position(|v| v.get(key) == Some(wanted))
        }
        None => list.iter().position(|v| v == item),
    }
}

/// Orders a merged list: the items the patch names in the patch's order, with the items
/// only the server has interleaved where they stood on the server.
fn order_items(
    mut listed: Vec<Value>,
    mut server_only: Vec<Value>,
    order: &[Value],
    server: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let position = |list: &[Value], item: &Value| index_of(list, item, key).unwrap_or(usize::MAX);
    listed.sort_by_key(|item| position(order, item));
    server_only.sort_by_key(|item| position(server, item));
    let mut out = Vec::with_capacity(listed.len() + server_only.len());
    let (mut left, mut right) = (server_only.into_iter().peekable(), listed.into_iter().peekable());
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => match (index_of(server, l, key), index_of(server, r, key)) {
                (Some(li), Some(ri)) => li < ri,
                _ => false,
            },
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        out.extend(if take_left { left.next() } else { right.next() });
    }
    out
}

#[cfg(test)]
#[path = "strategic_tests.rs"]
mod tests;
