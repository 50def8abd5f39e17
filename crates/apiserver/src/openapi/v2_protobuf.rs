//! `/openapi/v2` in protobuf, the form client-go asks for (`OpenAPISchema()`, which kubectl's
//! client-side validation uses): the gnostic `openapi.v2.Document` message, written from the
//! JSON document. Field numbers are those of gnostic's OpenAPIv2.proto; vendor extensions
//! travel as YAML text (JSON is YAML) in `Any.yaml`.

use serde_json::{Map, Value};

/// A protobuf message being written.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire: u8) {
        self.varint(((field as u64) << 3) | wire as u64);
    }

    fn bytes(&mut self, field: u32, data: &[u8]) {
        self.tag(field, 2);
        self.varint(data.len() as u64);
        self.0.extend_from_slice(data);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn bool(&mut self, field: u32, b: bool) {
        if b {
            self.tag(field, 0);
            self.varint(1);
        }
    }

    fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.tag(field, 0);
            self.varint(v as u64);
        }
    }

    fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.tag(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn message(&mut self, field: u32, write: impl FnOnce(&mut Message)) {
        let mut inner = Message::default();
        write(&mut inner);
        self.bytes(field, &inner.0);
    }

    fn strings(&mut self, field: u32, value: Option<&Value>) {
        for s in value.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            self.bytes(field, s.as_bytes());
        }
    }

    /// `repeated NamedAny vendor_extension`: every `x-` key of `obj`.
    fn extensions(&mut self, field: u32, obj: &Map<String, Value>) {
        for (name, value) in obj.iter().filter(|(k, _)| k.starts_with("x-")) {
            self.message(field, |named| {
                named.string(1, name);
                named.message(2, |any| any.string(2, &value.to_string()));
            });
        }
    }
}

fn str_of<'a>(obj: &'a Map<String, Value>, key: &str) -> &'a str {
    obj.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Encodes the Swagger 2.0 document.
pub fn encode(doc: &Value) -> Vec<u8> {
    let empty = Map::new();
    let doc = doc.as_object().unwrap_or(&empty);
    let mut out = Message::default();
    out.string(1, str_of(doc, "swagger"));
    if let Some(info) = doc.get("info").and_then(Value::as_object) {
        out.message(2, |m| {
            m.string(1, str_of(info, "title"));
            m.string(2, str_of(info, "version"));
        });
    }
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        out.message(8, |m| {
            for (path, item) in paths {
                m.message(2, |named| {
                    named.string(1, path);
                    named.message(2, |p| path_item(p, item.as_object().unwrap_or(&empty)));
                });
            }
        });
    }
    if let Some(defs) = doc.get("definitions").and_then(Value::as_object) {
        out.message(9, |m| named_schemas(m, 1, defs));
    }
    out.extensions(16, doc);
    out.0
}

fn path_item(out: &mut Message, item: &Map<String, Value>) {
    for (method, field) in [("get", 2), ("put", 3), ("post", 4), ("delete", 5), ("patch", 8)] {
        if let Some(op) = item.get(method).and_then(Value::as_object) {
            out.message(field, |m| operation(m, op));
        }
    }
    for p in item.get("parameters").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object) {
        out.message(9, |m| parameter(m, p));
    }
}

fn operation(out: &mut Message, op: &Map<String, Value>) {
    out.strings(1, op.get("tags"));
    out.string(3, str_of(op, "description"));
    out.string(5, str_of(op, "operationId"));
    out.strings(6, op.get("produces"));
    out.strings(7, op.get("consumes"));
    for p in op.get("parameters").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object) {
        out.message(8, |m| parameter(m, p));
    }
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        out.message(9, |m| {
            for (code, response) in responses {
                let response = response.as_object().cloned().unwrap_or_default();
                m.message(1, |named| {
                    named.string(1, code);
                    named.message(2, |value| {
                        value.message(1, |r| {
                            r.string(1, str_of(&response, "description"));
                            if let Some(s) = response.get("schema").and_then(Value::as_object) {
                                r.message(2, |item| item.message(1, |m| schema(m, s)));
                            }
                        });
                    });
                });
            }
        });
    }
    out.strings(10, op.get("schemes"));
    out.extensions(13, op);
}

/// A `ParametersItem` holding a body, query or path parameter.
fn parameter(out: &mut Message, p: &Map<String, Value>) {
    let unique = p.get("uniqueItems").and_then(Value::as_bool).unwrap_or(false);
    let required = p.get("required").and_then(Value::as_bool).unwrap_or(false);
    out.message(1, |param| match str_of(p, "in") {
        "body" => param.message(1, |b| {
            b.string(1, str_of(p, "description"));
            b.string(2, str_of(p, "name"));
            b.string(3, "body");
            b.bool(4, required);
            if let Some(s) = p.get("schema").and_then(Value::as_object) {
                b.message(5, |m| schema(m, s));
            }
        }),
        "path" => param.message(2, |non_body| {
            non_body.message(4, |q| {
                q.bool(1, required);
                q.string(2, "path");
                q.string(3, str_of(p, "description"));
                q.string(4, str_of(p, "name"));
                q.string(5, str_of(p, "type"));
                q.bool(19, unique);
            })
        }),
        _ => param.message(2, |non_body| {
            non_body.message(3, |q| {
                q.bool(1, required);
                q.string(2, "query");
                q.string(3, str_of(p, "description"));
                q.string(4, str_of(p, "name"));
                q.string(6, str_of(p, "type"));
                q.bool(20, unique);
            })
        }),
    });
}

fn named_schemas(out: &mut Message, field: u32, schemas: &Map<String, Value>) {
    for (name, s) in schemas {
        out.message(field, |named| {
            named.string(1, name);
            named.message(2, |m| schema(m, s.as_object().unwrap_or(&Map::new())));
        });
    }
}

fn schema(out: &mut Message, s: &Map<String, Value>) {
    out.string(1, str_of(s, "$ref"));
    out.string(2, str_of(s, "format"));
    out.string(4, str_of(s, "description"));
    if let Some(default) = s.get("default") {
        out.message(5, |any| any.string(2, &default.to_string()));
    }
    out.double(7, s.get("maximum").and_then(Value::as_f64).unwrap_or(0.0));
    out.double(9, s.get("minimum").and_then(Value::as_f64).unwrap_or(0.0));
    out.int64(11, s.get("maxLength").and_then(Value::as_i64).unwrap_or(0));
    out.int64(12, s.get("minLength").and_then(Value::as_i64).unwrap_or(0));
    out.string(13, str_of(s, "pattern"));
    out.bool(16, s.get("uniqueItems").and_then(Value::as_bool).unwrap_or(false));
    out.strings(19, s.get("required"));
    for v in s.get("enum").and_then(Value::as_array).into_iter().flatten() {
        out.message(20, |any| any.string(2, &v.to_string()));
    }
    match s.get("additionalProperties") {
        Some(Value::Object(inner)) => out.message(21, |a| a.message(1, |m| schema(m, inner))),
        Some(Value::Bool(b)) => out.message(21, |a| {
            a.tag(2, 0);
            a.varint(*b as u64);
        }),
        _ => {}
    }
    if let Some(ty) = s.get("type").and_then(Value::as_str) {
        out.message(22, |t| t.string(1, ty));
    }
    if let Some(items) = s.get("items").and_then(Value::as_object) {
        out.message(23, |i| i.message(1, |m| schema(m, items)));
    }
    for inner in s.get("allOf").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object) {
        out.message(24, |m| schema(m, inner));
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        out.message(25, |p| named_schemas(p, 1, props));
    }
    out.extensions(31, s);
}
