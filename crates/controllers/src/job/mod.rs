//! Jobs: run pods until `completions` of them succeed (NonIndexed), or until each index
//! from 0 to completions-1 has a pod that succeeded (Indexed), at most `parallelism` at a
//! time; fail after more than `backoffLimit` failed pods or past `activeDeadlineSeconds`;
//! stop and resume with `suspend`. Replacements for failed pods wait 10 s, doubling with
//! each failure up to 6 minutes; with the `Failed` podReplacementPolicy, pods being deleted
//! are replaced only once they have failed. Finished pods are counted through the
//! `batch.kubernetes.io/job-tracking` finalizer, as Kubernetes tracks them ([`tracking`]), so
//! that no pod is counted twice or lost across restarts. A [`failure_policy`] can fail the
//! Job, or ignore failures; Indexed Jobs can limit failures [`per_index`] and succeed early
//! by a [`success_policy`]. The SuccessCriteriaMet and FailureTarget conditions come first;
//! Complete and Failed once no pod is left running.

mod failure_policy;
mod indexes;
mod per_index;
mod success_policy;
mod tracking;

use crate::expectations::Expectations;
use crate::pods::{generated_from_template, is_active, is_ready, is_terminating, timestamp};
use crate::status::{self, condition, conditions_value, count, set_condition};
use crate::{Error, Informers, drive, owner, triggers};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::join_all;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::core::Selector;
use kube::runtime::controller::{Action, Controller};
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
    let controller = Controller::for_shared_stream(triggers(jobs), informers.jobs.store())
        .watches_shared_stream(pods, move |pod: Arc<Pod>| owner::owners_of(&*pod, &store, selector));
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

