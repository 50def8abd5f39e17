//! Workloads: replica counts as READY x/y or DESIRED/CURRENT/READY, and with -o wide the
//! template's containers and images and the selector; pod templates, and the controller
//! revisions of DaemonSets and StatefulSets.

use super::{AGE, NAME, Printer, age, col, human_duration, int, name, or_none, since, text, wide};
use serde_json::Value;

const CONTAINERS: super::Column = wide("Containers", "string");
const IMAGES: super::Column = wide("Images", "string");
const SELECTOR: super::Column = wide("Selector", "string");

/// The template's container names and images, comma-separated.
fn containers_and_images(obj: &Value, template: &str) -> (Value, Value) {
    let containers =
        obj.pointer(&format!("{template}/spec/containers")).and_then(Value::as_array).cloned().unwrap_or_default();
    let names: Vec<&str> = containers.iter().filter_map(|c| c["name"].as_str()).collect();
    let images: Vec<&str> = containers.iter().filter_map(|c| c["image"].as_str()).collect();
    (Value::String(names.join(",")), Value::String(images.join(",")))
}

/// A label selector cell: its string form, or `<none>`.
pub fn selector(sel: Option<&Value>) -> Value {
    or_none(sel.map(crate::labels::format_selector).unwrap_or_default())
}

