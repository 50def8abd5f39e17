//! Records a core/v1 Event about an object, the way Kubernetes components tell users what
//! they did (`kubectl describe` and `kubectl events` show them). Recording is best effort: a
//! failure is logged and never stops the work the event describes.
//!
//! ```no_run
//! # async fn demo(client: kube::Client, pod: k8s_openapi::api::core::v1::Pod) {
//! events::record(&client, "default-scheduler", &pod, "Normal", "Scheduled", "Successfully assigned default/web to node-1").await;
//! # }
//! ```

use k8s_openapi::api::core::v1::Event;
use kube::Resource;
use kube::api::{Api, PostParams};
use serde_json::json;

/// Records an event of `type_` (Normal or Warning) about `object`, from `component`.
pub async fn record<K: Resource<DynamicType = ()>>(
    client: &kube::Client,
    component: &str,
    object: &K,
    type_: &str,
    reason: &str,
    message: &str,
) {
    let meta = object.meta();
    let namespace = meta.namespace.clone().unwrap_or_else(|| "default".to_string());
    let name = meta.name.clone().unwrap_or_default();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let event: Event = match serde_json::from_value(json!({
        "metadata": {"generateName": format!("{name}."), "namespace": namespace},
        "involvedObject": {"apiVersion": K::api_version(&()), "kind": K::kind(&()), "name": name,
                           "namespace": meta.namespace, "uid": meta.uid},
        "reason": reason, "message": message, "type": type_,
        "source": {"component": component}, "reportingComponent": component,
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    })) {
        Ok(event) => event,
        Err(_) => return,
    };
    let events: Api<Event> = Api::namespaced(client.clone(), &namespace);
    if let Err(e) = events.create(&PostParams::default(), &event).await {
        tracing::debug!(object = name, reason, error = %e, "could not record an event");
    }
}
