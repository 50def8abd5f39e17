//! What `?labelSelector=` and `?fieldSelector=` select, checked against JSON objects.

use crate::error::{ApiError, ApiResult};
use registry::ResourceInfo;
use registry::labels::Selector;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
struct FieldRequirement {
    /// Where the field is in the object, as a JSON pointer.
    pointer: String,
    value: String,
    equal: bool,
}

/// A label and a field selector together.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    labels: Selector,
    fields: Vec<FieldRequirement>,
    /// Where in an object the selection looks.
    pointers: Vec<String>,
}

const LABELS: &str = "/metadata/labels";

/// Boolean fields: an absent one reads as "false", as Kubernetes formats them.
const BOOLEAN_FIELDS: &[&str] = &["/spec/unschedulable", "/spec/hostNetwork"];

fn field_pointer(info: &ResourceInfo, field: &str) -> Option<String> {
    let path = match field {
        "metadata.name" | "metadata.namespace" => field,
        _ => info.field_selectors.iter().find(|(selector, _)| *selector == field).map(|(_, path)| *path)?,
    };
    Some(format!("/{}", path.replace('.', "/")))
}

impl Selection {
    pub fn parse(
        info: &ResourceInfo,
        label_selector: Option<&str>,
        field_selector: Option<&str>,
    ) -> ApiResult<Selection> {
        let labels = Selector::parse(label_selector.unwrap_or("")).map_err(ApiError::bad_request)?;
        let mut fields = Vec::new();
        for term in field_selector.unwrap_or("").split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, value, equal) = if let Some((f, v)) = term.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (f, v, true)
            } else {
                return Err(ApiError::bad_request(format!("invalid selector: '{term}'; can't understand '{term}'")));
            };
            let field = field.trim();
            let pointer = field_pointer(info, field)
                .ok_or_else(|| ApiError::bad_request(format!("field label not supported: {field}")))?;
            fields.push(FieldRequirement { pointer, value: value.trim().to_string(), equal });
        }
        let mut pointers: Vec<String> = fields.iter().map(|f| f.pointer.clone()).collect();
        if !labels.is_empty() {
            pointers.push(LABELS.to_string());
        }
        pointers.sort();
        pointers.dedup();
        Ok(Selection { labels, fields, pointers })
    }

    /// The JSON pointers of the members of an object the selection reads: an object with
    /// only these members is selected exactly when the whole object is.
    pub fn pointers(&self) -> &[String] {
        &self.pointers
    }

    pub fn is_everything(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if !self.labels.is_empty() {
            let labels: BTreeMap<String, String> = obj
                .pointer(LABELS)
                .and_then(Value::as_object)
                .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
                .unwrap_or_default();
            if !self.labels.matches(&labels) {
                return false;
            }
        }
        self.fields.iter().all(|f| {
            let actual = match obj.pointer(&f.pointer) {
                None | Some(Value::Null) if BOOLEAN_FIELDS.contains(&f.pointer.as_str()) => "false".to_string(),
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            (actual == f.value) == f.equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nodes() -> registry::Registry {
        registry::Registry::builtin()
    }

    #[test]
    fn fields_and_labels() {
        let reg = nodes();
        let node = reg.get("", "v1", "nodes").unwrap();
        let schedulable = json!({"metadata": {"name": "n1", "labels": {"zone": "a"}}, "spec": {}});
        let cordoned = json!({"metadata": {"name": "n2"}, "spec": {"unschedulable": true}});
        let sel = Selection::parse(node, None, Some("spec.unschedulable=false")).unwrap();
        assert!(sel.matches(&schedulable) && !sel.matches(&cordoned));
        let sel = Selection::parse(node, Some("zone in (a,b)"), Some("metadata.name!=n2")).unwrap();
        assert!(sel.matches(&schedulable) && !sel.matches(&cordoned));
        assert_eq!(Selection::parse(node, None, Some("spec.bogus=1")).unwrap_err().code, 400);
        let pods = reg.get("", "v1", "pods").unwrap();
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        assert!(Selection::parse(pods, None, Some("spec.nodeName=n1,status.phase==Running")).unwrap().matches(&pod));
        assert!(!Selection::parse(pods, None, Some("spec.nodeName=")).unwrap().matches(&pod));
    }
}
