//! Jobs: run pods until `completions` of them succeed (NonIndexed), or until each index
//! from 0 to completions-1 has a pod that succeeded (Indexed), at most `parallelism` at a
//! time; fail after more than `backoffLimit` failed pods or past `activeDeadlineSeconds`;
//! stop and resume with `suspend`. Replacements for failed pods wait 10 s, doubling with
//! each failure up to 6 minutes. Finished pods are counted through the
//! `batch.kubernetes.io/job-tracking` finalizer, as Kubernetes tracks them ([`tracking`]), so
//! that no pod is counted twice or lost across restarts. The SuccessCriteriaMet and
//! FailureTarget conditions come first; Complete and Failed once no pod is left running.

mod indexes;
mod tracking;

use crate::expectations::Expectations;
use crate::pods::{from_template, generate_name, is_active, is_ready, is_terminating, timestamp};
use crate::status::{self, condition, conditions_value, count, set_condition};
use crate::{Error, Informers, drive, owner, triggers};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::join_all;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::core::Selector;
use kube::runtime::controller::{Action, Controller};
use kube::ResourceExt;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const COMPONENT: &str = "job-controller";
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
const INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";
const BURST: usize = 500;
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(360);

pub struct Context {
    client: kube::Client,
    informers: Arc<Informers>,
    expectations: Arc<Expectations>,
    /// Pods (by uid) whose tracking finalizer is being removed; not to be recorded again
    /// while the watch still shows them with it.
    releasing: tracking::Releasing,
}

pub async fn run(client: kube::Client, informers: Arc<Informers>) {
    let ctx = Arc::new(Context {
        client,
        informers: informers.clone(),
        expectations: Arc::default(),
        releasing: tracking::Releasing::default(),
    });
    let observer = ctx.clone();
    let pods = ctx.expectations.observing(informers.pods.subscribe().inspect(move |change| {
        observer.releasing.observe(&change.object, change.deleted);
        tracking::release_if_orphaned(&observer.client, &observer.informers, &change.object, change.deleted);
    }));
    let jobs = ctx.expectations.clearing_deleted(informers.jobs.subscribe());
    let store = informers.jobs.store();
    let controller = Controller::for_stream(triggers(jobs), informers.jobs.store())
        .watches_stream(pods, move |pod: Pod| owner::owners_of(&pod, &store, selector));
    drive(COMPONENT, controller, reconcile, ctx).await;
}

fn selector(job: &Job) -> Option<Selector> {
    job.spec.as_ref()?.selector.clone()?.try_into().ok()
}

fn indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

fn index_of(pod: &Pod) -> Option<i32> {
    pod.annotations().get(INDEX_KEY).and_then(|i| i.parse().ok())
}

/// How a Job ended: `Complete` or `Failed`, once that condition is True.
pub fn ending(job: &Job) -> Option<&'static str> {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    ["Complete", "Failed"].into_iter().find(|t| conditions.iter().any(|c| c.type_ == *t && c.status == "True"))
}

/// How the Job ends, once decided.
struct Ending {
    failed: bool,
    reason: String,
    message: String,
}

impl Ending {
    fn new(failed: bool, reason: &str, message: &str) -> Ending {
        Ending { failed, reason: reason.into(), message: message.into() }
    }
}

