//! What the Kubernetes OpenAPI schemas of `k8s-openapi` do not carry: each field's protobuf
//! number and its patch and list markers (`patchStrategy`, `patchMergeKey`, `+listType`,
//! `+listMapKey`, `+mapType`, `+structType`). `type_facts.txt` is extracted from the Go API
//! types by `scripts/extract-type-facts`; this module reads it.

use std::collections::HashMap;

/// The facts of one definition (`io.k8s.api.core.v1.PodSpec`).
#[derive(Debug, Default)]
pub struct TypeFacts {
    /// `+structType=atomic` or `+mapType=atomic`: the object is replaced as a whole by apply.
    pub atomic: bool,
    /// The JSON fields, in Go declaration order.
    pub fields: Vec<FieldFacts>,
    /// Embedded structs whose fields appear inline in JSON: (protobuf number, definition).
    pub inline: Vec<(u32, &'static str)>,
}

#[derive(Debug, Default, Clone)]
pub struct FieldFacts {
    pub name: &'static str,
    /// The protobuf field number; 0 when the field has none.
    pub proto: u32,
    /// `patchStrategy`, split on commas: `merge`, `retainKeys`, `replace`.
    pub patch: Vec<&'static str>,
    pub merge_key: Option<&'static str>,
    /// `+listType`: `atomic`, `set` or `map`.
    pub list_type: Option<&'static str>,
    pub list_keys: Vec<&'static str>,
    /// `+mapType` or `+structType` on the field: `atomic` or `granular`.
    pub map_type: Option<&'static str>,
    /// A non-pointer scalar with `omitempty`: its zero value means "not set".
    pub omit_zero: bool,
}

static TABLE: &str = include_str!("type_facts.txt");

/// Parses the table. Malformed lines are a build-time mistake in the table, so they panic
/// in the unit test rather than being skipped silently.
pub fn parse() -> HashMap<&'static str, TypeFacts> {
    let mut types: HashMap<&'static str, TypeFacts> = HashMap::new();
    let mut current: Option<&'static str> = None;
    for line in TABLE.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(field) = line.strip_prefix("  ") {
            let Some(def) = current else { panic!("type_facts.txt: field line before any type: {line}") };
            let facts = types.get_mut(def).expect("current type is present");
            let mut words = field.split(' ');
            let name = words.next().unwrap_or_default();
            let proto = words.next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("type_facts.txt: {line}"));
            if name == "-" {
                let inline = words.find_map(|w| w.strip_prefix("inline=")).unwrap_or_else(|| panic!("{line}"));
                facts.inline.push((proto, inline));
                continue;
            }
            let mut f = FieldFacts { name, proto, ..Default::default() };
            for word in words {
                match word.split_once('=') {
                    Some(("patch", v)) => f.patch = v.split(',').collect(),
                    Some(("key", v)) => f.merge_key = Some(v),
                    Some(("list", v)) => f.list_type = Some(v),
                    Some(("keys", v)) => f.list_keys = v.split(',').collect(),
                    Some(("map" | "struct", v)) => f.map_type = Some(v),
                    None if word == "zero" => f.omit_zero = true,
                    // Shape facts (elem=, listof, mapof, bytes) come from the OpenAPI schemas.
                    _ => {}
                }
            }
            facts.fields.push(f);
        } else {
            let mut words = line.split(' ');
            let def = words.next().unwrap_or_default();
            let atomic = words.any(|w| w == "atomic");
            types.insert(def, TypeFacts { atomic, ..Default::default() });
            current = Some(def);
        }
    }
    types
}

impl TypeFacts {
    pub fn field(&self, name: &str) -> Option<&FieldFacts> {
        self.fields.iter().find(|f| f.name == name)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_table_parses_and_knows_the_pod_spec() {
        let types = super::parse();
        let spec = &types["io.k8s.api.core.v1.PodSpec"];
        let containers = spec.field("containers").unwrap();
        assert_eq!(containers.patch, ["merge"]);
        assert_eq!(containers.merge_key, Some("name"));
        assert_eq!(containers.proto, 2);
        assert!(types["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"].atomic);
        let volume = &types["io.k8s.api.core.v1.Volume"];
        assert_eq!(volume.inline, [(2, "io.k8s.api.core.v1.VolumeSource")]);
    }
}
