//! `pods/eviction`: a policy/v1 Eviction deletes a pod only if the PodDisruptionBudget that
//! selects it allows one more disruption, as kube-apiserver's eviction REST decides it.
//!
//! Pods not yet running, finished, or already being deleted go without asking a budget.
//! Otherwise the one budget selecting the pod (more than one is a 500) must have observed its
//! generation and allow a disruption (else 429 TooManyRequests with a DisruptionBudget cause);
//! its status is then written with one disruption fewer and the pod recorded in
//! `disruptedPods` (guarded by its resourceVersion, retried on conflict), and the pod is
//! marked DisruptionTarget and deleted with the Eviction's deleteOptions. A pod that is not
//! ready goes without spending a disruption when the budget's unhealthyPodEvictionPolicy is
//! AlwaysAllow, or (IfHealthyBudget, the default) when the budget is satisfied anyway.

use super::Ctx;
use super::delete::{DeleteOptions, delete_one, options_from};
use super::read::{fetch, select};
use super::write::{Ownership, update_with};
use crate::error::{ApiError, ApiResult};
use crate::http_util::{Body, Format, RequestBody, decode_object, read_body, respond};
use crate::objects;
use crate::request_info::{Query, ResourceRequest};
use crate::selectors::Selection;
use http::{HeaderMap, Request, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use registry::labels::Selector;
use registry::object_meta::{UpdateScope, now_rfc3339};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// How many times a write that lost a race is tried (kube's EvictionsRetry steps).
const ATTEMPTS: usize = 20;
/// More awaited evictions than this in one budget: its controller has fallen behind.
const MAX_DISRUPTED_PODS: usize = 2000;
const REFUSAL: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

pub async fn create(ctx: Ctx, req: Request<RequestBody>) -> ApiResult<Response<Body>> {
    let headers = req.headers().clone();
    let body = read_body(req.into_body()).await?;
    let eviction = decode_object(&ctx.api.registry, &headers, &body)?;
    let name = ctx.name().to_string();
    let options = delete_options(&ctx, &eviction, &name)?;
    let guarded = options.resource_version.is_some();

    // Pods not yet running, finished or already going: nothing a budget protects.
    let mut attempts = 0;
    let pod = loop {
        let pod = fetch(&ctx, &name).await?;
        if budget_applies(&pod) {
            break pod;
        }
        let mut options = options.clone();
        // A pending pod could start running meanwhile: delete it only as it was read.
        if !finished_or_going(&pod) && !guarded {
            options.resource_version = resource_version(&pod);
        }
        attempts += 1;
        match evict(&ctx, &name, options).await {
            Err(e) if e.code == 409 && !guarded && attempts < ATTEMPTS => continue,
            other => return other.map(|()| evicted()),
        }
    };

    let mut budgets = selecting(&ctx, &pod).await?;
    if budgets.len() > 1 {
        return Err(ApiError::new(
            500,
            "",
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        ));
    }
    let mut options = options;
    let mut unhealthy_exempt = None;
    if let Some(budget) = budgets.pop() {
        if !is_ready(&pod) && spares_unhealthy(&budget) {
            // Only as long as the pod is still unready: delete it as it was read.
            options.resource_version = resource_version(&pod);
            unhealthy_exempt = Some(objects::name_of(&budget).to_string());
        } else {
            spend_disruption(&ctx, budget, &name, options.dry_run).await?;
        }
    }
    match evict(&ctx, &name, options).await {
        Err(e) if e.code == 409 && !guarded && unhealthy_exempt.is_some() => {
            Err(still_processing(unhealthy_exempt.as_deref().unwrap_or_default()))
        }
        other => other.map(|()| evicted()),
    }
}

fn evicted() -> Response<Body> {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    respond(201, &status, Format::Json)
}

/// Checks the Eviction and returns its deleteOptions, with the request's dryRun.
fn delete_options(ctx: &Ctx, eviction: &Value, name: &str) -> ApiResult<DeleteOptions> {
    let api_version = eviction.get("apiVersion").and_then(Value::as_str).unwrap_or("policy/v1");
    let kind = eviction.get("kind").and_then(Value::as_str).unwrap_or("Eviction");
    if !matches!(api_version, "policy/v1" | "policy/v1beta1") || kind != "Eviction" {
        return Err(ApiError::bad_request(format!(
            "not a Eviction object: apiVersion {api_version:?}, kind {kind:?} (expected policy/v1 Eviction)"
        )));
    }
    if objects::name_of(eviction) != name {
        return Err(ApiError::bad_request("name in URL does not match name in Eviction object"));
    }
    if let Some(namespace) = eviction.pointer("/metadata/namespace").and_then(Value::as_str)
        && !namespace.is_empty()
        && Some(namespace) != ctx.namespace()
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    match eviction.get("deleteOptions") {
        None | Some(Value::Null) => options_from(ctx, &json!({})),
        Some(options @ Value::Object(_)) => options_from(ctx, options),
        Some(_) => Err(ApiError::bad_request("deleteOptions must be a DeleteOptions object")),
    }
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending")
}

fn finished_or_going(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed") || pod.pointer("/metadata/deletionTimestamp").is_some()
}

/// Whether evicting the pod is a disruption a budget has a say in: it runs and stays.
fn budget_applies(pod: &Value) -> bool {
    !finished_or_going(pod) && phase(pod) != "Pending"
}

fn is_ready(pod: &Value) -> bool {
    let conditions = pod.pointer("/status/conditions").and_then(Value::as_array);
    conditions.into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn resource_version(object: &Value) -> Option<String> {
    object.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(String::from)
}

/// Whether an unready pod of this budget may go without spending a disruption.
fn spares_unhealthy(budget: &Value) -> bool {
    if budget.pointer("/spec/unhealthyPodEvictionPolicy").and_then(Value::as_str) == Some("AlwaysAllow") {
        return true;
    }
    let int = |p: &str| budget.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let desired = int("/status/desiredHealthy");
    int("/status/currentHealthy") >= desired && desired > 0
}

/// A context for the pod's namespace's PodDisruptionBudgets, writing as kube-apiserver.
fn budgets_ctx(ctx: &Ctx, verb: &'static str, name: Option<String>) -> ApiResult<Ctx> {
    let request = ResourceRequest {
        verb,
        group: "policy".into(),
        version: "v1".into(),
        namespace: ctx.req.namespace.clone(),
        resource: "poddisruptionbudgets".into(),
        subresource: name.is_some().then(|| "status".to_string()),
        name,
    };
    let mut headers = HeaderMap::new();
    headers.insert(http::header::USER_AGENT, http::HeaderValue::from_static("kube-apiserver"));
    Ctx::new(ctx.api.clone(), request, Query::default(), headers, ctx.user.clone())
}

/// The budgets of the pod's namespace whose selector matches it; a budget with no selector,
/// an empty one or an invalid one protects nothing here.
async fn selecting(ctx: &Ctx, pod: &Value) -> ApiResult<Vec<Value>> {
    let list = budgets_ctx(ctx, "list", None)?;
    let everything = Selection::parse(list.info(), None, None)?;
    let labels: BTreeMap<String, String> =
        pod.pointer("/metadata/labels").and_then(|l| serde_json::from_value(l.clone()).ok()).unwrap_or_default();
    let selects = |budget: &Value| {
        let selector =
            budget.pointer("/spec/selector").and_then(|s| serde_json::from_value::<LabelSelector>(s.clone()).ok());
        let selector = selector.and_then(|s| Selector::from_label_selector(&s).ok());
        selector.is_some_and(|s| !s.is_empty() && s.matches(&labels))
    };
    Ok(select(&list, &everything, 0).await?.items.into_iter().filter(selects).collect())
}

/// Takes one of the budget's disruptions for `pod`, re-reading the budget when another
/// write got there first.
async fn spend_disruption(ctx: &Ctx, mut budget: Value, pod: &str, dry_run: bool) -> ApiResult<()> {
    let name = objects::name_of(&budget).to_string();
    let status_ctx = budgets_ctx(ctx, "update", Some(name.clone()))?;
    let writer = status_ctx.writer()?;
    for _ in 0..ATTEMPTS {
        let next = with_disruption(&budget, pod, &now_rfc3339())?;
        if dry_run {
            return Ok(());
        }
        let precondition = objects::precondition_of(&budget)?;
        match update_with(&status_ctx, &name, UpdateScope::Status, precondition, Ownership::Update(&writer), &|_| {
            Ok(next.clone())
        })
        .await
        {
            Err(e) if e.code == 409 => budget = fetch(&status_ctx, &name).await?,
            other => return other.map(|_| ()),
        }
    }
    let mut e =
        ApiError::new(504, "Timeout", format!("couldn't update PodDisruptionBudget \"{name}\" due to conflicts"));
    e.details = Some(json!({"retryAfterSeconds": 10}));
    Err(e)
}

/// A 429 for a budget whose controller has not caught up with it yet.
fn still_processing(budget: &str) -> ApiError {
    let mut e = ApiError::too_many_requests(REFUSAL, 10);
    e.details = Some(json!({"retryAfterSeconds": 10, "causes": [{"reason": "DisruptionBudget",
        "message": format!("The disruption budget {budget} is still being processed by the server.")}]}));
    e
}

/// The budget with one disruption fewer and `pod` recorded as disrupted at `now`, or why it
/// allows none.
fn with_disruption(budget: &Value, pod: &str, now: &str) -> ApiResult<Value> {
    let name = objects::name_of(budget);
    let int = |p: &str| budget.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    if int("/status/observedGeneration") < int("/metadata/generation") {
        return Err(still_processing(name));
    }
    let forbidden = |why: &str| {
        let mut e = ApiError::forbidden(format!("poddisruptionbudget.policy \"{name}\" is forbidden: {why}"));
        e.details = Some(json!({"name": name, "group": "policy", "kind": "poddisruptionbudget"}));
        e
    };
    let allowed = int("/status/disruptionsAllowed");
    if allowed < 0 {
        return Err(forbidden("pdb disruptions allowed is negative"));
    }
    let disrupted = budget.pointer("/status/disruptedPods").and_then(Value::as_object).map_or(0, |m| m.len());
    if disrupted > MAX_DISRUPTED_PODS {
        return Err(forbidden("DisruptedPods map too big - too many evictions not confirmed by PDB controller"));
    }
    if allowed == 0 {
        let mut e = ApiError::too_many_requests(REFUSAL, 0);
        let message = format!(
            "The disruption budget {name} needs {} healthy pods and has {} currently",
            int("/status/desiredHealthy"),
            int("/status/currentHealthy")
        );
        e.details = Some(json!({"causes": [{"reason": "DisruptionBudget", "message": message}]}));
        return Err(e);
    }
    let mut next = budget.clone();
    let status = &mut next["status"];
    status["disruptionsAllowed"] = json!(allowed - 1);
    if allowed == 1 {
        let generation = status["observedGeneration"].clone();
        set_condition(
            status,
            json!({"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods",
            "message": "", "observedGeneration": generation, "lastTransitionTime": now}),
        );
    }
    status["disruptedPods"][pod] = json!(now);
    Ok(next)
}

/// Sets a condition in a status, keeping its lastTransitionTime unless its status changes.
fn set_condition(status: &mut Value, mut condition: Value) {
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let Some(conditions) = status["conditions"].as_array_mut() else { return };
    match conditions.iter_mut().find(|c| c["type"] == condition["type"]) {
        Some(old) => {
            if old["status"] == condition["status"] {
                condition["lastTransitionTime"] = old["lastTransitionTime"].clone();
            }
            *old = condition;
        }
        None => conditions.push(condition),
    }
}

/// Marks the pod DisruptionTarget (unless this is a dry run) and deletes it with the
/// Eviction's options; a resourceVersion precondition moves on past the marking.
async fn evict(ctx: &Ctx, name: &str, mut options: DeleteOptions) -> ApiResult<()> {
    if !options.dry_run {
        let precondition = options.resource_version.as_ref().map(|rv| rv.parse::<i64>().unwrap_or(-1));
        let uid = options.uid.clone();
        let marked = update_with(ctx, name, UpdateScope::Status, precondition, Ownership::Applied, &|current| {
            let current_uid = current.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default();
            if let Some(uid) = uid.as_deref().filter(|u| *u != current_uid) {
                return Err(ApiError::conflict(
                    ctx.subject(name),
                    &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {current_uid}"),
                ));
            }
            let mut next = current.clone();
            set_condition(
                &mut next["status"],
                json!({"type": "DisruptionTarget", "status": "True",
                "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting",
                "lastProbeTime": null, "lastTransitionTime": now_rfc3339()}),
            );
            Ok(next)
        })
        .await?;
        if options.resource_version.is_some() {
            options.resource_version = resource_version(&marked);
        }
    }
    delete_one(ctx, name, &options).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(status: Value) -> Value {
        json!({"metadata": {"name": "web", "generation": 2}, "status": status})
    }

    #[test]
    fn a_disruption_is_spent_and_recorded() {
        let before =
            budget(json!({"observedGeneration": 2, "disruptionsAllowed": 2, "currentHealthy": 3, "desiredHealthy": 1}));
        let after = with_disruption(&before, "web-1", "2026-01-01T00:00:00Z").unwrap();
        assert_eq!(after["status"]["disruptionsAllowed"], 1);
        assert_eq!(after["status"]["disruptedPods"], json!({"web-1": "2026-01-01T00:00:00Z"}));
        assert!(after["status"].get("conditions").is_none());
        let last = with_disruption(&after, "web-2", "2026-01-01T00:00:01Z").unwrap();
        assert_eq!(last["status"]["disruptionsAllowed"], 0);
        assert_eq!(last["status"]["disruptedPods"].as_object().unwrap().len(), 2);
        let condition = &last["status"]["conditions"][0];
        assert_eq!((&condition["status"], &condition["reason"]), (&json!("False"), &json!("InsufficientPods")));
    }

    #[test]
    fn refusals() {
        let none_left =
            budget(json!({"observedGeneration": 2, "disruptionsAllowed": 0, "currentHealthy": 2, "desiredHealthy": 2}));
        let e = with_disruption(&none_left, "web-1", "now").unwrap_err();
        assert_eq!((e.code, e.reason, e.message.as_str()), (429, "TooManyRequests", REFUSAL));
        assert_eq!(
            e.details.unwrap()["causes"][0]["message"],
            "The disruption budget web needs 2 healthy pods and has 2 currently"
        );
        let unobserved = budget(json!({"observedGeneration": 1, "disruptionsAllowed": 3}));
        let e = with_disruption(&unobserved, "web-1", "now").unwrap_err();
        assert_eq!((e.code, e.retry_after()), (429, Some(10)));
        let negative = budget(json!({"observedGeneration": 2, "disruptionsAllowed": -1}));
        assert_eq!(with_disruption(&negative, "web-1", "now").unwrap_err().code, 403);
    }

    #[test]
    fn transition_time_moves_only_with_the_status() {
        let mut status =
            json!({"conditions": [{"type": "DisruptionTarget", "status": "True", "lastTransitionTime": "then"}]});
        set_condition(
            &mut status,
            json!({"type": "DisruptionTarget", "status": "True", "reason": "R", "lastTransitionTime": "now"}),
        );
        assert_eq!(status["conditions"][0]["lastTransitionTime"], "then");
        assert_eq!(status["conditions"][0]["reason"], "R");
        set_condition(&mut status, json!({"type": "DisruptionTarget", "status": "False", "lastTransitionTime": "now"}));
        assert_eq!(status["conditions"][0]["lastTransitionTime"], "now");
    }

    #[test]
    fn who_a_budget_protects() {
        let running = json!({"status": {"phase": "Running"}});
        assert!(budget_applies(&running));
        assert!(!budget_applies(&json!({"status": {"phase": "Pending"}})));
        assert!(!budget_applies(&json!({"status": {"phase": "Succeeded"}})));
        assert!(!budget_applies(&json!({"metadata": {"deletionTimestamp": "x"}, "status": {"phase": "Running"}})));
        let satisfied = json!({"status": {"currentHealthy": 2, "desiredHealthy": 2}});
        assert!(spares_unhealthy(&satisfied));
        let short = json!({"status": {"currentHealthy": 1, "desiredHealthy": 2}});
        assert!(!spares_unhealthy(&short));
        let always = json!({"spec": {"unhealthyPodEvictionPolicy": "AlwaysAllow"}, "status": {"currentHealthy": 1, "desiredHealthy": 2}});
        assert!(spares_unhealthy(&always));
    }
}
