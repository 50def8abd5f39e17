//! PersistentVolumeClaims, PersistentVolumes and StorageClasses.

use super::{AGE, NAME, Printer, age, col, name, text, wide};
use serde_json::Value;

/// Access modes in kubectl's short form: RWO, ROX, RWX, RWOP.
fn access_modes(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn unset(s: &str) -> Value {
    Value::String(if s.is_empty() { "<unset>".into() } else { s.into() })
}

pub const PERSISTENT_VOLUME_CLAIMS: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string"),
        col("Volume", "string"),
        col("Capacity", "string"),
        col("Access Modes", "string"),
        col("StorageClass", "string"),
        col("VolumeAttributesClass", "string"),
        AGE,
        wide("VolumeMode", "string"),
    ],
    row: |c| {
        vec![
            name(c),
            Value::String(text(c, "/status/phase").into()),
            Value::String(text(c, "/spec/volumeName").into()),
            Value::String(text(c, "/status/capacity/storage").into()),
            Value::String(access_modes(c, "/status/accessModes")),
            Value::String(text(c, "/spec/storageClassName").into()),
            unset(text(c, "/spec/volumeAttributesClassName")),
            age(c),
            Value::String(text(c, "/spec/volumeMode").into()),
        ]
    },
};

pub const PERSISTENT_VOLUMES: Printer = Printer {
    columns: &[
        NAME,
        col("Capacity", "string"),
        col("Access Modes", "string"),
        col("Reclaim Policy", "string"),
        col("Status", "string"),
        col("Claim", "string"),
        col("StorageClass", "string"),
        col("VolumeAttributesClass", "string"),
        col("Reason", "string"),
        AGE,
        wide("VolumeMode", "string"),
    ],
    row: |v| {
        let claim = match (text(v, "/spec/claimRef/namespace"), text(v, "/spec/claimRef/name")) {
            (_, "") => String::new(),
            (ns, n) => format!("{ns}/{n}"),
        };
        vec![
            name(v),
            Value::String(text(v, "/spec/capacity/storage").into()),
            Value::String(access_modes(v, "/spec/accessModes")),
            Value::String(text(v, "/spec/persistentVolumeReclaimPolicy").into()),
            Value::String(text(v, "/status/phase").into()),
            Value::String(claim),
            Value::String(text(v, "/spec/storageClassName").into()),
            unset(text(v, "/spec/volumeAttributesClassName")),
            Value::String(text(v, "/status/reason").into()),
            age(v),
            Value::String(text(v, "/spec/volumeMode").into()),
        ]
    },
};

pub const STORAGE_CLASSES: Printer = Printer {
    columns: &[
        NAME,
        col("Provisioner", "string"),
        col("ReclaimPolicy", "string"),
        col("VolumeBindingMode", "string"),
        col("AllowVolumeExpansion", "string"),
        AGE,
    ],
    row: |c| {
        let default =
            c.pointer("/metadata/annotations/storageclass.kubernetes.io~1is-default-class").and_then(Value::as_str)
                == Some("true");
        let shown =
            format!("{}{}", c["metadata"]["name"].as_str().unwrap_or(""), if default { " (default)" } else { "" });
        vec![
            Value::String(shown),
            Value::String(text(c, "/provisioner").into()),
            Value::String(match text(c, "/reclaimPolicy") {
                "" => "Delete".into(),
                p => p.into(),
            }),
            Value::String(match text(c, "/volumeBindingMode") {
                "" => "Immediate".into(),
                m => m.into(),
            }),
            Value::String(c.get("allowVolumeExpansion").and_then(Value::as_bool).unwrap_or(false).to_string()),
            age(c),
        ]
    },
};
