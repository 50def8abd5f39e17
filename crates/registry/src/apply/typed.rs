//! How server-side apply sees each value of an object, from the type model: a struct or map
//! whose fields are tracked one by one, a list keyed by some of its items' fields, a set, or
//! an atomic value owned and replaced as a whole. Lists and maps follow `+listType`,
//! `+listMapKey` and `+mapType`, falling back on the patch strategy, as Kubernetes' schema
//! conversion does.

use super::field_set::{Elem, FieldSet, Path};
use crate::schema::facts::FieldFacts;
use crate::schema::{Def, Shape, TypeModel};
use serde_json::{Map, Value};

#[derive(Clone, Copy)]
pub enum Kind<'a> {
    Struct(&'a Def),
    /// Arbitrary keys, each tracked, whose values have this shape.
    Map(&'a Shape),
    /// A list whose items are identified by these fields.
    Keyed(&'a [&'static str], &'a Shape),
    Set,
    Atomic,
}

pub struct Typed<'a> {
    pub model: &'a TypeModel,
}

impl<'a> Typed<'a> {
    pub fn root(&self, definition: &str) -> Kind<'a> {
        self.model.def(definition).map_or(Kind::Atomic, |d| self.def_kind(d))
    }

    fn def_kind(&self, def: &'a Def) -> Kind<'a> {
        if def.atomic || def.fields.is_empty() { Kind::Atomic } else { Kind::Struct(def) }
    }

    fn shape_kind(&self, shape: &'a Shape, facts: Option<&'a FieldFacts>) -> Kind<'a> {
        let atomic_map = facts.and_then(|f| f.map_type) == Some("atomic");
        match shape {
            Shape::Def(name) => match self.model.def(name) {
                Some(def) if !atomic_map => self.def_kind(def),
                _ => Kind::Atomic,
            },
            Shape::Map(values) if !atomic_map => Kind::Map(values),
            Shape::List(items) => {
                let Some(f) = facts else { return Kind::Atomic };
                match f.list_type {
                    Some("map") if !f.list_keys.is_empty() => Kind::Keyed(&f.list_keys, items),
                    Some("set") => Kind::Set,
                    Some(_) => Kind::Atomic,
                    None if f.patch.contains(&"merge") => match &f.merge_key {
                        Some(key) => Kind::Keyed(std::slice::from_ref(key), items),
                        None => Kind::Set,
                    },
                    None => Kind::Atomic,
                }
            }
            _ => Kind::Atomic,
        }
    }

    /// The kind of a struct's or map's member.
    pub fn member(&self, parent: Kind<'a>, name: &str) -> Kind<'a> {
        match parent {
            Kind::Struct(def) => def.field(name).map_or(Kind::Atomic, |f| self.shape_kind(&f.shape, Some(&f.facts))),
            Kind::Map(values) => self.shape_kind(values, None),
            _ => Kind::Atomic,
        }
    }

    /// The kind of a keyed list's items.
    pub fn item(&self, items: &'a Shape) -> Kind<'a> {
        self.shape_kind(items, None)
    }

    /// The fields an applied configuration sets: its leaves, and the items of keyed lists.
    pub fn leaves(&self, value: &Value, kind: Kind<'a>, path: &mut Path, out: &mut FieldSet) {
        match (kind, value) {
            (Kind::Struct(_) | Kind::Map(_), Value::Object(map)) if !map.is_empty() => {
                for (name, child) in map.iter().filter(|(_, v)| !v.is_null()) {
                    path.push(Elem::Field(name.clone()));
                    self.leaves(child, self.member(kind, name), path, out);
                    path.pop();
                }
            }
            (Kind::Set, Value::Array(items)) if !items.is_empty() => {
                for item in items {
                    path.push(Elem::Value(item.to_string()));
                    out.insert(path);
                    path.pop();
                }
            }
            (Kind::Keyed(keys, items_shape), Value::Array(items)) if !items.is_empty() => {
                for item in items {
                    path.push(Elem::Key(key_of(item, keys)));
                    out.insert(path);
                    self.leaves(item, self.item(items_shape), path, out);
                    path.pop();
                }
            }
            _ => out.insert(path),
        }
    }

    /// The fields an update sets or changes, going from `old` to `new`: changed leaves, new
    /// list items, and new maps (which, like items, are owned as themselves).
    pub fn changed(&self, old: Option<&Value>, new: &Value, kind: Kind<'a>, path: &mut Path, out: &mut FieldSet) {
        match (kind, new) {
            (Kind::Struct(_) | Kind::Map(_), Value::Object(map)) => {
                let old_map = old.and_then(Value::as_object);
                if old_map.is_none() && (matches!(kind, Kind::Map(_)) || map.is_empty()) {
                    out.insert(path);
                }
                for (name, child) in map.iter().filter(|(_, v)| !v.is_null()) {
                    let before = old_map.and_then(|m| m.get(name)).filter(|v| !v.is_null());
                    // Nothing in an unchanged member changed: most writes change a few
                    // fields of a large object.
                    if before == Some(child) {
                        continue;
                    }
                    path.push(Elem::Field(name.clone()));
                    self.changed(before, child, self.member(kind, name), path, out);
                    path.pop();
                }
            }
            (Kind::Set, Value::Array(items)) => {
                let before = old.and_then(Value::as_array);
                if items.is_empty() && before.is_none() {
                    out.insert(path);
                }
                for item in items.iter().filter(|i| !before.is_some_and(|b| b.contains(i))) {
                    path.push(Elem::Value(item.to_string()));
                    out.insert(path);
                    path.pop();
                }
            }
            (Kind::Keyed(keys, items_shape), Value::Array(items)) => {
                let before = old.and_then(Value::as_array);
                if items.is_empty() && before.is_none() {
                    out.insert(path);
                }
                for item in items {
                    let key = key_of(item, keys);
                    let old_item = before.and_then(|b| b.iter().find(|o| key_of(o, keys) == key));
                    if old_item == Some(item) {
                        continue;
                    }
                    path.push(Elem::Key(key));
                    if old_item.is_none() {
                        out.insert(path);
                    }
                    self.changed(old_item, item, self.item(items_shape), path, out);
                    path.pop();
                }
            }
            _ => {
                if old != Some(new) {
                    out.insert(path);
                }
            }
        }
    }

    /// Keeps of `set` (the fields under `value`'s place) only the paths `value` has, as they
    /// would be in `present`'s set of it: the same as intersecting the two, without building
    /// a set of every field of the object.
    pub fn retain_present(&self, set: &mut FieldSet, value: &Value, kind: Kind<'a>) {
        match (kind, value) {
            (Kind::Struct(_) | Kind::Map(_), Value::Object(map)) => set.retain_children(|elem, child| {
                let Elem::Field(name) = elem else { return false };
                let Some(value) = map.get(name).filter(|v| !v.is_null()) else { return false };
                self.retain_present(child, value, self.member(kind, name));
                true
            }),
            (Kind::Set, Value::Array(items)) => set.retain_children(|elem, child| {
                // A set's items are owned as themselves, with nothing under them.
                child.retain_children(|_, _| false);
                matches!(elem, Elem::Value(json) if items.iter().any(|item| item.to_string() == *json))
            }),
            (Kind::Keyed(keys, items_shape), Value::Array(items)) => set.retain_children(|elem, child| {
                let Elem::Key(key) = elem else { return false };
                let Some(item) = items.iter().find(|item| key_of(item, keys) == *key) else { return false };
                self.retain_present(child, item, self.item(items_shape));
                true
            }),
            _ => set.retain_children(|_, _| false),
        }
    }

    /// Server-side apply's merge: the applied configuration's values win; keyed lists merge
    /// item by item, sets by value; atomic values are replaced.
    pub fn merge(&self, live: Option<&Value>, applied: &Value, kind: Kind<'a>) -> Value {
        match (kind, live, applied) {
            (Kind::Struct(_) | Kind::Map(_), Some(Value::Object(live)), Value::Object(applied)) => {
                let mut out = live.clone();
                for (name, value) in applied {
                    if value.is_null() {
                        out.remove(name);
                        continue;
                    }
                    let merged = self.merge(live.get(name), value, self.member(kind, name));
                    out.insert(name.clone(), merged);
                }
                Value::Object(out)
            }
            (Kind::Set, Some(Value::Array(live)), Value::Array(applied)) => {
                let mut out = live.clone();
                out.extend(applied.iter().filter(|v| !live.contains(v)).cloned());
                Value::Array(out)
            }
            (Kind::Keyed(keys, items_shape), Some(Value::Array(live)), Value::Array(applied)) => {
                let mut out = live.clone();
                for item in applied {
                    let key = key_of(item, keys);
                    match out.iter().position(|o| key_of(o, keys) == key) {
                        Some(at) => out[at] = self.merge(Some(&live[at]), item, self.item(items_shape)),
                        None => out.push(self.merge(None, item, self.item(items_shape))),
                    }
                }
                Value::Array(out)
            }
            (_, _, applied) => without_nulls(applied),
        }
    }
}

fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// A key field of a list item. A port's `protocol` defaults to TCP, as the schema says, so
/// that an applied port without it names the live one.
fn key_value(item: &Value, key: &str) -> Option<Value> {
    match item.get(key) {
        Some(v) if !v.is_null() => Some(v.clone()),
        _ if key == "protocol" => Some(Value::String("TCP".into())),
        _ => None,
    }
}

/// The key of a keyed list's item: its key fields as a JSON object, keys sorted.
pub fn key_of(item: &Value, keys: &[&str]) -> String {
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    let fields: Vec<String> = sorted
        .iter()
        .filter_map(|k| key_value(item, k).map(|v| format!("{}:{v}", Value::String(k.to_string()))))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// Whether every item of every keyed list in `value` has its key fields.
pub fn missing_keys(typed: &Typed<'_>, value: &Value, kind: Kind<'_>, path: &mut Path) -> Option<String> {
    match (kind, value) {
        (Kind::Struct(_) | Kind::Map(_), Value::Object(map)) => map.iter().find_map(|(name, child)| {
            path.push(Elem::Field(name.clone()));
            let found = missing_keys(typed, child, typed.member(kind, name), path);
            path.pop();
            found
        }),
        (Kind::Keyed(keys, items_shape), Value::Array(items)) => items.iter().find_map(|item| {
            if let Some(k) = keys.iter().find(|k| key_value(item, k).is_none()) {
                let at = super::field_set::display(path);
                return Some(format!("{at}: associative list with keys has an element that omits key field \"{k}\""));
            }
            path.push(Elem::Key(key_of(item, keys)));
            let found = missing_keys(typed, item, typed.item(items_shape), path);
            path.pop();
            found
        }),
        _ => None,
    }
}

/// The value at `path`, if present.
pub fn get<'v>(value: &'v Value, path: &[Elem]) -> Option<&'v Value> {
    let Some((first, rest)) = path.split_first() else { return Some(value) };
    let child = match (first, value) {
        (Elem::Field(name), Value::Object(map)) => map.get(name),
        (Elem::Key(key), Value::Array(items)) => items.iter().find(|item| matches_key(item, key)),
        (Elem::Value(json), Value::Array(items)) => items.iter().find(|item| item.to_string() == *json),
        (Elem::Index(i), Value::Array(items)) => items.get(*i),
        _ => None,
    }?;
    get(child, rest)
}

