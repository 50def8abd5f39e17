//! Sets of field paths, as `managedFields` records them in the FieldsV1 form: a tree whose
//! keys are `f:<field>`, `k:<key fields as JSON>` (an item of a keyed list), `v:<value as JSON>`
//! (an item of a set) and `i:<index>`, with `.` marking that the node itself is in the set.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One step of a path. The order (fields, then keys, values and indexes) is the order of
/// the FieldsV1 encoding.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Elem {
    Field(String),
    /// The key fields of a list item, as a JSON object with sorted keys.
    Key(String),
    /// A set item, as JSON.
    Value(String),
    Index(usize),
}

pub type Path = Vec<Elem>;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSet {
    /// The node itself is in the set.
    member: bool,
    children: BTreeMap<Elem, FieldSet>,
}

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    /// How many paths the set has.
    pub fn len(&self) -> usize {
        usize::from(self.member) + self.children.values().map(FieldSet::len).sum::<usize>()
    }

    pub fn insert(&mut self, path: &[Elem]) {
        match path.split_first() {
            None => self.member = true,
            Some((first, rest)) => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub fn contains(&self, path: &[Elem]) -> bool {
        match path.split_first() {
            None => self.member,
            Some((first, rest)) => self.children.get(first).is_some_and(|c| c.contains(rest)),
        }
    }

    /// Whether the set has the path or anything under it.
    pub fn touches(&self, path: &[Elem]) -> bool {
        match path.split_first() {
            None => !self.is_empty(),
            Some((first, rest)) => self.children.get(first).is_some_and(|c| c.touches(rest)),
        }
    }

    /// Every path in the set, parents before their children.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (elem, child) in &self.children {
            prefix.push(elem.clone());
            child.collect(prefix, out);
            prefix.pop();
        }
    }

    pub fn union(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (elem, child) in &other.children {
            self.children.entry(elem.clone()).or_default().union(child);
        }
    }

    /// Removes every path `other` has.
    pub fn subtract(&mut self, other: &FieldSet) {
        if other.member {
            self.member = false;
        }
        for (elem, theirs) in &other.children {
            if let Some(mine) = self.children.get_mut(elem) {
                mine.subtract(theirs);
                if mine.is_empty() {
                    self.children.remove(elem);
                }
            }
        }
    }

    /// Removes the path and everything under it.
    pub fn remove_subtree(&mut self, path: &[Elem]) {
        match path.split_first() {
            None => *self = FieldSet::default(),
            Some((first, rest)) => {
                if let Some(child) = self.children.get_mut(first) {
                    child.remove_subtree(rest);
                    if child.is_empty() {
                        self.children.remove(first);
                    }
                }
            }
        }
    }

    /// Keeps the children `keep` says yes to (it may change them first); a child left empty
    /// goes too.
    pub fn retain_children(&mut self, mut keep: impl FnMut(&Elem, &mut FieldSet) -> bool) {
        self.children.retain(|elem, child| keep(elem, child) && !child.is_empty());
    }

    /// The paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet { member: self.member && other.member, children: BTreeMap::new() };
        for (elem, mine) in &self.children {
            if let Some(theirs) = other.children.get(elem) {
                let both = mine.intersection(theirs);
                if !both.is_empty() {
                    out.children.insert(elem.clone(), both);
                }
            }
        }
        out
    }

    /// The FieldsV1 JSON form.
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".into(), Value::Object(Map::new()));
        }
        for (elem, child) in &self.children {
            map.insert(encode_elem(elem), child.to_fields_v1());
        }
        Value::Object(map)
    }

    /// Reads the FieldsV1 JSON form; an empty object is a member leaf.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, String> {
        let Value::Object(map) = value else { return Err("fieldsV1 must be an object".into()) };
        let mut set = FieldSet { member: map.is_empty(), children: BTreeMap::new() };
        for (key, child) in map {
            if key == "." {
                set.member = true;
                continue;
            }
            set.children.insert(decode_elem(key)?, FieldSet::from_fields_v1(child)?);
        }
        Ok(set)
    }
}

fn encode_elem(elem: &Elem) -> String {
    match elem {
        Elem::Field(name) => format!("f:{name}"),
        Elem::Key(json) => format!("k:{json}"),
        Elem::Value(json) => format!("v:{json}"),
        Elem::Index(i) => format!("i:{i}"),
    }
}

fn decode_elem(key: &str) -> Result<Elem, String> {
    match key.split_at_checked(2) {
        Some(("f:", name)) => Ok(Elem::Field(name.to_string())),
        Some(("k:", json)) => Ok(Elem::Key(json.to_string())),
        Some(("v:", json)) => Ok(Elem::Value(json.to_string())),
        Some(("i:", index)) => index.parse().map(Elem::Index).map_err(|_| format!("bad index in fieldsV1: {key}")),
        _ => Err(format!("unknown path element in fieldsV1: {key}")),
    }
}

/// A path as Kubernetes writes it in conflict messages: `.spec.containers[name="app"].image`.
pub fn display(path: &[Elem]) -> String {
    let mut out = String::new();
    for elem in path {
        match elem {
            Elem::Field(name) => {
                out.push('.');
                out.push_str(name);
            }
            Elem::Key(json) => {
                let keys: Map<String, Value> = serde_json::from_str(json).unwrap_or_default();
                let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&format!("[{}]", parts.join(",")));
            }
            Elem::Value(json) => out.push_str(&format!("[={json}]")),
            Elem::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_round_trips_with_members_and_items() {
        let v = json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                       "f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {".": {}, "f:image": {}, "f:name": {}}}}});
        let set = FieldSet::from_fields_v1(&v).unwrap();
        assert!(set.contains(&[Elem::Field("metadata".into()), Elem::Field("labels".into())]));
        assert!(set.contains(&[
            Elem::Field("spec".into()),
            Elem::Field("containers".into()),
            Elem::Key("{\"name\":\"a\"}".into())
        ]));
        assert_eq!(set.to_fields_v1(), v);
    }

    #[test]
    fn subtract_and_intersect_work_on_leaves() {
        let mut a = FieldSet::default();
        a.insert(&[Elem::Field("x".into())]);
        a.insert(&[Elem::Field("y".into())]);
        let mut b = FieldSet::default();
        b.insert(&[Elem::Field("y".into())]);
        assert_eq!(a.intersection(&b).paths(), vec![vec![Elem::Field("y".into())]]);
        a.subtract(&b);
        assert_eq!(a.paths(), vec![vec![Elem::Field("x".into())]]);
    }

    #[test]
    fn paths_display_like_kubernetes() {
        let path = [
            Elem::Field("spec".into()),
            Elem::Field("containers".into()),
            Elem::Key("{\"name\":\"a\"}".into()),
            Elem::Field("image".into()),
        ];
        assert_eq!(display(&path), ".spec.containers[name=\"a\"].image");
    }
}
