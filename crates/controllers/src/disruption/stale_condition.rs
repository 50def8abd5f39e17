//! Stale DisruptionTarget conditions: whoever marks a pod DisruptionTarget (the eviction API,
//! taint eviction, pod GC) deletes it next. A pod that still has the condition, True, two
//! minutes later without being deleted (the deletion failed, or was refused) was not
//! disrupted after all, so the disruption controller sets the condition to False, as
//! kube-controller-manager does. The kubelet's own TerminationByKubelet condition, and the
//! conditions of pods that have finished, are never stale.

use crate::{Error, Informers, drive, status, triggers};
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Pod, PodCondition};
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const CONDITION: &str = "DisruptionTarget";

/// How long a pod may keep a True DisruptionTarget condition without being deleted.
const STALE_AFTER: Duration = Duration::from_secs(120);

pub async fn run(client: kube::Client, informers: Arc<Informers>) {
    let marked = triggers(informers.pods.subscribe_to(|pod| stale_at(pod).is_some()));
    let controller = Controller::for_shared_stream(marked, informers.pods.store());
    drive("disruption-controller", controller, reconcile, Arc::new(client)).await;
}

/// When the pod's DisruptionTarget condition goes stale, if the pod has one that can.
fn stale_at(pod: &Pod) -> Option<DateTime<Utc>> {
    if pod.metadata.deletion_timestamp.is_some() || crate::pods::is_terminal(pod) {
        return None;
    }
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let condition: &PodCondition = conditions.iter().find(|c| c.type_ == CONDITION)?;
    if condition.status != "True" || condition.reason.as_deref() == Some("TerminationByKubelet") {
        return None;
    }
    let since = condition.last_transition_time.as_ref().map_or_else(Utc::now, crate::pods::timestamp);
    Some(since + STALE_AFTER)
}

async fn reconcile(pod: Arc<Pod>, client: Arc<kube::Client>) -> Result<Action, Error> {
    let Some(at) = stale_at(&pod) else { return Ok(Action::await_change()) };
    let wait = (at - Utc::now()).to_std().unwrap_or_default();
    if !wait.is_zero() {
        return Ok(Action::requeue(wait));
    }
    // The condition is replaced whole, as Kubernetes replaces it: the reason and message
    // of the disruption that did not happen go with it.
    let mut conditions = status::conditions(pod.as_ref());
    status::remove_condition(&mut conditions, CONDITION);
    conditions.push(json!({"type": CONDITION, "status": "False", "lastTransitionTime": status::now()}));
    let api: Api<Pod> = Api::namespaced((*client).clone(), pod.metadata.namespace.as_deref().unwrap_or_default());
    status::write(&api, &pod, json!({"conditions": conditions})).await?;
    tracing::info!(
        pod = pod.metadata.name.as_deref().unwrap_or_default(),
        "reset a stale DisruptionTarget condition to False"
    );
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(condition: serde_json::Value, phase: &str, deleted: Option<&str>) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p", "deletionTimestamp": deleted},
                                      "status": {"phase": phase, "conditions": [condition]}}))
        .unwrap()
    }

    #[test]
    fn a_true_condition_goes_stale_two_minutes_after_it_was_set() {
        let set = "2026-11-24T10:00:00Z";
        let marked = json!({"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                            "lastTransitionTime": set});
        let expected = set.parse::<DateTime<Utc>>().unwrap() + STALE_AFTER;
        assert_eq!(stale_at(&pod(marked.clone(), "Running", None)), Some(expected));
        assert_eq!(stale_at(&pod(marked.clone(), "Running", Some(set))), None);
        assert_eq!(stale_at(&pod(marked, "Failed", None)), None);
        let by_kubelet = json!({"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet"});
        assert_eq!(stale_at(&pod(by_kubelet, "Running", None)), None);
        assert_eq!(stale_at(&pod(json!({"type": "DisruptionTarget", "status": "False"}), "Running", None)), None);
    }
}