pub const DEPLOYMENTS: Printer = Printer {
    columns: &[
        NAME,
        col("Ready", "string"),
        col("Up-to-date", "integer"),
        col("Available", "integer"),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    row: |d| {
        let (containers, images) = containers_and_images(d, "/spec/template");
        vec![
            name(d),
            Value::String(format!("{}/{}", int(d, "/status/readyReplicas"), int(d, "/spec/replicas"))),
            int(d, "/status/updatedReplicas").into(),
            int(d, "/status/availableReplicas").into(),
            age(d),
            containers,
            images,
            selector(d.pointer("/spec/selector")),
        ]
    },
};

fn desired_current_ready(obj: &Value) -> Vec<Value> {
    let (containers, images) = containers_and_images(obj, "/spec/template");
    vec![
        name(obj),
        int(obj, "/spec/replicas").into(),
        int(obj, "/status/replicas").into(),
        int(obj, "/status/readyReplicas").into(),
        age(obj),
        containers,
        images,
        selector(obj.pointer("/spec/selector")),
    ]
}

pub const REPLICA_SETS: Printer = Printer {
    columns: &[
        NAME,
        col("Desired", "integer"),
        col("Current", "integer"),
        col("Ready", "integer"),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    row: desired_current_ready,
};

pub const REPLICATION_CONTROLLERS: Printer = REPLICA_SETS;

pub const STATEFUL_SETS: Printer = Printer {
    columns: &[NAME, col("Ready", "string"), AGE, CONTAINERS, IMAGES],
    row: |s| {
        let (containers, images) = containers_and_images(s, "/spec/template");
        vec![
            name(s),
            Value::String(format!("{}/{}", int(s, "/status/readyReplicas"), int(s, "/spec/replicas"))),
            age(s),
            containers,
            images,
        ]
    },
};

pub const DAEMON_SETS: Printer = Printer {
    columns: &[
        NAME,
        col("Desired", "integer"),
        col("Current", "integer"),
        col("Ready", "integer"),
        col("Up-to-date", "integer"),
        col("Available", "integer"),
        col("Node Selector", "string"),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    row: |d| {
        let (containers, images) = containers_and_images(d, "/spec/template");
        let node_selector =
            d.pointer("/spec/template/spec/nodeSelector").map(|s| selector(Some(s))).unwrap_or(or_none(""));
        vec![
            name(d),
            int(d, "/status/desiredNumberScheduled").into(),
            int(d, "/status/currentNumberScheduled").into(),
            int(d, "/status/numberReady").into(),
            int(d, "/status/updatedNumberScheduled").into(),
            int(d, "/status/numberAvailable").into(),
            node_selector,
            age(d),
            containers,
            images,
            selector(d.pointer("/spec/selector")),
        ]
    },
};

/// Complete, Failed, Suspended or Running, from the Job's conditions.
fn job_status(job: &Value) -> &'static str {
    let conditions = job.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    let has = |t: &str| conditions.iter().any(|c| c["type"] == t && c["status"] == "True");
    if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else if has("Suspended") {
        "Suspended"
    } else {
        "Running"
    }
}

pub const JOBS: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string"),
        col("Completions", "string"),
        col("Duration", "string"),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    row: |j| {
        let (containers, images) = containers_and_images(j, "/spec/template");
        let completions = match j.pointer("/spec/completions").and_then(Value::as_i64) {
            Some(c) => format!("{}/{c}", int(j, "/status/succeeded")),
            None => format!("{}/1 of {}", int(j, "/status/succeeded"), int(j, "/spec/parallelism").max(1)),
        };
        let started = since(j.pointer("/status/startTime").and_then(Value::as_str));
        let finished = since(j.pointer("/status/completionTime").and_then(Value::as_str));
        let duration = match (started, finished) {
            (Some(s), Some(f)) => human_duration(s - f),
            (Some(s), None) => human_duration(s),
            _ => String::new(),
        };
        vec![
            name(j),
            Value::String(job_status(j).into()),
            Value::String(completions),
            Value::String(duration),
            age(j),
            containers,
            images,
            selector(j.pointer("/spec/selector")),
        ]
    },
};

pub const CRON_JOBS: Printer = Printer {
    columns: &[
        NAME,
        col("Schedule", "string"),
        col("Timezone", "string"),
        col("Suspend", "boolean"),
        col("Active", "integer"),
        col("Last Schedule", "string"),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    row: |c| {
        let (containers, images) = containers_and_images(c, "/spec/jobTemplate/spec/template");
        let last = since(c.pointer("/status/lastScheduleTime").and_then(Value::as_str)).map(human_duration);
        vec![
            name(c),
            Value::String(text(c, "/spec/schedule").into()),
            or_none(text(c, "/spec/timeZone")),
            // Kubernetes prints the flag as a word: True, False, or <unset>.
            Value::String(match c.pointer("/spec/suspend").and_then(Value::as_bool) {
                Some(true) => "True".into(),
                Some(false) => "False".into(),
                None => "<unset>".into(),
            }),
            c.pointer("/status/active").and_then(Value::as_array).map_or(0, Vec::len).into(),
            or_none(last.unwrap_or_default()),
            age(c),
            containers,
            images,
            selector(c.pointer("/spec/jobTemplate/spec/selector")),
        ]
    },
};

/// A label map as `key=value` pairs in key order, `<none>` when empty.
fn labels(map: Option<&Value>) -> Value {
    let mut pairs: Vec<String> = map
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    or_none(pairs.join(","))
}

pub const POD_TEMPLATES: Printer = Printer {
    columns: &[NAME, col("Containers", "string"), col("Images", "string"), col("Pod Labels", "string")],
    row: |t| {
        let (containers, images) = containers_and_images(t, "/template");
        vec![name(t), containers, images, labels(t.pointer("/template/metadata/labels"))]
    },
};

/// The owner that is the object's controller as `kind.group/name` in lower case (`kind/name`
/// for the core group), `<none>` without one.
fn controller(obj: &Value) -> String {
    let owners = obj.pointer("/metadata/ownerReferences").and_then(Value::as_array);
    let Some(owner) = owners.into_iter().flatten().find(|o| o["controller"] == true) else {
        return "<none>".into();
    };
    let name = owner["name"].as_str().unwrap_or("");
    let kind = owner["kind"].as_str().unwrap_or("");
    let group = owner["apiVersion"].as_str().and_then(|v| v.split_once('/')).map_or("", |(g, _)| g);
    match (kind, group) {
        ("", "") => name.into(),
        (kind, "") => format!("{}/{name}", kind.to_lowercase()),
        (kind, group) => format!("{}.{}/{name}", kind.to_lowercase(), group.to_lowercase()),
    }
}

pub const CONTROLLER_REVISIONS: Printer = Printer {
    columns: &[NAME, col("Controller", "string"), col("Revision", "string"), AGE],
    row: |r| vec![name(r), Value::String(controller(r)), int(r, "/revision").into(), age(r)],
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_templates() {
        assert_eq!(super::super::column_names(&POD_TEMPLATES), ["Name", "Containers", "Images", "Pod Labels"]);
        let t = json!({"metadata": {"name": "tmpl"},
                       "template": {"metadata": {"labels": {"tier": "web", "app": "shop"}},
                                    "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]}}});
        assert_eq!(
            (POD_TEMPLATES.row)(&t),
            vec![json!("tmpl"), json!("app,log"), json!("nginx:1.27,busybox"), json!("app=shop,tier=web")]
        );
        assert_eq!((POD_TEMPLATES.row)(&json!({"metadata": {"name": "bare"}, "template": {}}))[3], "<none>");
    }

    #[test]
    fn controller_revisions() {
        assert_eq!(super::super::column_names(&CONTROLLER_REVISIONS), ["Name", "Controller", "Revision", "Age"]);
        let r = json!({"metadata": {"name": "fluentd-7d9c6", "ownerReferences": [
                           {"apiVersion": "v1", "kind": "ConfigMap", "name": "other"},
                           {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd", "controller": true}]},
                       "revision": 3});
        assert_eq!(
            (CONTROLLER_REVISIONS.row)(&r),
            vec![json!("fluentd-7d9c6"), json!("daemonset.apps/fluentd"), json!(3), json!("<unknown>")]
        );
        assert_eq!((CONTROLLER_REVISIONS.row)(&json!({"metadata": {"name": "x"}, "revision": 1}))[1], "<none>");
    }
}
