//! The shape of every built-in type, compact enough to keep: for each definition, its fields
//! with their shapes and patch facts. Strategic merge patch, server-side apply and protobuf
//! decoding walk objects with it.

use super::definitions::REF_PREFIX;
use super::facts::{FieldFacts, TypeFacts};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// What a JSON value of some schema is.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Scalar(Scalar),
    /// An object of the named definition.
    Def(String),
    List(Box<Shape>),
    /// An object with arbitrary keys (`labels`, `resources.limits`).
    Map(Box<Shape>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    String,
    /// base64 text in JSON, bytes in protobuf.
    Bytes,
    Integer,
    Number,
    Boolean,
    /// Anything: int-or-string, free-form JSON.
    Any,
}

#[derive(Debug)]
pub struct Def {
    pub name: String,
    pub fields: HashMap<String, Field>,
    /// Replaced as a whole by apply (`+structType=atomic`).
    pub atomic: bool,
    /// Embedded structs inlined in JSON, with their protobuf numbers.
    pub inline: Vec<(u32, String)>,
}

#[derive(Debug)]
pub struct Field {
    pub shape: Shape,
    pub facts: FieldFacts,
}

/// All definitions, by name.
#[derive(Debug)]
pub struct TypeModel {
    defs: HashMap<String, Def>,
}

impl TypeModel {
    pub fn build(defs: &BTreeMap<String, Value>, facts: &HashMap<&'static str, TypeFacts>) -> TypeModel {
        let defs = defs
            .iter()
            .map(|(name, schema)| {
                let type_facts = facts.get(name.as_str());
                let props = schema.get("properties").and_then(Value::as_object);
                let fields = props
                    .into_iter()
                    .flatten()
                    .map(|(field, prop)| {
                        let facts = type_facts.and_then(|t| t.field(field)).cloned().unwrap_or_default();
                        (field.clone(), Field { shape: shape_of(prop), facts })
                    })
                    .collect();
                let def = Def {
                    name: name.clone(),
                    fields,
                    atomic: type_facts.is_some_and(|t| t.atomic),
                    inline: type_facts
                        .map(|t| t.inline.iter().map(|(n, d)| (*n, d.to_string())).collect())
                        .unwrap_or_default(),
                };
                (name.clone(), def)
            })
            .collect();
        TypeModel { defs }
    }

    pub fn def(&self, name: &str) -> Option<&Def> {
        self.defs.get(name)
    }
}

impl Def {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.get(name)
    }
}

fn shape_of(schema: &Value) -> Shape {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return Shape::Def(r.strip_prefix(REF_PREFIX).unwrap_or(r).to_string());
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("array") => Shape::List(Box::new(schema.get("items").map(shape_of).unwrap_or(Shape::Scalar(Scalar::Any)))),
        Some("object") => match schema.get("additionalProperties") {
            Some(v) if v.is_object() => Shape::Map(Box::new(shape_of(v))),
            _ => Shape::Scalar(Scalar::Any),
        },
        Some("string") if schema.get("format").and_then(Value::as_str) == Some("byte") => Shape::Scalar(Scalar::Bytes),
        Some("string") => Shape::Scalar(Scalar::String),
        Some("integer") => Shape::Scalar(Scalar::Integer),
        Some("number") => Shape::Scalar(Scalar::Number),
        Some("boolean") => Shape::Scalar(Scalar::Boolean),
        _ => Shape::Scalar(Scalar::Any),
    }
}
