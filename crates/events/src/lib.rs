//! Records a core/v1 Event about an object, the way Kubernetes components tell users what
//! they did (`kubectl describe` and `kubectl events` show them). Recording is best effort: a
//! failure is logged and never stops the work the event describes. Events pass through
//! client-go's correlation first ([`correlator`]): repeats are counted, similar ones
//! combined, and a flood about one object is cut off.
//!
//! ```no_run
//! # async fn demo(client: kube::Client, pod: k8s_openapi::api::core::v1::Pod) {
//! events::record(&client, "default-scheduler", &pod, "Normal", "Scheduled", "Successfully assigned default/web to node-1").await;
//! # }
//! ```

mod correlator;

use correlator::{Correlator, Decision, event_name};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// Each component's correlator. A Kubernetes component has one in its event broadcaster;
/// skiff's components share a process, so they are kept here by component name.
static CORRELATORS: LazyLock<Mutex<HashMap<String, Correlator>>> = LazyLock::new(Default::default);

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
    let now = jiff::Timestamp::now();
    let event = Event {
        metadata: ObjectMeta {
            name: Some(event_name(&name, now)),
            namespace: Some(namespace.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some(K::api_version(&()).into_owned()),
            kind: Some(K::kind(&()).into_owned()),
            name: Some(name.clone()),
            namespace: meta.namespace.clone(),
            uid: meta.uid.clone(),
            ..Default::default()
        },
        reason: Some(reason.into()),
        message: Some(message.into()),
        type_: Some(type_.into()),
        source: Some(EventSource { component: Some(component.into()), host: None }),
        reporting_component: Some(component.into()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        ..Default::default()
    };
    let decision = CORRELATORS.lock().unwrap().entry(component.to_string()).or_default().correlate(event, now);
    let events: Api<Event> = Api::namespaced(client.clone(), &namespace);
    let result = match decision {
        Decision::Skip => return,
        Decision::Create(event) => events.create(&PostParams::default(), &event).await.map(drop),
        Decision::Update(event) => update(&events, event).await,
    };
    if let Err(e) = result {
        tracing::debug!(object = name, reason, error = %e, "could not record an event");
    }
}

/// Patches a recorded event with its new count, lastTimestamp and message, or creates it
/// again if it is gone (events expire), as client-go does.
async fn update(events: &Api<Event>, event: Event) -> kube::Result<()> {
    let name = event.metadata.name.clone().unwrap_or_default();
    let patch = json!({"count": event.count, "lastTimestamp": event.last_timestamp, "message": event.message});
    match events.patch(&name, &PatchParams::default(), &Patch::Strategic(&patch)).await {
        Err(kube::Error::Api(e)) if e.code == 404 => {
            let fresh = Event { metadata: ObjectMeta { resource_version: None, ..event.metadata.clone() }, ..event };
            events.create(&PostParams::default(), &fresh).await.map(drop)
        }
        other => other.map(drop),
    }
}
