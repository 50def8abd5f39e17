//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`),
//! which client-go's typed clients (and so kubectl's `create deployment`, `auth can-i` and
//! the like) send. The body is the magic `k8s\0` and a `runtime.Unknown` envelope naming the
//! apiVersion and kind; the object inside is decoded into JSON by walking the type model,
//! whose fields carry their protobuf numbers.

use crate::schema::{Def, Scalar, Shape, TypeModel, model};
use base64::Engine;
use serde_json::{Map, Value};

const MAGIC: &[u8] = b"k8s\0";

/// Decodes a protobuf request body into the JSON object it stands for. `definition_of`
/// names the OpenAPI definition of an apiVersion and kind.
pub fn decode(body: &[u8], definition_of: impl Fn(&str, &str) -> Option<String>) -> Result<Value, String> {
    let envelope = body.strip_prefix(MAGIC).ok_or("the body does not start with the Kubernetes protobuf prefix")?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for field in Reader(envelope) {
        match field? {
            (1, Wire::Bytes(type_meta)) => {
                for f in Reader(type_meta) {
                    match f? {
                        (1, Wire::Bytes(b)) => api_version = utf8(b)?,
                        (2, Wire::Bytes(b)) => kind = utf8(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let definition = definition_of(&api_version, &kind)
        .ok_or_else(|| format!("no protobuf decoding for {api_version}, Kind={kind}"))?;
    let model = model();
    let def = model.def(&definition).ok_or_else(|| format!("no schema for {definition}"))?;
    let mut obj = Decoder { model }.message(raw, def)?;
    obj.insert("apiVersion".into(), Value::String(api_version));
    obj.insert("kind".into(), Value::String(kind));
    Ok(Value::Object(obj))
}

enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// The fields of one message, in wire order.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first().ok_or("truncated protobuf varint")?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("protobuf varint too long".into())
    }

    fn take_bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("truncated protobuf field".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<(u32, Wire<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let field = (|| {
            let key = self.varint()?;
            let value = match key & 7 {
                0 => Wire::Varint(self.varint()?),
                1 => Wire::Fixed64(u64::from_le_bytes(self.take_bytes(8)?.try_into().expect("8 bytes"))),
                2 => {
                    let len = self.varint()? as usize;
                    Wire::Bytes(self.take_bytes(len)?)
                }
                5 => Wire::Fixed32(u32::from_le_bytes(self.take_bytes(4)?.try_into().expect("4 bytes"))),
                other => return Err(format!("unsupported protobuf wire type {other}")),
            };
            Ok(((key >> 3) as u32, value))
        })();
        if field.is_err() {
            self.0 = &[];
        }
        Some(field)
    }
}

fn utf8(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "a protobuf string is not UTF-8".to_string())
}

struct Decoder<'a> {
    model: &'a TypeModel,
}

impl Decoder<'_> {
    fn message(&self, bytes: &[u8], def: &Def) -> Result<Map<String, Value>, String> {
        let mut out = Map::new();
        for field in Reader(bytes) {
            let (number, wire) = field?;
            if let Some((_, inline)) = def.inline.iter().find(|(n, _)| *n == number && *n != 0) {
                let (Wire::Bytes(b), Some(inline_def)) = (wire, self.model.def(inline)) else { continue };
                out.extend(self.message(b, inline_def)?);
                continue;
            }
            let Some((name, f)) = def.fields.iter().find(|(_, f)| f.facts.proto == number) else { continue };
            match &f.shape {
                Shape::List(element) => {
                    let items = out.entry(name.clone()).or_insert_with(|| Value::Array(Vec::new()));
                    let Value::Array(items) = items else { continue };
                    match (element.as_ref(), wire) {
                        // A packed list of numbers.
                        (Shape::Scalar(Scalar::Integer | Scalar::Boolean | Scalar::Number), Wire::Bytes(b)) => {
                            let mut packed = Reader(b);
                            while !packed.0.is_empty() {
                                let wire = match element.as_ref() {
                                    Shape::Scalar(Scalar::Number) => Wire::Fixed64(u64::from_le_bytes(
                                        packed.take_bytes(8)?.try_into().expect("8 bytes"),
                                    )),
                                    _ => Wire::Varint(packed.varint()?),
                                };
                                items.push(self.value(element, wire)?);
                            }
                        }
                        (_, wire) => items.push(self.value(element, wire)?),
                    }
                }
                Shape::Map(values) => {
                    let Wire::Bytes(entry) = wire else { return Err(format!("{name}: a map entry must be a message")) };
                    let (mut key, mut value) = (String::new(), None);
                    for part in Reader(entry) {
                        match part? {
                            (1, Wire::Bytes(k)) => key = utf8(k)?,
                            (2, w) => value = Some(self.value(values, w)?),
                            _ => {}
                        }
                    }
                    let value = value.unwrap_or_else(|| zero_of(values));
                    if let Value::Object(map) = out.entry(name.clone()).or_insert_with(|| Value::Object(Map::new())) {
                        map.insert(key, value);
                    }
                }
                shape => {
                    let value = self.value(shape, wire)?;
                    if value.is_null() || (f.facts.omit_zero && is_zero(&value)) {
                        continue;
                    }
                    out.insert(name.clone(), value);
                }
            }
        }
        Ok(out)
    }

    fn value(&self, shape: &Shape, wire: Wire) -> Result<Value, String> {
        Ok(match (shape, wire) {
            (Shape::Scalar(Scalar::String), Wire::Bytes(b)) => Value::String(utf8(b)?),
            (Shape::Scalar(Scalar::Bytes), Wire::Bytes(b)) => {
                Value::String(base64::engine::general_purpose::STANDARD.encode(b))
            }
            (Shape::Scalar(Scalar::Integer), Wire::Varint(v)) => Value::from(v as i64),
            (Shape::Scalar(Scalar::Boolean), Wire::Varint(v)) => Value::Bool(v != 0),
            (Shape::Scalar(Scalar::Number), Wire::Fixed64(v)) => Value::from(f64::from_bits(v)),
            (Shape::Scalar(Scalar::Number), Wire::Fixed32(v)) => Value::from(f64::from(f32::from_bits(v))),
            (Shape::Scalar(Scalar::Number), Wire::Varint(v)) => Value::from(v as i64),
            (Shape::Def(name), Wire::Bytes(b)) => self.special(name, b)?,
            (Shape::Scalar(Scalar::Any), Wire::Bytes(b)) => Value::String(utf8(b)?),
            _ => return Err("a protobuf field has the wrong wire type for its schema".into()),
        })
    }

    /// Messages whose JSON form is not an object of their fields.
    fn special(&self, definition: &str, bytes: &[u8]) -> Result<Value, String> {
        let fields: Vec<(u32, Wire)> = Reader(bytes).collect::<Result<_, _>>()?;
        let varint = |n: u32| {
            fields.iter().find_map(|(f, w)| match w {
                Wire::Varint(v) if *f == n => Some(*v),
                _ => None,
            })
        };
        let bytes_of = |n: u32| {
            fields.iter().find_map(|(f, w)| match w {
                Wire::Bytes(b) if *f == n => Some(*b),
                _ => None,
            })
        };
        Ok(match definition.rsplit('.').next().unwrap_or("") {
            "Time" | "MicroTime" => {
                let (seconds, nanos) = (varint(1).unwrap_or(0) as i64, varint(2).unwrap_or(0) as u32);
                if seconds == 0 && nanos == 0 {
                    return Ok(Value::Null);
                }
                let Some(t) = chrono::DateTime::from_timestamp(seconds, nanos) else {
                    return Err("a protobuf time is out of range".into());
                };
                let form = if definition.ends_with("MicroTime") {
                    chrono::SecondsFormat::Micros
                } else {
                    chrono::SecondsFormat::Secs
                };
                Value::String(t.to_rfc3339_opts(form, true))
            }
            "Quantity" => Value::String(bytes_of(1).map(utf8).transpose()?.unwrap_or_default()),
            "IntOrString" => match varint(1).unwrap_or(0) {
                0 => Value::from(varint(2).unwrap_or(0) as i64 as i32),
                _ => Value::String(bytes_of(3).map(utf8).transpose()?.unwrap_or_default()),
            },
            "RawExtension" | "FieldsV1" => match bytes_of(1) {
                Some(raw) if !raw.is_empty() => {
                    serde_json::from_slice(raw).map_err(|e| format!("embedded JSON: {e}"))?
                }
                _ => Value::Null,
            },
            "Duration" => Value::String(format!("{}s", varint(1).unwrap_or(0) as i64 as f64 / 1e9)),
            _ => match self.model.def(definition) {
                Some(def) => Value::Object(self.message(bytes, def)?),
                None => Value::Null,
            },
        })
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        _ => false,
    }
}

fn zero_of(shape: &Shape) -> Value {
    match shape {
        Shape::Scalar(Scalar::Integer | Scalar::Number) => Value::from(0),
        Shape::Scalar(Scalar::Boolean) => Value::Bool(false),
        _ => Value::String(String::new()),
    }
}
