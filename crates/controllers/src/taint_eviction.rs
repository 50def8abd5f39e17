//! Taint eviction: a pod bound to a node with a NoExecute taint it does not tolerate is
//! deleted at once; one that tolerates every such taint, but for a limited
//! `tolerationSeconds`, is deleted when the shortest of those has passed since the
//! controller saw the taints (earlier if the taints or tolerations change so that it no
//! longer tolerates them); tolerations without tolerationSeconds keep it forever. Before the
//! deletion the pod gets the DisruptionTarget condition (reason DeletionByTaintManager), and
//! TaintManagerEviction events tell of evictions marked and cancelled.
//!
//! The timers are this controller's own (a restarted controller starts them again, as
//! kube-controller-manager's do); everything else is read from the informers on each pass.

use crate::pods_by_node::PodsByNode;
use crate::{Error, Informers, drive, status, triggers};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use kube::api::{Api, DeleteParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const COMPONENT: &str = "taint-eviction-controller";

type Key = (String, String);

/// A pod's eviction: when it is due, for the pod with this uid.
struct Scheduled {
    uid: String,
    at: DateTime<Utc>,
}

struct Context {
    client: kube::Client,
    informers: Arc<Informers>,
    scheduled: Mutex<HashMap<Key, Scheduled>>,
}

/// What the node's NoExecute taints mean for a pod.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// No NoExecute taint, or tolerated forever.
    Stay,
    /// Tolerated for this long.
    StayFor(Duration),
    /// Some taint is not tolerated.
    Evict,
}

fn verdict(taints: &[&Taint], tolerations: &[Toleration]) -> Verdict {
    let mut shortest: Option<i64> = None;
    for taint in taints {
        let value = taint.value.as_deref().unwrap_or("");
        let Some(toleration) =
            scheduler::plugins::taint_toleration::toleration_for(tolerations, &taint.key, value, &taint.effect)
        else {
            return Verdict::Evict;
        };
        if let Some(seconds) = toleration.toleration_seconds {
            shortest = Some(shortest.map_or(seconds, |s| s.min(seconds)));
        }
    }
    match shortest {
        None => Verdict::Stay,
        Some(s) => Verdict::StayFor(Duration::from_secs(s.max(0) as u64)),
    }
}

fn no_execute(node: &Node) -> Vec<&Taint> {
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default();
    taints.iter().filter(|t| t.effect == "NoExecute").collect()
}

fn key_of(pod: &Pod) -> Key {
    (pod.metadata.namespace.clone().unwrap_or_default(), pod.metadata.name.clone().unwrap_or_default())
}

pub async fn run(client: kube::Client, informers: Arc<Informers>, pods: Arc<PodsByNode>) {
    let ctx = Arc::new(Context { client, informers: informers.clone(), scheduled: Mutex::default() });
    // A deleted pod's eviction is cancelled.
    let cancel = ctx.clone();
    let pod_changes = informers.pods.subscribe().inspect(move |change| {
        if change.deleted && cancel.scheduled.lock().unwrap().contains_key(&key_of(&change.object)) {
            let cancel = cancel.clone();
            let pod = change.object.clone();
            tokio::spawn(async move { cancel.cancel(&pod).await });
        }
    });
    // Most pods are on nodes without NoExecute taints and have no eviction to cancel: their
    // reconcile would do nothing, and a cluster's pods change thousands of times a second.
    let watched = ctx.clone();
    let pod_changes = pod_changes.filter(move |change| {
        let pod = &change.object;
        let tainted = |node: &str| watched.informers.nodes.get("", node).is_some_and(|n| !no_execute(&n).is_empty());
        let relevant =
            watched.scheduled.lock().unwrap().contains_key(&key_of(pod)) || tainted(crate::pods::node_name(pod));
        std::future::ready(relevant)
    });
    // A node's pods are looked at again when its NoExecute taints change (or it goes).
    let last_taints: Mutex<HashMap<String, Vec<Taint>>> = Mutex::default();
    let nodes = informers.nodes.clone();
    let node_changes = informers.nodes.subscribe().map(|c| c.object);
    let controller = Controller::for_shared_stream(triggers(pod_changes), informers.pods.store())
        .watches_shared_stream(node_changes, move |node: Arc<Node>| {
            let name = node.metadata.name.clone().unwrap_or_default();
            let now: Vec<Taint> = match nodes.get("", &name) {
                Some(current) => no_execute(&current).into_iter().cloned().collect(),
                None => Vec::new(),
            };
            let mut last = last_taints.lock().unwrap();
            let changed = last.get(&name).map_or(!now.is_empty(), |before| *before != now);
            if now.is_empty() {
                last.remove(&name);
            } else {
                last.insert(name.clone(), now);
            }
            let affected = if changed { pods.on(&name) } else { Vec::new() };
            affected.into_iter().map(|p| ObjectRef::from_obj(p.as_ref()))
        });
    drive(COMPONENT, controller, reconcile, ctx).await;
}

