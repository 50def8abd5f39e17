//! The disruption controller: keeps each PodDisruptionBudget's status as Kubernetes computes
//! it: the pods its selector matches, how many are expected and must stay healthy
//! ([`budget`]; percentages and maxUnavailable against the scale of the pods' controllers,
//! [`expected_scale`]), how many are healthy now, the evictions the API server recorded and
//! still awaits (`disruptedPods`, forgotten after two minutes), `disruptionsAllowed`, and the
//! DisruptionAllowed condition (SufficientPods / InsufficientPods, or SyncFailed with no
//! disruption allowed when the status cannot be computed). The eviction API reads that status
//! to decide whether a pod may go. The controller also clears DisruptionTarget conditions
//! left on pods that were not deleted ([`stale_condition`]).

pub mod budget;
mod expected_scale;
pub mod stale_condition;

use crate::{Error, Informers, drive, status, triggers};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, PostParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use std::sync::Arc;
use std::time::Duration;

const COMPONENT: &str = "controllermanager";
const CONDITION: &str = "DisruptionAllowed";

pub struct Context {
    client: kube::Client,
    informers: Arc<Informers>,
}

pub async fn run(client: kube::Client, informers: Arc<Informers>) {
    let budgets = &informers.pod_disruption_budgets;
    let store = budgets.store();
    let pods = informers.pods.subscribe().map(|change| change.object);
    let controller = Controller::for_shared_stream(triggers(budgets.subscribe()), budgets.store())
        .watches_shared_stream(pods, move |pod: Arc<Pod>| budgets_of(&*pod, &store));
    drive("disruption-controller", controller, reconcile, Arc::new(Context { client, informers })).await;
}

/// The pods a budget selects: none without a selector, every pod of its namespace with an
/// empty one (policy/v1).
fn selector(pdb: &PodDisruptionBudget) -> Result<Option<Selector>, String> {
    let Some(selector) = pdb.spec.as_ref().and_then(|s| s.selector.clone()) else { return Ok(None) };
    Selector::try_from(selector).map(Some).map_err(|e| e.to_string())
}

/// The budgets a change to `pod` concerns: those of its namespace that select it.
fn budgets_of(pod: &Pod, budgets: &Store<PodDisruptionBudget>) -> Vec<ObjectRef<PodDisruptionBudget>> {
    let namespace = pod.metadata.namespace.as_deref();
    let labels = crate::owner::labels_of(pod);
    let selects = |pdb: &PodDisruptionBudget| matches!(selector(pdb), Ok(Some(s)) if s.matches(labels));
    let state = budgets.state();
    let matching = state.iter().filter(|b| b.metadata.namespace.as_deref() == namespace && selects(b));
    matching.map(|b| ObjectRef::from_obj(b.as_ref())).collect()
}

/// The status computed from the pods, and when to look again.
struct Computed {
    status: PodDisruptionBudgetStatus,
    recheck: Option<DateTime<Utc>>,
    no_pods: bool,
    unmanaged: Vec<String>,
    overdue: Vec<String>,
}

async fn reconcile(pdb: Arc<PodDisruptionBudget>, ctx: Arc<Context>) -> Result<Action, Error> {
    let informers = &ctx.informers;
    informers.pods.ready().await;
    informers.replicasets.ready().await;
    informers.deployments.ready().await;
    informers.statefulsets.ready().await;
    informers.replication_controllers.ready().await;
    let now = Utc::now();
    match compute(&pdb, &ctx, now).await {
        Ok(computed) => {
            if write(&ctx, &pdb, &computed.status).await? {
                tell(&ctx, &pdb, &computed).await;
            }
            Ok(match computed.recheck {
                Some(at) => Action::requeue((at - now).to_std().unwrap_or_default() + Duration::from_millis(100)),
                None => Action::await_change(),
            })
        }
        Err(reason) => {
            // Fail safe: a budget whose status cannot be computed allows no disruption.
            let mut status = pdb.status.clone().unwrap_or_default();
            status.disruptions_allowed = Some(0);
            let generation = status.observed_generation;
            status.conditions = Some(condition(&pdb, "False", "SyncFailed", &reason, generation));
            if write(&ctx, &pdb, &status).await? {
                let message = format!("Failed to calculate the number of expected pods: {reason}");
                events::record(
                    &ctx.client,
                    COMPONENT,
                    pdb.as_ref(),
                    "Warning",
                    "CalculateExpectedPodCountFailed",
                    &message,
                )
                .await;
            }
            tracing::warn!(budget = pdb.metadata.name.as_deref().unwrap_or_default(), error = %reason, "cannot compute the disruption budget's status");
            Ok(Action::requeue(Duration::from_secs(5)))
        }
    }
}

