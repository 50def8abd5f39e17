//! ReplicaSets and ReplicationControllers: keep `spec.replicas` active pods from the
//! template, adopting matching orphans and releasing pods that stopped matching. Missing
//! pods are created in batches that double while they succeed (1, 2, 4, ...), at most 500
//! per pass, as kube-controller-manager does ([`crate::pod_control`]); surplus pods are deleted in
//! [`crate::pod_ranking`] order. The status counts replicas, fully labeled, ready,
//! available (ready for minReadySeconds) and terminating pods, with a ReplicaFailure
//! condition while creating or deleting fails.

use crate::expectations::Expectations;
use crate::informer::{Informer, controller_uid};
use crate::pod_control::PodControl;
use crate::pods::{generated_from_template, is_active, is_available, is_terminating, ready_since};
use crate::status::{self, count};
use crate::{Error, Informers, drive, owner, pod_ranking, triggers};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use kube::Resource;
use kube::api::Api;
use kube::core::Selector;
use kube::runtime::controller::{Action, Controller};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

/// At most this many pods are created or deleted per pass.
const BURST: usize = 500;

/// What the controller reads from a ReplicaSet or a ReplicationController.
pub trait Replicated:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    const COMPONENT: &'static str;
    /// Whether the status counts terminating pods (ReplicaSets do).
    const COUNTS_TERMINATING: bool;
    fn replicas(&self) -> i32;
    fn selector(&self) -> Option<Selector>;
    fn template(&self) -> Option<&PodTemplateSpec>;
    fn min_ready_seconds(&self) -> i32;
}

impl Replicated for ReplicaSet {
    const COMPONENT: &'static str = "replicaset-controller";
    const COUNTS_TERMINATING: bool = true;

    fn replicas(&self) -> i32 {
        self.spec.replicas.unwrap_or(1)
    }

    fn selector(&self) -> Option<Selector> {
        let selector = self.spec.selector.clone();
        // An empty selector would take every pod in the namespace; validation refuses it.
        if selector.match_labels.as_ref().is_none_or(|l| l.is_empty())
            && selector.match_expressions.as_ref().is_none_or(|e| e.is_empty())
        {
            return None;
        }
        selector.try_into().ok()
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.template.as_ref()
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec.min_ready_seconds.unwrap_or(0)
    }
}

impl Replicated for ReplicationController {
    const COMPONENT: &'static str = "replication-controller";
    const COUNTS_TERMINATING: bool = false;

    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn selector(&self) -> Option<Selector> {
        let labels = self.spec.as_ref()?.selector.clone().filter(|s| !s.is_empty())?;
        Some(labels.into_iter().collect())
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
    }
}

pub struct Context<R: Replicated> {
    client: kube::Client,
    informers: Arc<Informers>,
    owners: Arc<Informer<R>>,
    expectations: Arc<Expectations>,
}

pub async fn run<R: Replicated>(client: kube::Client, informers: Arc<Informers>, owners: Arc<Informer<R>>) {
    let ctx = Arc::new(Context {
        client,
        informers: informers.clone(),
        owners: owners.clone(),
        expectations: Arc::default(),
    });
    let pods = ctx.expectations.observing(informers.pods.subscribe());
    let own = ctx.expectations.clearing_deleted(owners.subscribe());
    let store = owners.store();
    let controller = Controller::for_shared_stream(triggers(own), owners.store())
        .watches_shared_stream(pods, move |pod: Arc<Pod>| owner::owners_of(&*pod, &store, R::selector));
    drive(R::COMPONENT, controller, reconcile::<R>, ctx).await;
}

