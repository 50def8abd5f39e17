//! ConfigMaps, Secrets, ServiceAccounts and Namespaces.

use super::{AGE, NAME, Printer, age, col, name, text};
use serde_json::Value;

fn count(obj: &Value, fields: &[&str]) -> usize {
    fields.iter().filter_map(|f| obj.get(*f).and_then(Value::as_object)).map(|m| m.len()).sum()
}

pub const CONFIG_MAPS: Printer = Printer {
    columns: &[NAME, col("Data", "integer"), AGE],
    row: |c| vec![name(c), count(c, &["data", "binaryData"]).into(), age(c)],
};

pub const SECRETS: Printer = Printer {
    columns: &[NAME, col("Type", "string"), col("Data", "integer"), AGE],
    row: |s| vec![name(s), Value::String(text(s, "/type").into()), count(s, &["data"]).into(), age(s)],
};

pub const SERVICE_ACCOUNTS: Printer = Printer {
    columns: &[NAME, col("Secrets", "integer"), AGE],
    row: |s| vec![name(s), s.get("secrets").and_then(Value::as_array).map_or(0, Vec::len).into(), age(s)],
};

pub const NAMESPACES: Printer = Printer {
    columns: &[NAME, col("Status", "string"), AGE],
    row: |n| vec![name(n), Value::String(text(n, "/status/phase").into()), age(n)],
};
