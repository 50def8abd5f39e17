//! PersistentVolumeClaims, PersistentVolumes, StorageClasses, VolumeAttributesClasses, and
//! the CSI kinds: drivers, nodes, storage capacities and volume attachments.

use super::{AGE, Column, NAME, Printer, age, col, name, or_none, text, wide};
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

/// A boolean field, `default` when unset.
fn flag(obj: &Value, pointer: &str, default: bool) -> Value {
    Value::Bool(obj.pointer(pointer).and_then(Value::as_bool).unwrap_or(default))
}

pub const VOLUME_ATTRIBUTES_CLASSES: Printer = Printer {
    columns: &[NAME, col("DriverName", "string"), AGE],
    row: |c| vec![name(c), Value::String(text(c, "/driverName").into()), age(c)],
};

pub const CSI_STORAGE_CAPACITIES: Printer = Printer {
    columns: &[NAME, col("StorageClassName", "string"), col("Capacity", "string")],
    row: |c| vec![name(c), Value::String(text(c, "/storageClassName").into()), unset(text(c, "/capacity"))],
};

pub const CSI_DRIVERS: Printer = Printer {
    columns: &[
        NAME,
        col("AttachRequired", "boolean"),
        col("PodInfoOnMount", "boolean"),
        col("StorageCapacity", "boolean"),
        col("TokenRequests", "string"),
        col("RequiresRepublish", "boolean"),
        col("Modes", "string"),
        AGE,
    ],
    row: |d| {
        let strings = |pointer: &str, field: &str| -> Option<String> {
            let items = d.pointer(pointer)?.as_array()?;
            let values: Vec<&str> =
                items.iter().filter_map(|i| if field.is_empty() { i.as_str() } else { i[field].as_str() }).collect();
            Some(values.join(","))
        };
        vec![
            name(d),
            flag(d, "/spec/attachRequired", true),
            flag(d, "/spec/podInfoOnMount", false),
            flag(d, "/spec/storageCapacity", false),
            Value::String(strings("/spec/tokenRequests", "audience").unwrap_or_else(|| "<unset>".into())),
            flag(d, "/spec/requiresRepublish", false),
            or_none(strings("/spec/volumeLifecycleModes", "").unwrap_or_default()),
            age(d),
        ]
    },
};

pub const CSI_NODES: Printer = Printer {
    columns: &[NAME, col("Drivers", "integer"), AGE],
    row: |n| vec![name(n), n.pointer("/spec/drivers").and_then(Value::as_array).map_or(0, Vec::len).into(), age(n)],
};

pub const VOLUME_ATTACHMENTS: Printer = Printer {
    columns: &[
        NAME,
        // Kubernetes marks the attacher column as a name too.
        Column { name: "Attacher", kind: "string", format: "name", priority: 0 },
        col("PV", "string"),
        col("Node", "string"),
        col("Attached", "boolean"),
        AGE,
    ],
    row: |v| {
        vec![
            name(v),
            Value::String(text(v, "/spec/attacher").into()),
            Value::String(text(v, "/spec/source/persistentVolumeName").into()),
            Value::String(text(v, "/spec/nodeName").into()),
            flag(v, "/status/attached", false),
            age(v),
        ]
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csi_drivers() {
        assert_eq!(
            super::super::column_names(&CSI_DRIVERS),
            [
                "Name",
                "AttachRequired",
                "PodInfoOnMount",
                "StorageCapacity",
                "TokenRequests",
                "RequiresRepublish",
                "Modes",
                "Age"
            ]
        );
        let d = json!({"metadata": {"name": "ebs.csi.aws.com"},
                       "spec": {"podInfoOnMount": true, "tokenRequests": [{"audience": "a"}, {"audience": "b", "expirationSeconds": 3600}],
                                "volumeLifecycleModes": ["Persistent", "Ephemeral"]}});
        assert_eq!(
            (CSI_DRIVERS.row)(&d),
            vec![
                json!("ebs.csi.aws.com"),
                json!(true),
                json!(true),
                json!(false),
                json!("a,b"),
                json!(false),
                json!("Persistent,Ephemeral"),
                json!("<unknown>")
            ]
        );
        let bare = (CSI_DRIVERS.row)(&json!({"metadata": {"name": "x"}, "spec": {"attachRequired": false}}));
        assert_eq!((&bare[1], &bare[4], &bare[6]), (&json!(false), &json!("<unset>"), &json!("<none>")));
    }

    #[test]
    fn storage_capacities_and_attribute_classes() {
        assert_eq!(super::super::column_names(&CSI_STORAGE_CAPACITIES), ["Name", "StorageClassName", "Capacity"]);
        let c = json!({"metadata": {"name": "cap-1"}, "storageClassName": "fast", "capacity": "10Gi"});
        assert_eq!((CSI_STORAGE_CAPACITIES.row)(&c), vec![json!("cap-1"), json!("fast"), json!("10Gi")]);
        let unknown = (CSI_STORAGE_CAPACITIES.row)(&json!({"metadata": {"name": "cap-2"}, "storageClassName": "fast"}));
        assert_eq!(unknown[2], json!("<unset>"));
        assert_eq!(super::super::column_names(&VOLUME_ATTRIBUTES_CLASSES), ["Name", "DriverName", "Age"]);
        let v = json!({"metadata": {"name": "gold"}, "driverName": "pd.csi.storage.gke.io"});
        assert_eq!((VOLUME_ATTRIBUTES_CLASSES.row)(&v)[..2], [json!("gold"), json!("pd.csi.storage.gke.io")]);
    }

    #[test]
    fn csi_nodes() {
        assert_eq!(super::super::column_names(&CSI_NODES), ["Name", "Drivers", "Age"]);
        let n = json!({"metadata": {"name": "node-1"}, "spec": {"drivers": [{"name": "a", "nodeID": "n1"}, {"name": "b", "nodeID": "n1"}]}});
        assert_eq!((CSI_NODES.row)(&n), vec![json!("node-1"), json!(2), json!("<unknown>")]);
    }

    #[test]
    fn volume_attachments() {
        assert_eq!(
            super::super::column_names(&VOLUME_ATTACHMENTS),
            ["Name", "Attacher", "PV", "Node", "Attached", "Age"]
        );
        let v = json!({"metadata": {"name": "csi-123"},
                       "spec": {"attacher": "ebs.csi.aws.com", "nodeName": "node-1", "source": {"persistentVolumeName": "pv-1"}},
                       "status": {"attached": true}});
        assert_eq!(
            (VOLUME_ATTACHMENTS.row)(&v),
            vec![
                json!("csi-123"),
                json!("ebs.csi.aws.com"),
                json!("pv-1"),
                json!("node-1"),
                json!(true),
                json!("<unknown>")
            ]
        );
    }
}