/// Removes the value at `path`, if present.
pub fn remove(value: &mut Value, path: &[Elem]) {
    let Some((last, parent_path)) = path.split_last() else { return };
    let Some(parent) = get_mut(value, parent_path) else { return };
    match (last, parent) {
        (Elem::Field(name), Value::Object(map)) => {
            map.remove(name);
        }
        (Elem::Key(key), Value::Array(items)) => items.retain(|item| !matches_key(item, key)),
        (Elem::Value(json), Value::Array(items)) => items.retain(|item| item.to_string() != *json),
        (Elem::Index(i), Value::Array(items)) if *i < items.len() => {
            items.remove(*i);
        }
        _ => {}
    }
}

fn get_mut<'v>(value: &'v mut Value, path: &[Elem]) -> Option<&'v mut Value> {
    let Some((first, rest)) = path.split_first() else { return Some(value) };
    let child = match (first, value) {
        (Elem::Field(name), Value::Object(map)) => map.get_mut(name),
        (Elem::Key(key), Value::Array(items)) => items.iter_mut().find(|item| matches_key(item, key)),
        (Elem::Value(json), Value::Array(items)) => items.iter_mut().find(|item| item.to_string() == *json),
        (Elem::Index(i), Value::Array(items)) => items.get_mut(*i),
        _ => None,
    }?;
    get_mut(child, rest)
}

/// Whether a list item has the key fields of a `k:` path element.
fn matches_key(item: &Value, key: &str) -> bool {
    let keys: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
    keys.iter().all(|(k, v)| key_value(item, k).as_ref() == Some(v))
}
