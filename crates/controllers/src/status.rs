//! Writing a controller's status as Kubernetes shows it: zero counts left out, conditions
//! whose lastTransitionTime moves only when their status does, and no write when nothing
//! changed.

use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::fmt::Debug;

/// A count as Kubernetes serializes it: left out when zero.
pub fn count(n: usize) -> Value {
    if n == 0 { Value::Null } else { json!(n) }
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The conditions of an object's current status.
pub fn conditions<K: Serialize>(object: &K) -> Vec<Value> {
    let value = serde_json::to_value(object).unwrap_or_default();
    value["status"]["conditions"].as_array().cloned().unwrap_or_default()
}

pub fn condition<'a>(conditions: &'a [Value], type_: &str) -> Option<&'a Value> {
    conditions.iter().find(|c| c["type"] == type_)
}

/// Sets a condition. Its lastTransitionTime stays unless the status changes; `updates`
/// conditions (a Deployment's) also carry lastUpdateTime, which moves with any change.
pub fn set_condition(
    conditions: &mut Vec<Value>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    updates: bool,
) {
    let now = now();
    let previous = conditions.iter().position(|c| c["type"] == type_);
    let mut next =
        json!({"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": now});
    if updates {
        next["lastUpdateTime"] = json!(now);
    }
    if let Some(at) = previous {
        let old = &conditions[at];
        if old["status"] == status && old["reason"] == reason && old["message"] == message {
            return;
        }
        if old["status"] == status {
            next["lastTransitionTime"] = old["lastTransitionTime"].clone();
        }
        conditions[at] = next;
    } else {
        conditions.push(next);
    }
}

pub fn remove_condition(conditions: &mut Vec<Value>, type_: &str) {
    conditions.retain(|c| c["type"] != type_);
}

pub fn conditions_value(conditions: Vec<Value>) -> Value {
    if conditions.is_empty() { Value::Null } else { Value::Array(conditions) }
}

/// Writes `desired` (fields with null values removed) as the object's status, unless every
/// field already has that value. The write is conditional on the object's resourceVersion,
/// so that a status computed from a stale view is refused (409) and recomputed.
pub async fn write<K>(api: &Api<K>, object: &K, desired: Value) -> kube::Result<()>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Debug,
{
    let current = serde_json::to_value(object).unwrap_or_default();
    let current = &current["status"];
    let fields = desired.as_object().into_iter().flatten();
    let changed = fields.into_iter().any(|(k, v)| current.get(k).unwrap_or(&Value::Null) != v);
    if !changed {
        return Ok(());
    }
    let meta = object.meta();
    let patch = json!({"metadata": {"resourceVersion": meta.resource_version}, "status": desired});
    let name = meta.name.as_deref().unwrap_or_default();
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| ())
}