async fn reconcile(job: Arc<Job>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.informers.pods.ready().await;
    let Some(selector) = selector(&job) else {
        return Ok(Action::await_change());
    };
    // Read before the pods: what was expected must already be in what is read.
    let settled = ctx.expectations.satisfied(job.metadata.uid.as_deref().unwrap_or_default());
    let claimed = owner::claim(&ctx.client, job.as_ref(), &selector, &ctx.informers.pods).await?;
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    // Finished pods are recorded, their finalizers removed, then counted.
    let counts = match tracking::account(&ctx.client, &api, &job, &claimed, &ctx.releasing).await? {
        Some(counts) => counts,
        // The status was written; its watch event brings the next pass.
        None => return Ok(Action::await_change()),
    };
    if ending(&job).is_some() {
        return Ok(Action::await_change());
    }
    let spec = job.spec.clone().unwrap_or_default();
    let active: Vec<Arc<Pod>> = claimed.iter().filter(|p| is_active(p)).cloned().collect();
    let terminating = claimed.iter().filter(|p| is_terminating(p)).count();
    let suspended = spec.suspend.unwrap_or(false);
    let now = Utc::now();
    let started = job.status.as_ref().and_then(|s| s.start_time.as_ref()).map(timestamp);
    let mut conditions = status::conditions(job.as_ref());

    let decided = ["FailureTarget", "SuccessCriteriaMet"].into_iter().find_map(|t| {
        let c = condition(&conditions, t).filter(|c| c["status"] == "True")?;
        Some(Ending::new(t == "FailureTarget", c["reason"].as_str().unwrap_or(""), c["message"].as_str().unwrap_or("")))
    });
    let ending = if decided.is_some() {
        decided
    } else if counts.failed > spec.backoff_limit.unwrap_or(6) as usize {
        Some(Ending::new(true, "BackoffLimitExceeded", "Job has reached the specified backoff limit"))
    } else if let (Some(deadline), Some(started)) = (spec.active_deadline_seconds, started)
        && !suspended
        && started + chrono::Duration::seconds(deadline) <= now
    {
        Some(Ending::new(true, "DeadlineExceeded", "Job was active longer than specified deadline"))
    } else if complete(&job, &counts, active.len()) {
        Some(Ending::new(false, "CompletionsReached", "Reached expected number of succeeded pods"))
    } else {
        None
    };

    let mut requeue = None;
    let mut desired = json!({});
    if let Some(ending) = &ending {
        // The interim condition first; the final one once no pod runs.
        let (interim, last) = if ending.failed { ("FailureTarget", "Failed") } else { ("SuccessCriteriaMet", "Complete") };
        set_condition(&mut conditions, interim, "True", &ending.reason, &ending.message, true);
        delete_pods(&ctx, &job, &active).await?;
        if active.is_empty() && terminating == 0 {
            set_condition(&mut conditions, last, "True", &ending.reason, &ending.message, true);
            if !ending.failed {
                desired["completionTime"] = json!(status::now());
            }
            let event = if ending.failed { ("Warning", ending.reason.as_str()) } else { ("Normal", "Completed") };
            events::record(&ctx.client, COMPONENT, job.as_ref(), event.0, event.1, &ending.message).await;
        }
    } else if suspended {
        delete_pods(&ctx, &job, &active).await?;
        if condition(&conditions, "Suspended").is_none_or(|c| c["status"] != "True") {
            set_condition(&mut conditions, "Suspended", "True", "JobSuspended", "Job suspended", true);
            events::record(&ctx.client, COMPONENT, job.as_ref(), "Normal", "Suspended", "Job suspended").await;
        }
        desired["startTime"] = serde_json::Value::Null;
    } else {
        if condition(&conditions, "Suspended").is_some_and(|c| c["status"] == "True") {
            set_condition(&mut conditions, "Suspended", "False", "JobResumed", "Job resumed", true);
            events::record(&ctx.client, COMPONENT, job.as_ref(), "Normal", "Resumed", "Job resumed").await;
        }
        if started.is_none() {
            desired["startTime"] = json!(status::now());
        }
        if let Some(deadline) = spec.active_deadline_seconds {
            let started = started.unwrap_or(now);
            let left = started + chrono::Duration::seconds(deadline) - now;
            requeue = Some(left.to_std().unwrap_or_default() + Duration::from_millis(200));
        }
        if settled && job.metadata.deletion_timestamp.is_none() {
            let wait = manage(&ctx, &job, &active, &claimed, &counts).await?;
            requeue = [requeue, wait].into_iter().flatten().min();
        }
    }

    desired["active"] = count(active.len());
    desired["ready"] = json!(active.iter().filter(|p| is_ready(p)).count());
    desired["terminating"] = json!(terminating);
    desired["conditions"] = conditions_value(conditions);
    status::write(&api, job.as_ref(), desired).await?;
    Ok(requeue.map_or(Action::await_change(), Action::requeue))
}

fn completions(job: &Job) -> Option<i32> {
    job.spec.as_ref().and_then(|s| s.completions)
}

fn complete(job: &Job, counts: &tracking::Counts, active: usize) -> bool {
    match completions(job) {
        Some(n) if indexed(job) => counts.completed_indexes.len() >= n as usize,
        Some(n) => counts.succeeded >= n as usize,
        // A work queue: done when one pod succeeded and none is left running.
        None => counts.succeeded > 0 && active == 0,
    }
}

