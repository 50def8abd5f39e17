//! StatefulSets, as kube-controller-manager runs them: pods with a stable identity
//! ([`identity`]) and their own PersistentVolumeClaims ([`claims`], kept or removed by the
//! retention policy, [`retention`]); created in ordinal order, each once its predecessors are
//! Running and Ready, and deleted in reverse (OrderedReady), or all at once (Parallel)
//! ([`replicas`]); rolled out from the highest ordinal down to the partition, at most
//! maxUnavailable at a time, or on deletion only (OnDelete) ([`update`]); with their
//! templates kept as ControllerRevisions ([`history`]), which `kubectl rollout history` and
//! `rollout undo` read. Each pass starts from what the API says, so a restart loses nothing;
//! expectations keep a lagging cache from creating or deleting a pod twice.

mod claims;
mod health;
mod history;
mod identity;
mod pod_control;
mod replicas;
mod retention;
mod status;
mod update;

use crate::expectations::Expectations;
use crate::{Error, Informers, drive, owner, triggers};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;
use kube::api::Api;
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use std::sync::Arc;
use std::time::Duration;

const COMPONENT: &str = "statefulset-controller";

pub struct Context {
    client: kube::Client,
    informers: Arc<Informers>,
    expectations: Arc<Expectations>,
}

pub async fn run(client: kube::Client, informers: Arc<Informers>) {
    let ctx = Arc::new(Context { client, informers: informers.clone(), expectations: Arc::default() });
    let pods = ctx.expectations.observing(informers.pods.subscribe());
    let sets = ctx.expectations.clearing_deleted(informers.statefulsets.subscribe());
    let revisions = informers.controller_revisions.subscribe().map(|c| c.object);
    let claims = informers.persistent_volume_claims.subscribe().map(|c| c.object);
    let (by_pod, by_revision, by_claim) =
        (informers.statefulsets.store(), informers.statefulsets.store(), informers.statefulsets.store());
    let controller = Controller::for_shared_stream(triggers(sets), informers.statefulsets.store())
        .watches_shared_stream(pods, move |pod: Arc<Pod>| owner::owners_of(&*pod, &by_pod, selector))
        .watches_shared_stream(revisions, move |r: Arc<ControllerRevision>| {
            owner::owners_of(&*r, &by_revision, selector)
        })
        .watches_shared_stream(claims, move |claim: Arc<PersistentVolumeClaim>| claim_owners(&*claim, &by_claim));
    drive(COMPONENT, controller, reconcile, ctx).await;
}

fn selector(set: &StatefulSet) -> Option<Selector> {
    let selector = set.spec.selector.clone();
    let empty = selector.match_labels.as_ref().is_none_or(|l| l.is_empty())
        && selector.match_expressions.as_ref().is_none_or(|e| e.is_empty());
    if empty { None } else { selector.try_into().ok() }
}

/// The set a claim concerns, through the owner references the retention policy puts on it:
/// the set itself, or the pod of the set that a scaled-down claim belongs to. A claim going
/// away may unblock recreating its pod.
fn claim_owners(claim: &PersistentVolumeClaim, sets: &Store<StatefulSet>) -> Vec<ObjectRef<StatefulSet>> {
    let namespace = claim.namespace().unwrap_or_default();
    let refs = claim.metadata.owner_references.iter().flatten();
    let names = refs.filter_map(|r| match (r.api_version.as_str(), r.kind.as_str()) {
        ("apps/v1", "StatefulSet") => Some(r.name.as_str()),
        ("v1", "Pod") => identity::parent_and_ordinal(&r.name).map(|(set, _)| set),
        _ => None,
    });
    let refs = names.map(|name| ObjectRef::new(name).within(&namespace));
    refs.filter(|r| sets.get(r).is_some()).collect()
}

/// One pass over a set: the set as it is, as of its current revision and as of its update
/// revision, and the revisions' names.
struct Pass<'a> {
    ctx: &'a Context,
    set: &'a StatefulSet,
    current_set: StatefulSet,
    update_set: StatefulSet,
    current_revision: String,
    update_revision: String,
    /// OrderedReady: one pod at a time, each waiting for its predecessors.
    monotonic: bool,
    min_ready: i32,
    now: chrono::DateTime<chrono::Utc>,
}

impl Pass<'_> {
    fn namespace(&self) -> String {
        self.set.namespace().unwrap_or_default()
    }

    fn uid(&self) -> &str {
        self.set.metadata.uid.as_deref().unwrap_or_default()
    }
}

async fn reconcile(set: Arc<StatefulSet>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.informers.pods.ready().await;
    ctx.informers.controller_revisions.ready().await;
    ctx.informers.persistent_volume_claims.ready().await;
    let Some(selector) = selector(&set) else {
        return Ok(Action::await_change());
    };
    // Read before the pods: what was expected must already be in what is read.
    let settled = ctx.expectations.satisfied(set.metadata.uid.as_deref().unwrap_or_default());
    let mut revisions = owner::claim(&ctx.client, set.as_ref(), &selector, &ctx.informers.controller_revisions).await?;
    history::sort(&mut revisions);
    let member = |pod: &Pod| selector.matches(owner::labels_of(pod)) && identity::is_member(&set, pod);
    let pods = owner::claim_where(&ctx.client, set.as_ref(), member, &ctx.informers.pods).await?;

    let namespace = set.namespace().unwrap_or_default();
    let revision_api = Api::namespaced(ctx.client.clone(), &namespace);
    let history = history::resolve(&revision_api, &set, &revisions).await?;
    let pass = Pass {
        ctx: &ctx,
        set: &set,
        current_set: history::as_of(&set, &history.current)?,
        update_set: history::as_of(&set, &history.update)?,
        current_revision: history.current.name_any(),
        update_revision: history.update.name_any(),
        monotonic: set.spec.pod_management_policy.as_deref() != Some("Parallel"),
        min_ready: set.spec.min_ready_seconds.unwrap_or(0),
        now: chrono::Utc::now(),
    };
    let (mut status, outcome) = pass.sync(&pods, settled).await;
    status.collision_count = history.collisions;
    status.complete_rolling_update(&set);
    let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &namespace);
    crate::status::write(&api, set.as_ref(), status.to_json()).await?;
    history::truncate(
        &revision_api,
        &set,
        &pods,
        &revisions,
        [pass.current_revision.as_str(), pass.update_revision.as_str()],
    )
    .await?;
    outcome?;

    // Pods become available minReadySeconds after they are ready, with no event to say so.
    let min_ready = pass.min_ready;
    Ok(if min_ready > 0 && status.available_replicas != identity::replicas(&set) {
        Action::requeue(Duration::from_secs(min_ready as u64))
    } else {
        Action::await_change()
    })
}
