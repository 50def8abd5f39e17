//! The `endpoints.kubernetes.io/last-change-trigger-time` annotation of Endpoints and
//! EndpointSlices: when the change that made the controller write them happened, for
//! measuring how long endpoints take to follow pods. As kube-controller-manager computes it,
//! it is the earliest of the times that moved since the Service's last sync: a pod's Ready
//! condition's lastTransitionTime, or the Service's creation. A Service seen for the first
//! time (a new one, or every one after a restart) gives its creation time. A write with no
//! such time clears the annotation.

use crate::informer::Change;
use crate::pods::timestamp;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Pod, Service};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// What the last sync of a Service saw.
struct Seen {
    service: Option<DateTime<Utc>>,
    pods: HashMap<String, DateTime<Utc>>,
}

/// Each Service's trigger times as its last sync saw them.
#[derive(Default)]
pub struct TriggerTimes {
    services: Mutex<HashMap<(String, String), Seen>>,
}

impl TriggerTimes {
    /// The trigger time of a sync of `service` whose selected pods are `pods`, remembering
    /// what it saw for the next.
    pub fn sync(&self, service: &Service, pods: &[Arc<Pod>]) -> Option<DateTime<Utc>> {
        let created = service.metadata.creation_timestamp.as_ref().map(timestamp);
        let pods: HashMap<String, DateTime<Utc>> =
            pods.iter().filter_map(|pod| Some((pod.metadata.name.clone()?, ready_transition(pod)?))).collect();
        let mut services = self.services.lock().unwrap();
        let time = match services.get(&key(service)) {
            None => created,
            Some(before) => {
                let moved_pods = pods.iter().filter(|(name, at)| before.pods.get(*name).is_none_or(|b| *at > b));
                let moved_service = created.filter(|at| before.service.is_none_or(|b| at > &b));
                moved_pods.map(|(_, at)| *at).chain(moved_service).min()
            }
        };
        services.insert(key(service), Seen { service: created, pods });
        time
    }

    /// The Service is gone.
    pub fn forget(&self, service: &Service) {
        self.services.lock().unwrap().remove(&key(service));
    }

    /// The Services' changes, passed on; a deleted Service is forgotten.
    pub fn forgetting(
        self: &Arc<Self>,
        changes: impl Stream<Item = Change<Service>> + Send + 'static,
    ) -> impl Stream<Item = Change<Service>> + Send + 'static {
        let times = self.clone();
        changes.inspect(move |change| {
            if change.deleted {
                times.forget(&change.object);
            }
        })
    }
}

fn key(service: &Service) -> (String, String) {
    (service.metadata.namespace.clone().unwrap_or_default(), service.metadata.name.clone().unwrap_or_default())
}

/// When the pod's Ready condition last changed, whichever way.
fn ready_transition(pod: &Pod) -> Option<DateTime<Utc>> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().find(|c| c.type_ == "Ready")?.last_transition_time.as_ref().map(timestamp)
}

/// Sets the annotation to `time` (RFC 3339 in UTC, with as many fractional digits as it
/// needs, as Go's RFC3339Nano writes it), or removes it without one.
pub fn annotate(annotations: &mut Option<std::collections::BTreeMap<String, String>>, time: Option<DateTime<Utc>>) {
    let map = annotations.get_or_insert_with(Default::default);
    match time {
        Some(time) => {
            let mut text = time.format("%Y-%m-%dT%H:%M:%S").to_string();
            let nanos = time.timestamp_subsec_nanos();
            if nanos > 0 {
                text.push_str(format!(".{nanos:09}").trim_end_matches('0'));
            }
            text.push('Z');
            map.insert(ANNOTATION.into(), text);
        }
        None => {
            map.remove(ANNOTATION);
        }
    }
    if map.is_empty() {
        *annotations = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(created: &str) -> Service {
        serde_json::from_value(
            json!({"metadata": {"name": "web", "namespace": "default", "creationTimestamp": created}}),
        )
        .unwrap()
    }

    fn pod(name: &str, ready_since: &str) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name}, "status": {"conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": ready_since}]}}))
            .unwrap(),
        )
    }

    fn at(text: &str) -> Option<DateTime<Utc>> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn the_earliest_time_that_moved_since_the_last_sync() {
        let times = TriggerTimes::default();
        let web = service("2026-11-24T10:00:00Z");
        let a = pod("a", "2026-11-24T10:01:00Z");
        // First seen: the Service's creation.
        assert_eq!(times.sync(&web, &[a.clone()]), at("2026-11-24T10:00:00Z"));
        // Nothing moved.
        assert_eq!(times.sync(&web, &[a.clone()]), None);
        // A new pod, and one whose readiness changed: the earlier of the two.
        let b = pod("b", "2026-11-24T10:03:00Z");
        let a2 = pod("a", "2026-11-24T10:02:00Z");
        assert_eq!(times.sync(&web, &[a2.clone(), b.clone()]), at("2026-11-24T10:02:00Z"));
        // A pod that went is no trigger time.
        assert_eq!(times.sync(&web, &[b.clone()]), None);
        // A Service made again under the same name.
        let again = service("2026-11-24T11:00:00Z");
        assert_eq!(times.sync(&again, &[b.clone()]), at("2026-11-24T11:00:00Z"));
        times.forget(&again);
        assert_eq!(times.sync(&again, &[b]), at("2026-11-24T11:00:00Z"));
    }

    #[test]
    fn the_annotation_is_written_as_rfc3339_nano() {
        let mut annotations = None;
        annotate(&mut annotations, at("2026-11-24T10:00:00Z"));
        assert_eq!(annotations.as_ref().unwrap()[ANNOTATION], "2026-11-24T10:00:00Z");
        annotate(&mut annotations, at("2026-11-24T10:00:00.120Z"));
        assert_eq!(annotations.as_ref().unwrap()[ANNOTATION], "2026-11-24T10:00:00.12Z");
        annotate(&mut annotations, None);
        assert_eq!(annotations, None);
    }
}