/// Creates the pods missing towards parallelism (or deletes extra ones); returns when to
/// look again if failures make new pods wait.
async fn manage(
    ctx: &Context,
    job: &Arc<Job>,
    active: &[Arc<Pod>],
    claimed: &[Arc<Pod>],
    counts: &tracking::Counts,
) -> Result<Option<Duration>, Error> {
    let spec = job.spec.clone().unwrap_or_default();
    let parallelism = spec.parallelism.unwrap_or(1).max(0) as usize;
    let want = match completions(job) {
        // A work queue: once one pod succeeded, no new ones; those running finish.
        None if counts.succeeded > 0 => active.len(),
        None => parallelism,
        Some(n) if indexed(job) => (n as usize).saturating_sub(counts.completed_indexes.len()).min(parallelism),
        Some(n) => (n as usize).saturating_sub(counts.succeeded).min(parallelism),
    };
    if active.len() > want {
        // The newest go first.
        let mut extra = active.to_vec();
        extra.sort_by(|a, b| b.metadata.creation_timestamp.cmp(&a.metadata.creation_timestamp));
        extra.truncate(active.len() - want);
        delete_pods(ctx, job, &extra).await?;
        return Ok(None);
    }
    let missing = (want - active.len()).min(BURST);
    if missing == 0 {
        return Ok(None);
    }
    if counts.failed > 0
        && let Some(last) = last_failure(claimed)
    {
        let delay = BACKOFF_BASE.saturating_mul(1 << (counts.failed - 1).min(10)).min(BACKOFF_MAX);
        let ready_at = last + chrono::Duration::from_std(delay).unwrap_or_default();
        let now = Utc::now();
        if ready_at > now {
            return Ok(Some((ready_at - now).to_std().unwrap_or_default()));
        }
    }
    let indexes: Vec<Option<i32>> = if indexed(job) {
        let taken: BTreeSet<i32> = active.iter().filter_map(|p| index_of(p)).collect();
        let total = completions(job).unwrap_or(0);
        (0..total).filter(|i| !counts.completed_indexes.contains(i) && !taken.contains(i)).take(missing).map(Some).collect()
    } else {
        vec![None; missing]
    };
    let template = spec.template.clone();
    let namespace = job.namespace().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let mut batch = 1;
    let mut remaining = indexes.as_slice();
    while !remaining.is_empty() {
        let (now, later) = remaining.split_at(batch.min(remaining.len()));
        let creations = now.iter().map(|index| {
            let pod = pod_for(job, &template, *index, &namespace);
            let name = pod.metadata.name.clone().unwrap_or_default();
            ctx.expectations.expect_creation(&uid, &name);
            let (pods, uid) = (pods.clone(), uid.clone());
            async move {
                match pods.create(&PostParams::default(), &pod).await {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        ctx.expectations.forget(&uid, &name);
                        Err(e)
                    }
                }
            }
        });
        if let Some(e) = join_all(creations).await.into_iter().find_map(Result::err) {
            let message = format!("Error creating: {e}");
            events::record(&ctx.client, COMPONENT, job.as_ref(), "Warning", "FailedCreate", &message).await;
            return Err(e.into());
        }
        remaining = later;
        batch *= 2;
    }
    Ok(None)
}

/// A pod of the Job: the template, the tracking finalizer, and for an Indexed Job its index
/// (annotation, label, JOB_COMPLETION_INDEX and a `<job>-<index>` hostname).
fn pod_for(job: &Job, template: &k8s_openapi::api::core::v1::PodTemplateSpec, index: Option<i32>, namespace: &str) -> Pod {
    let base = match index {
        Some(i) => format!("{}-{i}-", job.name_any()),
        None => format!("{}-", job.name_any()),
    };
    let mut pod = from_template(template, owner::reference(job), generate_name(&base), namespace);
    pod.metadata.finalizers.get_or_insert_default().push(TRACKING_FINALIZER.into());
    if let Some(i) = index {
        pod.metadata.annotations.get_or_insert_default().insert(INDEX_KEY.into(), i.to_string());
        pod.metadata.labels.get_or_insert_default().insert(INDEX_KEY.into(), i.to_string());
        if let Some(spec) = pod.spec.as_mut() {
            spec.hostname.get_or_insert_with(|| format!("{}-{i}", job.name_any()));
            for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
                let env = serde_json::from_value(json!({"name": "JOB_COMPLETION_INDEX",
                    "valueFrom": {"fieldRef": {"fieldPath": format!("metadata.annotations['{INDEX_KEY}']")}}}));
                if let Ok(env) = env {
                    c.env.get_or_insert_default().push(env);
                }
            }
        }
    }
    pod
}

/// When the most recent failed pod finished.
fn last_failure(pods: &[Arc<Pod>]) -> Option<DateTime<Utc>> {
    pods.iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"))
        .filter_map(|p| {
            let statuses = p.status.as_ref()?.container_statuses.as_ref()?;
            statuses.iter().filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref()).map(timestamp).max()
        })
        .max()
}

async fn delete_pods(ctx: &Context, job: &Job, pods: &[Arc<Pod>]) -> Result<(), Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let deletions = pods.iter().map(|pod| {
        let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
        ctx.expectations.expect_deletion(&uid, &pod_uid);
        let params = DeleteParams {
            preconditions: Some(Preconditions { uid: Some(pod_uid.clone()), resource_version: None }),
            ..Default::default()
        };
        let (api, uid) = (api.clone(), uid.clone());
        async move {
            match api.delete(&pod.name_any(), &params).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {
                    ctx.expectations.forget(&uid, &pod_uid);
                    Ok(())
                }
                Err(e) => {
                    ctx.expectations.forget(&uid, &pod_uid);
                    Err(e)
                }
            }
        }
    });
    match join_all(deletions).await.into_iter().find_map(Result::err) {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