async fn compute(pdb: &PodDisruptionBudget, ctx: &Context, now: DateTime<Utc>) -> Result<Computed, String> {
    let spec = pdb.spec.clone().unwrap_or_default();
    let namespace = pdb.metadata.namespace.as_deref();
    let pods: Vec<Arc<Pod>> = match selector(pdb)? {
        None => Vec::new(),
        Some(selector) => {
            let state = ctx.informers.pods.store().state();
            state
                .into_iter()
                .filter(|p| {
                    p.metadata.namespace.as_deref() == namespace
                        && selector.matches(crate::owner::labels_of(p.as_ref()))
                })
                .collect()
        }
    };
    let (scale, unmanaged) = if budget::needs_scale(&spec) {
        let scale = expected_scale::of_controllers(ctx, &pods).await?;
        (scale.total, scale.unmanaged)
    } else {
        (0, Vec::new())
    };
    let goal = budget::goal(&spec, pods.len() as i32, scale)?;
    let recorded = pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref());
    let awaited = budget::awaited(recorded, &pods, now);
    let current_healthy = budget::healthy(&pods, &awaited.pods, now);
    let allowed = budget::disruptions_allowed(current_healthy, &goal);
    let generation = pdb.metadata.generation;
    let (state, reason) = if allowed > 0 { ("True", "SufficientPods") } else { ("False", "InsufficientPods") };
    let status = PodDisruptionBudgetStatus {
        current_healthy: Some(current_healthy),
        desired_healthy: Some(goal.desired_healthy),
        expected_pods: Some(goal.expected_pods),
        disruptions_allowed: Some(allowed),
        disrupted_pods: (!awaited.pods.is_empty()).then_some(awaited.pods),
        observed_generation: generation,
        conditions: Some(condition(pdb, state, reason, "", generation)),
    };
    Ok(Computed { status, recheck: awaited.recheck, no_pods: pods.is_empty(), unmanaged, overdue: awaited.overdue })
}

/// The budget's conditions with DisruptionAllowed set (its lastTransitionTime kept unless
/// its status changes) for `observed_generation`.
fn condition(
    pdb: &PodDisruptionBudget,
    state: &str,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
) -> Vec<Condition> {
    let mut conditions = status::conditions(pdb);
    status::set_condition(&mut conditions, CONDITION, state, reason, message, false);
    for c in conditions.iter_mut().filter(|c| c["type"] == CONDITION) {
        c["observedGeneration"] = serde_json::json!(observed_generation);
    }
    conditions.into_iter().filter_map(|c| serde_json::from_value(c).ok()).collect()
}

/// Replaces the budget's status when it changed; `disruptedPods` is a map the API server
/// adds to, so the whole status is replaced, guarded by the resourceVersion it was computed
/// from (a 409 recomputes it). Returns whether it wrote.
async fn write(ctx: &Context, pdb: &PodDisruptionBudget, status: &PodDisruptionBudgetStatus) -> kube::Result<bool> {
    if pdb.status.as_ref() == Some(status) {
        return Ok(false);
    }
    let api: Api<PodDisruptionBudget> =
        Api::namespaced(ctx.client.clone(), pdb.metadata.namespace.as_deref().unwrap_or_default());
    let mut next = pdb.clone();
    next.status = Some(status.clone());
    api.replace_status(next.metadata.name.as_deref().unwrap_or_default(), &PostParams::default(), &next).await?;
    Ok(true)
}

/// The events kube-controller-manager records when a budget's status changes.
async fn tell(ctx: &Context, pdb: &PodDisruptionBudget, computed: &Computed) {
    if computed.no_pods {
        events::record(&ctx.client, COMPONENT, pdb, "Normal", "NoPods", "No matching pods found").await;
    }
    if !computed.unmanaged.is_empty() {
        let message = "Pods selected by this PodDisruptionBudget were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.";
        events::record(&ctx.client, COMPONENT, pdb, "Warning", "UnmanagedPods", message).await;
    }
    let namespace = pdb.metadata.namespace.as_deref().unwrap_or_default();
    let name = pdb.metadata.name.as_deref().unwrap_or_default();
    for pod_name in &computed.overdue {
        if let Some(pod) = ctx.informers.pods.get(namespace, pod_name) {
            let message = format!("Pod was expected by PDB {namespace}/{name} to be deleted but it wasn't");
            events::record(&ctx.client, COMPONENT, pod.as_ref(), "Warning", "NotDeleted", &message).await;
        }
    }
}
