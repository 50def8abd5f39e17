//! DaemonSets: one pod per node that should run one, as kube's DaemonSet controller keeps
//! them. Which nodes those are is [`eligibility`]'s question (nodeSelector, required node
//! affinity, taints against the pod's tolerations and the default daemon tolerations);
//! [`placement`] creates and deletes pods towards one per node (replacing failed ones
//! with [`backoff`]); [`rolling`] moves them to a new revision within maxUnavailable and
//! maxSurge (OnDelete leaves that to the user); [`history`] keeps the ControllerRevisions
//! that `kubectl rollout history` and `rollout undo` read; [`status`] counts them as
//! Kubernetes does. Each pass works from the informers and converges from whatever the API
//! says; pods are adopted and released by selector, and a pass with writes still unseen
//! on its watch only updates the status.

pub mod backoff;
pub mod eligibility;
pub mod history;
pub mod placement;
pub mod rolling;
pub mod status;

use crate::expectations::Expectations;
use crate::pod_control::PodControl;
use crate::{Error, Informers, drive, owner, triggers};
use backoff::Backoff;
use eligibility::{Fit, daemon_template, fit, pod_for};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod, PodTemplateSpec};
use kube::ResourceExt;
use kube::api::Api;
use kube::core::Selector;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use placement::{Changes, PodsByNode, Rules, by_node};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const COMPONENT: &str = "daemonset-controller";

/// At most this many pods are created, and as many deleted, per pass.
const BURST: usize = 250;

pub struct Context {
    client: kube::Client,
    informers: Arc<Informers>,
    expectations: Arc<Expectations>,
    backoff: Backoff,
}

/// The selector of a DaemonSet, unless it is empty (which would select every pod in the
/// namespace, and which validation refuses).
fn selector(ds: &DaemonSet) -> Option<Selector> {
    let s = &ds.spec.selector;
    if s.match_labels.as_ref().is_none_or(|l| l.is_empty()) && s.match_expressions.as_ref().is_none_or(|e| e.is_empty())
    {
        return None;
    }
    s.clone().try_into().ok()
}

/// What of a node matters to where daemon pods go: its labels, its spec (taints,
/// unschedulable) and which of its conditions hold. Heartbeats change none of it.
fn placement_facts(node: &Node) -> Value {
    let conditions: Vec<_> =
        node.status.iter().flat_map(|s| s.conditions.iter().flatten()).map(|c| (&c.type_, &c.status)).collect();
    json!([node.metadata.labels, node.spec, conditions])
}

pub async fn run(client: kube::Client, informers: Arc<Informers>) {
    let ctx = Arc::new(Context {
        client,
        informers: informers.clone(),
        expectations: Arc::default(),
        backoff: Backoff::default(),
    });
    let pods = ctx.expectations.observing(informers.pods.subscribe());
    let own = ctx.expectations.clearing_deleted(informers.daemonsets.subscribe());
    // A node change concerns every DaemonSet, unless nothing that placement reads changed.
    let seen: Mutex<HashMap<String, Value>> = Mutex::default();
    let nodes = informers.nodes.subscribe().filter_map(move |change| {
        let mut seen = seen.lock().unwrap();
        let name = change.object.name_any();
        let relevant = if change.deleted {
            seen.remove(&name).is_some()
        } else {
            let facts = placement_facts(&change.object);
            seen.insert(name, facts.clone()).is_none_or(|before| before != facts)
        };
        std::future::ready(relevant.then_some(change.object))
    });
    let revisions = informers.controller_revisions.subscribe().map(|change| change.object);
    let (by_pod, by_node, by_revision) =
        (informers.daemonsets.store(), informers.daemonsets.store(), informers.daemonsets.store());
    let controller = Controller::for_shared_stream(triggers(own), informers.daemonsets.store())
        .watches_shared_stream(pods, move |pod: Arc<Pod>| owner::owners_of(&*pod, &by_pod, selector))
        .watches_shared_stream(nodes, move |_: Arc<Node>| {
            by_node.state().iter().map(|ds| ObjectRef::from_obj(ds.as_ref())).collect::<Vec<_>>()
        })
        .watches_shared_stream(revisions, move |r: Arc<ControllerRevision>| {
            owner::owners_of(&*r, &by_revision, selector)
        });
    drive(COMPONENT, controller, reconcile, ctx).await;
}

