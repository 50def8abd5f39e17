//! Server-side printing: `meta.k8s.io/v1` Tables, which `kubectl get` asks for and prints,
//! with the columns of each kind's printer in the registry.

use registry::table::Printer;
use serde_json::{Value, json};

/// How much of each object a Table row carries (`?includeObject=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub fn parse(value: Option<&str>) -> Include {
        match value {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

fn column_definitions(printer: &Printer) -> Value {
    Value::Array(
        printer
            .columns
            .iter()
            .map(|c| json!({"name": c.name, "type": c.kind, "format": c.format, "description": "", "priority": c.priority}))
            .collect(),
    )
}

fn row(printer: &Printer, obj: &Value, include: Include) -> Value {
    let mut row = json!({"cells": (printer.row)(obj)});
    match include {
        Include::None => {}
        Include::Object => row["object"] = obj.clone(),
        Include::Metadata => row["object"] = crate::objects::partial_metadata(obj),
    }
    row
}

/// A Table of objects. `with_columns` is false for the watch events after the first, as
/// Kubernetes sends the column definitions once.
pub fn table(printer: &Printer, objects: &[Value], list_meta: Value, include: Include, with_columns: bool) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": if with_columns { column_definitions(printer) } else { json!([]) },
        "rows": objects.iter().map(|o| row(printer, o, include)).collect::<Vec<_>>(),
    })
}
