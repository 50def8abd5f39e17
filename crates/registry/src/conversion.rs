//! Versions and groups that share storage: objects are stored in one form and converted when
//! served through another, as Kubernetes does for `events.k8s.io/v1` Events (stored as core
//! `v1` Events) and `autoscaling/v1` HorizontalPodAutoscalers (stored as `autoscaling/v2`).

mod events;
mod hpa;

use serde_json::Value;

/// How one served version maps to the stored form and back. Both functions set apiVersion and
/// kind of what they return.
#[derive(Clone, Copy, Debug)]
pub struct Conversion {
    pub to_storage: fn(Value) -> Value,
    pub from_storage: fn(Value) -> Value,
}

pub const EVENTS_V1: Conversion = Conversion { to_storage: events::to_core, from_storage: events::from_core };
pub const HPA_V1: Conversion = Conversion { to_storage: hpa::v1_to_v2, from_storage: hpa::v2_to_v1 };

fn set_type(value: &mut Value, api_version: &str, kind: &str) {
    if let Value::Object(m) = value {
        m.insert("apiVersion".into(), Value::String(api_version.into()));
        m.insert("kind".into(), Value::String(kind.into()));
    }
}