async fn reconcile<R: Replicated>(owner: Arc<R>, ctx: Arc<Context<R>>) -> Result<Action, Error> {
    ctx.informers.pods.ready().await;
    let Some(selector) = owner.selector() else {
        return Ok(Action::await_change());
    };
    let uid = owner.meta().uid.clone().unwrap_or_default();
    // Read before the pods: what was expected must already be in what is read.
    let settled = ctx.expectations.satisfied(&uid);
    let claimed = owner::claim(&ctx.client, owner.as_ref(), &selector, &ctx.informers.pods).await?;
    let failure =
        if settled && owner.meta().deletion_timestamp.is_none() { manage(&owner, &claimed, &ctx).await } else { None };

    let counts = Counts::of(&claimed, owner.as_ref(), chrono::Utc::now());
    let mut conditions = status::conditions(owner.as_ref());
    match &failure {
        Some((reason, message)) => {
            status::set_condition(&mut conditions, "ReplicaFailure", "True", reason, message, false)
        }
        None => status::remove_condition(&mut conditions, "ReplicaFailure"),
    }
    let mut desired = json!({
        "replicas": counts.active,
        "fullyLabeledReplicas": count(counts.fully_labeled),
        "readyReplicas": count(counts.ready),
        "availableReplicas": count(counts.available),
        "observedGeneration": owner.meta().generation,
        "conditions": status::conditions_value(conditions),
    });
    if R::COUNTS_TERMINATING {
        desired["terminatingReplicas"] = json!(counts.terminating);
    }
    let api: Api<R> = Api::namespaced(ctx.client.clone(), owner.meta().namespace.as_deref().unwrap_or_default());
    status::write(&api, owner.as_ref(), desired).await?;

    if failure.is_some() {
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    // Pods become available minReadySeconds after they are ready, with no event to say so:
    // look again when the next one does.
    Ok(match counts.next_available {
        Some(wait) => Action::requeue(wait.to_std().unwrap_or_default() + Duration::from_millis(100)),
        None => Action::await_change(),
    })
}

/// What the status counts of an owner's pods, in one pass over them: an owner may have
/// thousands, and it is reconciled on every change to any of them.
#[derive(Default)]
struct Counts {
    active: usize,
    /// Active pods with every label of the template.
    fully_labeled: usize,
    ready: usize,
    available: usize,
    terminating: usize,
    /// How long until the next ready pod becomes available, if one is waiting for minReadySeconds.
    next_available: Option<chrono::Duration>,
}

impl Counts {
    fn of<R: Replicated>(claimed: &[Arc<Pod>], owner: &R, now: chrono::DateTime<chrono::Utc>) -> Counts {
        let min_ready_seconds = owner.min_ready_seconds();
        let template_labels = owner.template().and_then(|t| t.metadata.as_ref()).and_then(|m| m.labels.as_ref());
        let mut counts = Counts::default();
        for pod in claimed {
            if is_terminating(pod) {
                counts.terminating += 1;
            }
            if !is_active(pod) {
                continue;
            }
            counts.active += 1;
            let labels = owner::labels_of(pod.as_ref());
            if template_labels.is_none_or(|t| t.iter().all(|(k, v)| labels.get(k) == Some(v))) {
                counts.fully_labeled += 1;
            }
            let Some(since) = ready_since(pod) else { continue };
            counts.ready += 1;
            if is_available(pod, min_ready_seconds, now) {
                counts.available += 1;
            } else if let Some(since) = since {
                let wait = since + chrono::Duration::seconds(min_ready_seconds as i64) - now;
                counts.next_available = Some(counts.next_available.map_or(wait, |w| w.min(wait)));
            }
        }
        counts
    }
}

/// Creates or deletes pods towards `spec.replicas`; returns the ReplicaFailure reason and
/// message if that failed.
async fn manage<R: Replicated>(
    owner: &Arc<R>,
    claimed: &[Arc<Pod>],
    ctx: &Context<R>,
) -> Option<(&'static str, String)> {
    let meta = owner.meta();
    let name = meta.name.clone().unwrap_or_default();
    let namespace = meta.namespace.clone().unwrap_or_default();
    let control = PodControl {
        client: &ctx.client,
        component: R::COMPONENT,
        owner: owner.as_ref(),
        expectations: &ctx.expectations,
    };
    let active = || claimed.iter().filter(|p| is_active(p));
    let diff = active().count() as i64 - owner.replicas() as i64;
    if diff < 0 {
        let template = owner.template()?;
        let pods = (0..(-diff as usize).min(BURST))
            .map(|_| {
                generated_from_template(template, owner::reference(owner.as_ref()), &format!("{name}-"), &namespace)
            })
            .collect();
        if let Err(error) = control.create_all(pods).await {
            return Some(("FailedCreate", error));
        }
    } else if diff > 0 {
        let related = siblings_pods(owner.as_ref(), ctx);
        let victims = pod_ranking::to_delete(active().cloned().collect(), &related, (diff as usize).min(BURST));
        if let Err(error) = control.delete_all(&victims).await {
            return Some(("FailedDelete", error));
        }
    }
    None
}

/// The active pods of this owner and of its siblings (the owners with the same
/// controller, such as the ReplicaSets of one Deployment), for ranking by node.
fn siblings_pods<R: Replicated>(owner: &R, ctx: &Context<R>) -> Vec<Arc<Pod>> {
    let own_uid = owner.meta().uid.clone().unwrap_or_default();
    let siblings = match controller_uid(owner) {
        Some(parent) => ctx.owners.owned_by(&parent).iter().filter_map(|o| o.meta().uid.clone()).collect(),
        None => vec![own_uid],
    };
    siblings.iter().flat_map(|uid| ctx.informers.pods.owned_by(uid)).filter(|p| is_active(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn pod(labels: Value, ready_since: Option<&str>, deleting: bool, phase: &str) -> Arc<Pod> {
        let conditions = match ready_since {
            Some(t) => json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]),
            None => json!([{"type": "Ready", "status": "False"}]),
        };
        let mut metadata = json!({"name": "p", "labels": labels});
        if deleting {
            metadata["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        Arc::new(
            serde_json::from_value(json!({"metadata": metadata, "status": {"phase": phase, "conditions": conditions}}))
                .unwrap(),
        )
    }

    fn replica_set(min_ready_seconds: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": "rs"},
            "spec": {"selector": {"matchLabels": {"app": "a"}}, "minReadySeconds": min_ready_seconds,
                     "template": {"metadata": {"labels": {"app": "a", "tier": "web"}}}}
        }))
        .unwrap()
    }

    #[test]
    fn counts_what_the_status_reports_in_one_pass() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:01:00Z").unwrap().to_utc();
        let full = json!({"app": "a", "tier": "web"});
        let pods = [
            pod(full.clone(), Some("2026-01-01T00:00:00Z"), false, "Running"), // available
            pod(json!({"app": "a"}), Some("2026-01-01T00:00:50Z"), false, "Running"), // ready 10 s
            pod(full.clone(), None, false, "Pending"),
            pod(full.clone(), Some("2026-01-01T00:00:00Z"), true, "Running"), // terminating
            pod(full.clone(), None, false, "Succeeded"),                      // finished
        ];
        let counts = Counts::of(&pods, &replica_set(30), now);
        assert_eq!(
            (counts.active, counts.fully_labeled, counts.ready, counts.available, counts.terminating),
            (3, 2, 2, 1, 1)
        );
        assert_eq!(counts.next_available, Some(chrono::Duration::seconds(20)));

        let counts = Counts::of(&pods, &replica_set(0), now);
        assert_eq!((counts.ready, counts.available, counts.next_available), (2, 2, None));
    }
}