async fn reconcile(ds: Arc<DaemonSet>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.informers.pods.ready().await;
    ctx.informers.nodes.ready().await;
    ctx.informers.controller_revisions.ready().await;
    let Some(selector) = selector(&ds) else {
        let message = "This daemon set is selecting all pods. A non-empty selector is required.";
        events::record(&ctx.client, COMPONENT, ds.as_ref(), "Warning", "SelectingAll", message).await;
        return Ok(Action::await_change());
    };
    // Whether its history and pods still exist cannot be known while it is being deleted.
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let history = history::construct(&ctx, &ds, &selector).await?;
    let uid = ds.uid().unwrap_or_default();
    // Read before the pods: what was expected must already be in what is read.
    let settled = ctx.expectations.satisfied(&uid);
    let claimed = owner::claim(&ctx.client, ds.as_ref(), &selector, &ctx.informers.pods).await?;
    let template = daemon_template(&ds, &history.hash);
    let spec = template.spec.clone().unwrap_or_default();
    let fits: BTreeMap<String, Fit> =
        ctx.informers.nodes.store().state().iter().map(|n| (n.name_any(), fit(n, &spec))).collect();
    let now = chrono::Utc::now();
    let min_ready = ds.spec.min_ready_seconds.unwrap_or(0);

    let mut retry_after = None;
    let mut outcome = Ok(());
    if settled {
        let rules = Rules {
            surge: rolling::allows_surge(&ds),
            hash: &history.hash,
            min_ready_seconds: min_ready,
            now,
            clock: Instant::now(),
            backoff: &ctx.backoff,
            owner: &uid,
        };
        let pods = by_node(&claimed, false);
        let changes = rules.manage(&fits, &pods);
        retry_after = changes.retry_after;
        outcome = update(&ctx, &ds, &template, &history.hash, &fits, &pods, changes).await;
        if outcome.is_ok() {
            outcome = history::clean_up(&ctx, &ds, &history.old, &claimed).await;
        }
    }

    let counts = status::counts(&fits, &by_node(&claimed, true), &history.hash, min_ready, now);
    let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &ds.namespace().unwrap_or_default());
    // observedGeneration says the spec was acted on, which a pass waiting for its own
    // writes did not do.
    crate::status::write(&api, ds.as_ref(), counts.to_status(settled.then_some(ds.metadata.generation.unwrap_or(0))))
        .await?;
    outcome?;
    // Pods become available minReadySeconds after they are ready, with no event to say so.
    let available_later =
        (min_ready > 0 && counts.ready != counts.available).then(|| Duration::from_secs(min_ready as u64));
    Ok(match [retry_after, available_later].into_iter().flatten().min() {
        Some(wait) => Action::requeue(wait + Duration::from_millis(100)),
        None => Action::await_change(),
    })
}

/// Makes the placement changes and then, once every write is seen, the rolling update's.
async fn update(
    ctx: &Context,
    ds: &DaemonSet,
    template: &PodTemplateSpec,
    hash: &str,
    fits: &BTreeMap<String, Fit>,
    pods: &PodsByNode,
    changes: Changes,
) -> Result<(), Error> {
    let control = PodControl { client: &ctx.client, component: COMPONENT, owner: ds, expectations: &ctx.expectations };
    for (pod, node) in &changes.failed {
        let message = format!(
            "Found failed daemon pod {}/{} on node {node}, will try to kill it",
            pod.namespace().unwrap_or_default(),
            pod.name_any()
        );
        control.event("Warning", "FailedDaemonPod", &message).await;
    }
    sync(&control, ds, template, &changes.create_on, &changes.delete).await?;
    if rolling::is_rolling(ds) && ctx.expectations.satisfied(&ds.uid().unwrap_or_default()) {
        let step = rolling::step(ds, fits, pods, hash, chrono::Utc::now());
        sync(&control, ds, template, &step.create_on, &step.delete).await?;
    }
    Ok(())
}

/// Creates pods on `nodes` and deletes `pods`, at most [`BURST`] of each.
async fn sync(
    control: &PodControl<'_, DaemonSet>,
    ds: &DaemonSet,
    template: &PodTemplateSpec,
    nodes: &[String],
    pods: &[Arc<Pod>],
) -> Result<(), Error> {
    let created: Vec<Pod> = nodes.iter().take(BURST).map(|node| pod_for(ds, template, node)).collect();
    let deleted = &pods[..pods.len().min(BURST)];
    let (creations, deletions) = futures::join!(control.create_all(created), control.delete_all(deleted));
    creations.and(deletions).map_err(|message| Error(anyhow::anyhow!(message)))
}
