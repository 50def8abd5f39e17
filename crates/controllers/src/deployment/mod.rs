//! Deployments: a ReplicaSet per pod template, named by the template's hash, and a rollout
//! that moves replicas from the old ReplicaSets to the new one, as kube-controller-manager
//! does: RollingUpdate within maxSurge and maxUnavailable ([`rolling`]), or Recreate
//! ([`recreate`]); scaling spread proportionally over the ReplicaSets ([`scale`]);
//! revisions, rollbacks and history ([`revision`]); and the Progressing, Available and
//! ReplicaFailure conditions ([`progress`]). A paused Deployment is scaled but not rolled
//! out. `kubectl rollout undo` needs nothing more: kubectl copies the old ReplicaSet's
//! template back into the Deployment, and that template's ReplicaSet becomes the new one.

mod progress;
mod recreate;
mod revision;
mod rolling;
mod scale;

use crate::int_or_percent::scaled;
use crate::owner;
use crate::{Error, Informers, drive, triggers};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::ResourceExt;
use kube::api::Api;
use kube::core::Selector;
use kube::runtime::controller::{Action, Controller};
use std::sync::Arc;

const COMPONENT: &str = "deployment-controller";

pub struct Context {
    client: kube::Client,
    informers: Arc<Informers>,
}

pub async fn run(client: kube::Client, informers: Arc<Informers>) {
    let ctx = Arc::new(Context { client, informers: informers.clone() });
    let store = informers.deployments.store();
    let replicasets = informers.replicasets.subscribe().map(|c| c.object);
    let controller =
        Controller::for_shared_stream(triggers(informers.deployments.subscribe()), informers.deployments.store())
            .watches_shared_stream(replicasets, move |rs: Arc<ReplicaSet>| owner::owners_of(&*rs, &store, selector));
    drive(COMPONENT, controller, reconcile, ctx).await;
}

fn selector(d: &Deployment) -> Option<Selector> {
    let selector = d.spec.selector.clone();
    let empty = selector.match_labels.as_ref().is_none_or(|l| l.is_empty())
        && selector.match_expressions.as_ref().is_none_or(|e| e.is_empty());
    if empty { None } else { selector.try_into().ok() }
}

/// One pass over a Deployment: what it and its ReplicaSets are now.
struct Rollout<'a> {
    d: &'a Deployment,
    ctx: &'a Context,
    /// Every ReplicaSet the Deployment controls, oldest first.
    all: Vec<Arc<ReplicaSet>>,
}

pub fn replicas(d: &Deployment) -> i32 {
    d.spec.replicas.unwrap_or(1)
}

pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(1)
}

/// The ReplicaSet's available pods, as far as the rollout may count on them: never more
/// than it is now sized for, since a ReplicaSet just scaled down still reports the pods it is
/// about to delete (counting them would let the next step take away too many).
pub fn rs_available(rs: &ReplicaSet) -> i32 {
    let reported = rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
    reported.min(rs_replicas(rs))
}

fn rolling(d: &Deployment) -> bool {
    let strategy = d.spec.strategy.as_ref();
    strategy.and_then(|s| s.type_.as_deref()).unwrap_or("RollingUpdate") == "RollingUpdate"
}

/// (maxSurge, maxUnavailable) as numbers of pods; both zero would stall, so unavailable is
/// then one, as Kubernetes resolves them.
fn fenceposts(d: &Deployment) -> (i32, i32) {
    let update = d.spec.strategy.as_ref().and_then(|s| s.rolling_update.as_ref());
    let total = replicas(d);
    let surge = scaled(update.and_then(|u| u.max_surge.as_ref()), "25%", total, true);
    let unavailable = scaled(update.and_then(|u| u.max_unavailable.as_ref()), "25%", total, false);
    if surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable) }
}

pub fn max_surge(d: &Deployment) -> i32 {
    if rolling(d) { fenceposts(d).0 } else { 0 }
}

pub fn max_unavailable(d: &Deployment) -> i32 {
    if !rolling(d) || replicas(d) == 0 { 0 } else { fenceposts(d).1.min(replicas(d)) }
}

fn paused(d: &Deployment) -> bool {
    d.spec.paused.unwrap_or(false)
}

async fn reconcile(d: Arc<Deployment>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.informers.replicasets.ready().await;
    ctx.informers.pods.ready().await;
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &d.namespace().unwrap_or_default());
    let Some(selector) = selector(&d) else {
        events::record(
            &ctx.client,
            COMPONENT,
            d.as_ref(),
            "Warning",
            "SelectingAll",
            "This deployment is selecting all pods. A non-empty selector is required.",
        )
        .await;
        return Ok(Action::await_change());
    };
    let mut all = owner::claim(&ctx.client, d.as_ref(), &selector, &ctx.informers.replicasets).await?;
    all.sort_by(|a, b| {
        a.metadata.creation_timestamp.cmp(&b.metadata.creation_timestamp).then(a.name_any().cmp(&b.name_any()))
    });
    let rollout = Rollout { d: &d, ctx: &ctx, all };
    if d.metadata.deletion_timestamp.is_some() {
        return rollout.sync_status(&api).await;
    }
    if progress::paused_condition_changed(&d, &api).await? {
        return Ok(Action::await_change());
    }
    if paused(&d) || rollout.scaling_event() {
        return rollout.sync(&api).await;
    }
    if rolling(&d) { rollout.rolling(&api).await } else { rollout.recreate(&api).await }
}

impl Rollout<'_> {
    fn rs_api(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.ctx.client.clone(), &self.d.namespace().unwrap_or_default())
    }

    /// The ReplicaSet whose template is the Deployment's (the oldest, if several).
    fn new_rs(&self) -> Option<Arc<ReplicaSet>> {
        let template = &self.d.spec.template;
        self.all
            .iter()
            .find(|rs| rs.spec.template.as_ref().is_some_and(|t| revision::same_template(t, template)))
            .cloned()
    }

    fn old_rss(&self, new: Option<&Arc<ReplicaSet>>) -> Vec<Arc<ReplicaSet>> {
        self.all.iter().filter(|rs| new.is_none_or(|n| n.metadata.uid != rs.metadata.uid)).cloned().collect()
    }

    /// Whether a ReplicaSet was last sized for another replica count: the Deployment was
    /// scaled, which is handled apart from rolling out.
    fn scaling_event(&self) -> bool {
        let want = replicas(self.d).to_string();
        self.all.iter().filter(|rs| rs_replicas(rs) > 0).any(|rs| {
            let desired = rs.annotations().get(revision::DESIRED_REPLICAS);
            desired.is_some_and(|v| *v != want)
        })
    }

    fn active(&self) -> impl Iterator<Item = &Arc<ReplicaSet>> {
        self.all.iter().filter(|rs| rs_replicas(rs) > 0)
    }

    /// The pods of old ReplicaSets that may still be running: by their status, or by the
    /// pods themselves.
    fn old_pods_running(&self, new: Option<&Arc<ReplicaSet>>) -> bool {
        self.old_rss(new).iter().any(|rs| {
            let status = rs.status.clone().unwrap_or_default();
            if status.replicas > 0 || status.terminating_replicas.unwrap_or(0) > 0 {
                return true;
            }
            let pods = self.ctx.informers.pods.owned_by(rs.metadata.uid.as_deref().unwrap_or_default());
            pods.iter().any(|p| !crate::pods::is_terminal(p))
        })
    }
}
