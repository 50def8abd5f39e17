//! Field ownership: `metadata.managedFields`, kept on every write, and server-side apply
//! (`application/apply-patch+yaml`), which merges a manager's applied configuration into the
//! live object, refuses to change fields other managers own unless forced, and removes the
//! fields a manager stops applying when nobody else owns them.

pub mod field_set;
mod typed;

use crate::schema::model;
use field_set::{Elem, FieldSet, Path, display};
use serde_json::{Value, json};
use typed::Typed;

/// Who writes, and how: one `managedFields` entry.
pub struct Writer {
    pub manager: String,
    /// The group version the manager wrote in (`apps/v1`).
    pub api_version: String,
    /// `status` or `scale` for writes through a subresource.
    pub subresource: Option<String>,
    pub time: String,
    /// The OpenAPI definition of the object.
    pub definition: String,
    /// The kind has a status subresource, so writes to the object itself do not own status.
    pub has_status: bool,
}

#[derive(Debug, PartialEq)]
pub struct Conflict {
    /// How the conflicting manager is named in messages: `"kubectl" using apps/v1`.
    pub manager: String,
    pub path: String,
}

#[derive(Debug, PartialEq)]
pub enum ApplyError {
    /// Fields another manager owns would change (a 409).
    Conflicts(Vec<Conflict>),
    /// The applied configuration cannot be merged (a 422).
    Invalid(String),
}

const APPLY: &str = "Apply";
const UPDATE: &str = "Update";

/// A `managedFields` entry, decoded.
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    subresource: Option<String>,
    time: Option<String>,
    fields: FieldSet,
    /// The entry as stored, while it still says the same: most writes change one manager's
    /// fields, and the others' need not be encoded again.
    stored: Option<Value>,
}

impl Entry {
    fn new(writer: &Writer, operation: &str, fields: FieldSet) -> Entry {
        Entry {
            manager: writer.manager.clone(),
            operation: operation.into(),
            api_version: writer.api_version.clone(),
            subresource: writer.subresource.clone(),
            time: Some(writer.time.clone()),
            fields,
            stored: None,
        }
    }

    fn is(&self, writer: &Writer, operation: &str) -> bool {
        self.manager == writer.manager && self.operation == operation && self.subresource == writer.subresource
    }

    fn describe(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            out.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == UPDATE {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }

    fn to_json(&self) -> Value {
        let mut entry = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.fields.to_fields_v1(),
        });
        if let Some(time) = &self.time {
            entry["time"] = time.clone().into();
        }
        if let Some(sub) = &self.subresource {
            entry["subresource"] = sub.clone().into();
        }
        entry
    }
}

/// The object's entries.
fn entries_of(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj.pointer("/metadata/managedFields").and_then(Value::as_array) else { return Vec::new() };
    list.iter().filter_map(read_entry).collect()
}

/// Entries the server wrote, each kept as stored until it changes.
fn read_stored_entries(list: Vec<Value>) -> Vec<Entry> {
    let read = |stored: Value| read_entry(&stored).map(|entry| Entry { stored: Some(stored), ..entry });
    list.into_iter().filter_map(read).collect()
}

fn read_entry(e: &Value) -> Option<Entry> {
    Some(Entry {
        manager: e.get("manager")?.as_str()?.to_string(),
        operation: e.get("operation").and_then(Value::as_str).unwrap_or(UPDATE).to_string(),
        api_version: e.get("apiVersion").and_then(Value::as_str).unwrap_or("").to_string(),
        subresource: e.get("subresource").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string),
        time: e.get("time").and_then(Value::as_str).map(str::to_string),
        fields: FieldSet::from_fields_v1(e.get("fieldsV1").unwrap_or(&json!({}))).ok()?,
        stored: None,
    })
}

fn write_entries(obj: &mut Value, entries: Vec<Entry>) {
    let encode = |e: Entry| match e.stored {
        Some(stored) => stored,
        None => e.to_json(),
    };
    let list: Vec<Value> = entries.into_iter().filter(|e| !e.fields.is_empty()).map(encode).collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Fields nobody owns: the type, the identity and the system-kept metadata; and the part of
/// the object the write cannot touch (status through the object, all else through status).
fn strip(writer: &Writer, set: &mut FieldSet) {
    let f = |name: &str| Elem::Field(name.to_string());
    for top in ["apiVersion", "kind"] {
        set.remove_subtree(&[f(top)]);
    }
    for meta in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "managedFields",
    ] {
        set.remove_subtree(&[f("metadata"), f(meta)]);
    }
    match writer.subresource.as_deref() {
        Some("status") => {
            let status = set.clone();
            *set = FieldSet::default();
            for path in status.paths().into_iter().filter(|p| p.first() == Some(&f("status"))) {
                set.insert(&path);
            }
        }
        _ if writer.has_status => set.remove_subtree(&[f("status")]),
        _ => {}
    }
    // The object itself is never owned, only its fields.
    let mut root = FieldSet::default();
    root.insert(&[]);
    set.subtract(&root);
}

/// The entries an incoming object starts from, taken out of it: the live ones, unless the
/// client sent its own (`[{}]` clears them, as in Kubernetes).
fn starting_entries(old: Option<&Value>, new: &mut Value) -> Vec<Entry> {
    let sent = new.pointer_mut("/metadata/managedFields").map(Value::take);
    let live = old.and_then(|o| o.pointer("/metadata/managedFields"));
    match sent {
        Some(Value::Array(list)) if list.len() == 1 && list[0] == json!({}) => Vec::new(),
        // The live entries, sent back as read (a patch, or an update of what was read).
        Some(Value::Array(list)) if live.and_then(Value::as_array) == Some(&list) => read_stored_entries(list),
        Some(Value::Array(list)) if !list.is_empty() => list.iter().filter_map(read_entry).collect(),
        _ => old.map(entries_of).unwrap_or_default(),
    }
}