async fn reconcile(pod: Arc<Pod>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.informers.nodes.ready().await;
    let node_name = crate::pods::node_name(&pod);
    // A pod already going needs no eviction; an unbound one has no node to leave.
    if pod.metadata.deletion_timestamp.is_some() || node_name.is_empty() {
        ctx.scheduled.lock().unwrap().remove(&key_of(&pod));
        return Ok(Action::await_change());
    }
    let taints = ctx
        .informers
        .nodes
        .get("", node_name)
        .map(|n| no_execute(&n).into_iter().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default();
    let stay_for = match verdict(&taints.iter().collect::<Vec<_>>(), tolerations) {
        Verdict::Stay => {
            ctx.cancel(&pod).await;
            return Ok(Action::await_change());
        }
        Verdict::Evict => Duration::ZERO,
        Verdict::StayFor(d) => d,
    };
    let now = Utc::now();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    // A toleration too long to count is a toleration forever.
    let Some(at) = chrono::Duration::from_std(stay_for).ok().and_then(|d| now.checked_add_signed(d)) else {
        ctx.cancel(&pod).await;
        return Ok(Action::await_change());
    };
    let due = {
        let mut scheduled = ctx.scheduled.lock().unwrap();
        let entry = scheduled.entry(key_of(&pod)).or_insert_with(|| Scheduled { uid: uid.clone(), at });
        // A schedule stands until the pod changes or a shorter toleration brings it forward.
        if entry.uid != uid || at < entry.at {
            *entry = Scheduled { uid, at };
        }
        entry.at
    };
    if due > now {
        return Ok(Action::requeue((due - now).to_std().unwrap_or_default() + Duration::from_millis(50)));
    }
    ctx.evict(&pod).await?;
    Ok(Action::await_change())
}

impl Context {
    /// Forgets the pod's eviction, telling so if one was due.
    async fn cancel(&self, pod: &Pod) {
        let (namespace, name) = key_of(pod);
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let cancelled = {
            let mut scheduled = self.scheduled.lock().unwrap();
            let key = (namespace.clone(), name.clone());
            let ours = scheduled.get(&key).is_some_and(|s| s.uid == uid);
            if ours {
                scheduled.remove(&key);
            }
            ours
        };
        if cancelled {
            let message = format!("Cancelling deletion of Pod {namespace}/{name}");
            events::record(&self.client, COMPONENT, pod, "Normal", "TaintManagerEviction", &message).await;
        }
    }

    /// Marks the pod as disrupted and deletes it.
    async fn evict(&self, pod: &Pod) -> Result<(), Error> {
        let (namespace, name) = key_of(pod);
        let message = format!("Marking for deletion Pod {namespace}/{name}");
        events::record(&self.client, COMPONENT, pod, "Normal", "TaintManagerEviction", &message).await;
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let Some(fresh) = api.get_opt(&name).await? else { return Ok(()) };
        if fresh.metadata.uid != pod.metadata.uid {
            return Ok(());
        }
        let mut conditions = status::conditions(&fresh);
        let reason = "DeletionByTaintManager";
        status::set_condition(
            &mut conditions,
            "DisruptionTarget",
            "True",
            reason,
            "Taint manager: deleting due to NoExecute taint",
            false,
        );
        status::write(&api, &fresh, json!({"conditions": conditions})).await?;
        let preconditions = Preconditions { uid: fresh.metadata.uid.clone(), resource_version: None };
        match api.delete(&name, &DeleteParams { preconditions: Some(preconditions), ..Default::default() }).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        self.scheduled.lock().unwrap().remove(&(namespace, name));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toleration(key: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: seconds,
            ..Default::default()
        }
    }

    fn taint(key: &str) -> Taint {
        Taint { key: key.into(), effect: "NoExecute".into(), ..Default::default() }
    }

    #[test]
    fn the_shortest_toleration_decides_and_an_untolerated_taint_evicts() {
        let (unreachable, not_ready) = (taint("node.kubernetes.io/unreachable"), taint("node.kubernetes.io/not-ready"));
        let tolerations = [
            toleration("node.kubernetes.io/unreachable", Some(5)),
            toleration("node.kubernetes.io/not-ready", Some(300)),
        ];
        assert_eq!(verdict(&[], &tolerations), Verdict::Stay);
        assert_eq!(verdict(&[&unreachable], &tolerations), Verdict::StayFor(Duration::from_secs(5)));
        assert_eq!(verdict(&[&unreachable, &not_ready], &tolerations), Verdict::StayFor(Duration::from_secs(5)));
        assert_eq!(verdict(&[&taint("gpu")], &tolerations), Verdict::Evict);
        assert_eq!(verdict(&[&unreachable], &[toleration("node.kubernetes.io/unreachable", None)]), Verdict::Stay);
        assert_eq!(
            verdict(&[&unreachable], &[toleration("node.kubernetes.io/unreachable", Some(-3))]),
            Verdict::StayFor(Duration::ZERO)
        );
        // An empty key with Exists tolerates everything.
        assert_eq!(verdict(&[&taint("gpu")], &[toleration("", None)]), Verdict::Stay);
    }
}