/// Whether the Job is deleted, or its end is decided.
fn finishing(job: &Job) -> bool {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    let decided = ["FailureTarget", "SuccessCriteriaMet", "Complete", "Failed"];
    job.metadata.deletion_timestamp.is_some()
        || conditions.iter().any(|c| c.status == "True" && decided.contains(&c.type_.as_str()))
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
    let ending = decided.or_else(|| decide(&job, &claimed, &counts, active.len(), suspended, started, now));
    let mut requeue = None;
    let mut desired = json!({});
    if let Some(ending) = &ending {
        // The interim condition first; the final one once no pod runs.
        let (interim, last) =
            if ending.failed { ("FailureTarget", "Failed") } else { ("SuccessCriteriaMet", "Complete") };
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
        // The pods of indexes that failed for good go.
        let (doomed, active): (Vec<Arc<Pod>>, Vec<Arc<Pod>>) =
            active.iter().cloned().partition(|p| index_of(p).is_some_and(|i| counts.failed_indexes.contains(&i)));
        delete_pods(&ctx, &job, &doomed).await?;
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
            let wait = manage(&ctx, &job, &active, terminating, &claimed, &counts).await?;
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

/// How the Job ends, if it is to end now, in the order Kubernetes decides it.
fn decide(
    job: &Job,
    claimed: &[Arc<Pod>],
    counts: &tracking::Counts,
    active: usize,
    suspended: bool,
    started: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<Ending> {
    let spec = job.spec.clone().unwrap_or_default();
    let fail_job =
        claimed.iter().filter(|p| tracking::failed(job, p)).find_map(|p| match failure_policy::judge(job, p) {
            failure_policy::Verdict::FailJob(message) => Some(message),
            _ => None,
        });
    let failed_indexes = counts.failed_indexes.len();
    if let Some(message) = fail_job {
        Some(Ending::new(true, "PodFailurePolicy", &message))
    } else if counts.failed > spec.backoff_limit.unwrap_or(6) as usize {
        Some(Ending::new(true, "BackoffLimitExceeded", "Job has reached the specified backoff limit"))
    } else if let (Some(deadline), Some(started)) = (spec.active_deadline_seconds, started)
        && !suspended
        && started + chrono::Duration::seconds(deadline) <= now
    {
        Some(Ending::new(true, "DeadlineExceeded", "Job was active longer than specified deadline"))
    } else if spec.max_failed_indexes.is_some_and(|max| failed_indexes > max as usize) {
        let message = "Job has exceeded the specified maximal number of failed indexes";
        Some(Ending::new(true, "MaxFailedIndexesExceeded", message))
    } else if let Some(message) = success_policy::met(job, &counts.completed_indexes) {
        Some(Ending::new(false, "SuccessPolicy", &message))
    } else if failed_indexes > 0
        && counts.completed_indexes.len() + failed_indexes >= completions(job).unwrap_or(0) as usize
    {
        Some(Ending::new(true, "FailedIndexes", "Job has failed indexes"))
    } else if complete(job, counts, active) {
        Some(Ending::new(false, "CompletionsReached", "Reached expected number of succeeded pods"))
    } else {
        None
    }
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

/// How long a replacement waits after `failures` failures: 10 s, doubling up to 6 minutes.
fn backoff(failures: usize) -> Duration {
    BACKOFF_BASE.saturating_mul(1 << failures.saturating_sub(1).min(10)).min(BACKOFF_MAX)
}

/// Creates the pods missing towards parallelism (or deletes extra ones); returns when to
/// look again if failures make new pods wait.
async fn manage(
    ctx: &Context,
    job: &Arc<Job>,
    active: &[Arc<Pod>],
    terminating: usize,
    claimed: &[Arc<Pod>],
    counts: &tracking::Counts,
) -> Result<Option<Duration>, Error> {
    let spec = job.spec.clone().unwrap_or_default();
    let parallelism = spec.parallelism.unwrap_or(1).max(0) as usize;
    let done_indexes = counts.completed_indexes.len() + counts.failed_indexes.len();
    let want = match completions(job) {
        // A work queue: once one pod succeeded, no new ones; those running finish.
        None if counts.succeeded > 0 => active.len(),
        None => parallelism,
        Some(n) if indexed(job) => (n as usize).saturating_sub(done_indexes).min(parallelism),
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
    // Pods being deleted hold their place until they have failed, if only failed pods are replaced.
    let replace_failed_only = tracking::only_replace_failed(job);
    let held = if replace_failed_only { terminating } else { 0 };
    let missing = want.saturating_sub(active.len() + held).min(BURST);
    if missing == 0 {
        return Ok(None);
    }
    let now = Utc::now();
    if counts.failed > 0
        && !per_index::limited(job)
        && let Some(last) = last_failure(claimed)
    {
        let ready_at = last + chrono::Duration::from_std(backoff(counts.failed)).unwrap_or_default();
        if ready_at > now {
            return Ok(Some((ready_at - now).to_std().unwrap_or_default()));
        }
    }
    let last_failed = per_index::last_failed(job, claimed);
    let mut wait = None;
    let indexes: Vec<Option<i32>> = if indexed(job) {
        let holding = claimed.iter().filter(|p| is_active(p) || (replace_failed_only && is_terminating(p)));
        let taken: BTreeSet<i32> = holding.filter_map(|p| index_of(p)).collect();
        let total = completions(job).unwrap_or(0);
        let pending = (0..total).filter(|i| {
            !counts.completed_indexes.contains(i) && !counts.failed_indexes.contains(i) && !taken.contains(i)
        });
        // With backoffLimitPerIndex, each index waits out its own backoff.
        let ready = pending.filter(|i| match last_failed.get(i).filter(|_| per_index::limited(job)) {
            Some(last) => {
                let left = per_index::backoff_left(last, now);
                if !left.is_zero() {
                    wait = [wait, Some(left)].into_iter().flatten().min();
                }
                left.is_zero()
            }
            None => true,
        });
        ready.take(missing).map(Some).collect()
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
            let replaced = index.and_then(|i| last_failed.get(&i).copied());
            let pod = pod_for(job, &template, *index, replaced, &namespace);
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
    Ok(wait)
}

/// A pod of the Job: the template, the tracking finalizer, and for an Indexed Job its index
/// (annotation, label, JOB_COMPLETION_INDEX and a `<job>-<index>` hostname) and, with
/// backoffLimitPerIndex, the failures of the index so far (carried on from `replaced`).
fn pod_for(
    job: &Job,
    template: &k8s_openapi::api::core::v1::PodTemplateSpec,
    index: Option<i32>,
    replaced: Option<&Arc<Pod>>,
    namespace: &str,
) -> Pod {
    let base = match index {
        Some(i) => format!("{}-{i}-", job.name_any()),
        None => format!("{}-", job.name_any()),
    };
    let mut pod = generated_from_template(template, owner::reference(job), &base, namespace);
    pod.metadata.finalizers.get_or_insert_default().push(TRACKING_FINALIZER.into());
    if let Some(i) = index {
        let annotations = pod.metadata.annotations.get_or_insert_default();
        annotations.insert(INDEX_KEY.into(), i.to_string());
        if per_index::limited(job) {
            for (key, count) in per_index::replacement_annotations(job, replaced) {
                if count > 0 || key == per_index::FAILURE_COUNT {
                    annotations.insert(key.into(), count.to_string());
                }
            }
        }
        pod.metadata.labels.get_or_insert_default().insert(INDEX_KEY.into(), i.to_string());
        if let Some(spec) = pod.spec.as_mut() {
            spec.hostname.get_or_insert_with(|| format!("{}-{i}", job.name_any()));
            for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
                let env = serde_json::from_value(json!({"name": "JOB_COMPLETION_INDEX",
                    "valueFrom": {"fieldRef": {"fieldPath": format!("metadata.labels['{INDEX_KEY}']")}}}));
                if let Ok(env) = env {
                    c.env.get_or_insert_default().push(env);
                }
            }
        }
    }
    pod
}

/// When the pod's containers finished (the last of them).
fn finished_at(pod: &Pod) -> Option<DateTime<Utc>> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref()).map(timestamp).max()
}

/// When the most recent failed pod finished.
fn last_failure(pods: &[Arc<Pod>]) -> Option<DateTime<Utc>> {
    pods.iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"))
        .filter_map(|p| finished_at(p))
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