/// Records an update (create, replace or a non-apply patch) in `new`'s managedFields: the
/// writer owns what it set or changed, taking it from other managers, and nobody owns
/// what it removed.
pub fn record_update(writer: &Writer, old: Option<&Value>, new: &mut Value) {
    let typed = Typed { model: model() };
    let kind = typed.root(&writer.definition);
    let mut entries = starting_entries(old, new);
    let mut changed = FieldSet::default();
    match writer.subresource.as_deref() {
        // A status write can own nothing but status: the rest is not looked at.
        Some("status") => {
            if let Some(status) = new.get("status") {
                let before = old.and_then(|o| o.get("status"));
                let mut path = vec![Elem::Field("status".into())];
                typed.changed(before, status, typed.member(kind, "status"), &mut path, &mut changed);
            }
        }
        _ => typed.changed(old, new, kind, &mut Vec::new(), &mut changed),
    }
    strip(writer, &mut changed);
    for entry in &mut entries {
        // Both only take fields away: an entry that has as many as before is unchanged.
        let before = entry.fields.len();
        entry.fields.subtract(&changed);
        typed.retain_present(&mut entry.fields, new, kind);
        if entry.fields.len() != before {
            entry.stored = None;
        }
    }
    if !changed.is_empty() {
        match entries.iter_mut().find(|e| e.is(writer, UPDATE)) {
            Some(entry) => {
                entry.fields.union(&changed);
                entry.time = Some(writer.time.clone());
                entry.api_version = writer.api_version.clone();
                entry.stored = None;
            }
            None => entries.push(Entry::new(writer, UPDATE, changed)),
        }
    }
    write_entries(new, entries);
}

/// Server-side apply of `applied` over `live` (absent on create). Returns the object to
/// admit and store, with its managedFields.
pub fn apply(writer: &Writer, live: Option<&Value>, applied: &Value, force: bool) -> Result<Value, ApplyError> {
    let typed = Typed { model: model() };
    let kind = typed.root(&writer.definition);
    if let Some(problem) = typed::missing_keys(&typed, applied, kind, &mut Vec::new()) {
        return Err(ApplyError::Invalid(problem));
    }
    let mut entries = live.map(entries_of).unwrap_or_default();
    let mut applying = FieldSet::default();
    typed.leaves(applied, kind, &mut Vec::new(), &mut applying);
    strip(writer, &mut applying);

    let empty = json!({});
    let base = live.unwrap_or(&empty);
    let mut merged = typed.merge(Some(base), applied, kind);

    // Conflicts: fields another manager owns whose value this apply changes.
    let mut conflicts = Vec::new();
    for entry in entries.iter_mut().filter(|e| !e.is(writer, APPLY)) {
        let shared = entry.fields.intersection(&applying);
        let contested: Vec<Path> = shared.paths().into_iter().filter(|p| changes(base, &merged, p)).collect();
        for path in contested {
            if force {
                entry.fields.remove_subtree(&path);
            } else {
                conflicts.push(Conflict { manager: entry.describe(), path: display(&path) });
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(ApplyError::Conflicts(conflicts));
    }

    // What this manager applied before and applies no longer goes, unless someone else owns it.
    let previous = entries.iter().find(|e| e.is(writer, APPLY)).map(|e| e.fields.clone()).unwrap_or_default();
    let mut dropped = previous;
    dropped.subtract(&applying);
    // Parents first: a removed item takes its fields along; an item another manager still
    // has a part of stays, with its key.
    for path in dropped.paths() {
        let owned_elsewhere = entries.iter().filter(|e| !e.is(writer, APPLY)).any(|e| e.fields.touches(&path));
        if !owned_elsewhere && !applying.touches(&path) && !is_key_field(&path) {
            typed::remove(&mut merged, &path);
        }
    }

    match entries.iter_mut().find(|e| e.is(writer, APPLY)) {
        Some(entry) => {
            if entry.fields != applying {
                entry.time = Some(writer.time.clone());
            }
            entry.fields = applying;
            entry.api_version = writer.api_version.clone();
        }
        None => entries.push(Entry::new(writer, APPLY, applying)),
    }
    for entry in &mut entries {
        typed.retain_present(&mut entry.fields, &merged, kind);
    }
    write_entries(&mut merged, entries);
    Ok(merged)
}

/// Whether the value at `path` differs between the live and the merged object. An item of a
/// list is the same item while it is there, whatever its fields do.
fn changes(live: &Value, merged: &Value, path: &[Elem]) -> bool {
    let (before, after) = (typed::get(live, path), typed::get(merged, path));
    match path.last() {
        Some(Elem::Key(_) | Elem::Value(_)) => before.is_some() != after.is_some(),
        _ => before != after,
    }
}

/// Whether the path names a key field of a list item (`k:{"name":"a"}` then `f:name`).
fn is_key_field(path: &[Elem]) -> bool {
    match path {
        [.., Elem::Key(key), Elem::Field(name)] => {
            serde_json::from_str::<serde_json::Map<String, Value>>(key).is_ok_and(|k| k.contains_key(name))
        }
        _ => false,
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
