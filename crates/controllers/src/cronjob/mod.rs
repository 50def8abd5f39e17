//! CronJobs: at each time of `spec.schedule` (read in `spec.timeZone`, else in the server's
//! local time zone, as kube-controller-manager reads it) a Job is made from the job template,
//! unless the CronJob is suspended, the time is older than `startingDeadlineSeconds`, or a
//! Job of the CronJob is still running and the concurrency policy is Forbid (Replace deletes
//! the running ones first; Allow lets them overlap). The status lists the running Jobs and
//! the last schedule and success times; finished Jobs beyond the history limits are deleted.
//! The controller sleeps until the next scheduled time rather than polling, and names each
//! Job after its scheduled time, so that nothing runs twice however often it reconciles or
//! restarts. Its events carry Kubernetes' reasons and words (SuccessfulCreate,
//! SawCompletedJob, SuccessfulDelete, MissSchedule, JobAlreadyActive, ...).

mod history;
mod job_from_template;
mod schedule;

use crate::expectations::Expectations;
use crate::job::ending;
use crate::pods::timestamp;
use crate::{Error, Informers, drive, owner, status, triggers};
use chrono::{DateTime, SecondsFormat, Utc};
use job_from_template::{job_for, job_name};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams, Preconditions, PropagationPolicy};
use kube::runtime::controller::{Action, Controller};
use schedule::Missed;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const COMPONENT: &str = "cronjob-controller";

pub struct Context {
    client: kube::Client,
    informers: Arc<Informers>,
    /// Deletions of finished Jobs not yet seen, so that a stale cache does not delete again.
    expectations: Arc<Expectations>,
}

pub async fn run(client: kube::Client, informers: Arc<Informers>) {
    let ctx = Arc::new(Context { client, informers: informers.clone(), expectations: Arc::default() });
    let jobs = ctx.expectations.observing(informers.jobs.subscribe());
    let cronjobs = ctx.expectations.clearing_deleted(informers.cronjobs.subscribe());
    let store = informers.cronjobs.store();
    let controller = Controller::for_shared_stream(triggers(cronjobs), informers.cronjobs.store())
        .watches_shared_stream(jobs, move |job: Arc<Job>| owner::owners_of(&*job, &store, |_: &CronJob| None));
    drive(COMPONENT, controller, reconcile, ctx).await;
}

/// The status being worked out in one pass.
struct State {
    active: Vec<ObjectReference>,
    last_schedule: Option<DateTime<Utc>>,
    last_successful: Option<DateTime<Utc>>,
}

impl State {
    fn of(cj: &CronJob) -> State {
        let status = cj.status.clone().unwrap_or_default();
        State {
            active: status.active.unwrap_or_default(),
            last_schedule: status.last_schedule_time.as_ref().map(timestamp),
            last_successful: status.last_successful_time.as_ref().map(timestamp),
        }
    }

    fn lists(&self, uid: &str) -> bool {
        self.active.iter().any(|r| r.uid.as_deref() == Some(uid))
    }

    fn remove(&mut self, uid: &str) {
        self.active.retain(|r| r.uid.as_deref() != Some(uid));
    }

    fn desired(&self) -> serde_json::Value {
        let time = |t: Option<DateTime<Utc>>| json!(t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)));
        json!({
            "active": if self.active.is_empty() { serde_json::Value::Null } else { json!(self.active) },
            "lastScheduleTime": time(self.last_schedule),
            "lastSuccessfulTime": time(self.last_successful),
        })
    }
}

fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..Default::default()
    }
}

async fn event(ctx: &Context, cj: &CronJob, type_: &str, reason: &str, message: &str) {
    events::record(&ctx.client, COMPONENT, cj, type_, reason, message).await;
}

/// The message of an API error, as Kubernetes quotes it in events.
fn message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status.message.clone(),
        e => e.to_string(),
    }
}

async fn reconcile(cj: Arc<CronJob>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.informers.jobs.ready().await;
    let mut state = State::of(&cj);
    let outcome = sync(&ctx, &cj, &mut state).await;
    let api: Api<CronJob> = Api::namespaced(ctx.client.clone(), &cj.namespace().unwrap_or_default());
    status::write(&api, cj.as_ref(), state.desired()).await?;
    outcome
}

/// One pass: history, the running Jobs, then the schedule. What it decides about the
/// status is left in `state`, written whatever the outcome.
async fn sync(ctx: &Context, cj: &CronJob, state: &mut State) -> Result<Action, Error> {
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &cj.namespace().unwrap_or_default());
    let jobs = ctx.informers.jobs.owned_by(&uid);

    if ctx.expectations.satisfied(&uid) {
        let spec = &cj.spec;
        for job in history::expired(&jobs, spec.successful_jobs_history_limit, spec.failed_jobs_history_limit) {
            delete_job(ctx, cj, &jobs_api, &job, state).await;
        }
    }
    if let Some(wait) = track(ctx, cj, &jobs_api, &jobs, state).await? {
        return Ok(Action::requeue(wait));
    }
    if cj.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }

    let spec = &cj.spec;
    let zone = match spec.time_zone.as_deref().map(cron::load_location).transpose() {
        Ok(zone) => zone.unwrap_or_else(cron::local_zone),
        Err(e) => {
            let zone = spec.time_zone.as_deref().unwrap_or_default();
            event(ctx, cj, "Warning", "UnknownTimeZone", &format!("invalid timeZone: {zone:?}: {e}")).await;
            return Ok(Action::await_change());
        }
    };
    if spec.suspend == Some(true) {
        return Ok(Action::await_change());
    }
    if spec.schedule.contains("TZ") {
        let message = format!(
            "CRON_TZ or TZ used in schedule {:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
            spec.schedule
        );
        event(ctx, cj, "Warning", "UnsupportedSchedule", &message).await;
    }
    let schedule = match cron::parse(&spec.schedule) {
        Ok(schedule) => schedule.in_zone(zone),
        Err(e) => {
            let message = format!("unparseable schedule: {:?} : {e}", spec.schedule);
            event(ctx, cj, "Warning", "UnparseableSchedule", &message).await;
            return Ok(Action::await_change());
        }
    };

    let now = Utc::now();
    let created = cj.metadata.creation_timestamp.as_ref().map(timestamp).unwrap_or(now);
    let since = state.last_schedule.unwrap_or(created);
    let scheduled = match schedule::due(&schedule, since, spec.starting_deadline_seconds, now) {
        Err(e) => {
            let message = format!("invalid schedule: {} : {e}", spec.schedule);
            event(ctx, cj, "Warning", "InvalidSchedule", &message).await;
            return Ok(Action::await_change());
        }
        Ok((scheduled, missed)) => {
            if missed == Missed::Many {
                let message =
                    "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew";
                event(ctx, cj, "Warning", "TooManyMissedTimes", message).await;
            }
            scheduled
        }
    };
    if let Some(scheduled) = scheduled {
        start(ctx, cj, &jobs_api, state, scheduled, zone, now).await?;
    }
    let since = state.last_schedule.unwrap_or(created);
    Ok(schedule::wait(&schedule, since, now).map_or(Action::await_change(), Action::requeue))
}

/// Brings `status.active` in line with the Jobs: finished ones leave it (SawCompletedJob),
/// vanished ones too (MissingJob), and the latest completion is the last successful time.
/// Returns a wait when this view of the CronJob is older than the API's (its Jobs show
/// what its status does not yet): the newer version's watch event is due.
async fn track(
    ctx: &Context,
    cj: &CronJob,
    api: &Api<Job>,
    jobs: &[Arc<Job>],
    state: &mut State,
) -> Result<Option<Duration>, Error> {
    let mut unexpected = Vec::new();
    for job in jobs {
        let uid = job.metadata.uid.as_deref().unwrap_or_default();
        let listed = state.lists(uid);
        match ending(job) {
            None if !listed => unexpected.push(job.name_any()),
            Some(ended) if listed => {
                state.remove(uid);
                let message = format!("Saw completed job: {}, status: {ended}", job.name_any());
                event(ctx, cj, "Normal", "SawCompletedJob", &message).await;
            }
            _ => {}
        }
        if ending(job) == Some("Complete")
            && let Some(completed) = job.status.as_ref().and_then(|s| s.completion_time.as_ref()).map(timestamp)
        {
            state.last_successful = state.last_successful.max(Some(completed));
        }
    }
    if !unexpected.is_empty() {
        let cronjobs: Api<CronJob> = Api::namespaced(ctx.client.clone(), &cj.namespace().unwrap_or_default());
        let fresh = cronjobs.get(&cj.name_any()).await?;
        if fresh.metadata.resource_version != cj.metadata.resource_version {
            return Ok(Some(Duration::from_millis(500)));
        }
        for name in unexpected {
            let message = format!("Saw a job that the controller did not create or forgot: {name}");
            event(ctx, cj, "Warning", "UnexpectedJob", &message).await;
        }
    }
    let seen: Vec<&str> = jobs.iter().filter_map(|j| j.metadata.uid.as_deref()).collect();
    for gone in state.active.clone().iter().filter(|r| !r.uid.as_deref().is_some_and(|u| seen.contains(&u))) {
        let name = gone.name.clone().unwrap_or_default();
        // Read from the API: the Jobs informer may not have seen a new Job yet.
        let missing = match api.get_opt(&name).await? {
            None => true,
            Some(job) => job.metadata.uid != gone.uid,
        };
        if missing {
            state.remove(gone.uid.as_deref().unwrap_or_default());
            event(ctx, cj, "Normal", "MissingJob", &format!("Active job went missing: {name}")).await;
        }
    }
    Ok(None)
}

/// Starts the Job for `scheduled`, as the concurrency policy allows.
async fn start(
    ctx: &Context,
    cj: &CronJob,
    api: &Api<Job>,
    state: &mut State,
    scheduled: DateTime<Utc>,
    zone: cron::Tz,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    if let Some(deadline) = cj.spec.starting_deadline_seconds
        && scheduled + chrono::Duration::seconds(deadline) < now
    {
        let when = scheduled.format("%a, %d %b %Y %H:%M:%S %z");
        event(ctx, cj, "Warning", "MissSchedule", &format!("Missed scheduled time to start a job: {when}")).await;
        return Ok(());
    }
    let name = job_name(&cj.name_any(), scheduled);
    if state.active.iter().any(|r| r.name.as_deref() == Some(name.as_str())) || state.last_schedule == Some(scheduled) {
        return Ok(());
    }
    match cj.spec.concurrency_policy.as_deref() {
        Some("Forbid") if !state.active.is_empty() => {
            let message = "Not starting job because prior execution is running and concurrency policy is Forbid";
            event(ctx, cj, "Normal", "JobAlreadyActive", message).await;
            return Ok(());
        }
        Some("Replace") => {
            for running in state.active.clone() {
                let running_name = running.name.clone().unwrap_or_default();
                let job = match api.get(&running_name).await {
                    Ok(job) => job,
                    Err(e) => {
                        event(ctx, cj, "Warning", "FailedGet", &format!("Get job: {}", message(&e))).await;
                        return Err(e.into());
                    }
                };
                if !delete_job(ctx, cj, api, &job, state).await {
                    return Err(anyhow::anyhow!(
                        "could not replace job {}/{running_name}",
                        cj.namespace().unwrap_or_default()
                    )
                    .into());
                }
            }
        }
        _ => {}
    }
    let job = match api.create(&PostParams::default(), &job_for(cj, scheduled, zone)).await {
        Ok(job) => {
            event(ctx, cj, "Normal", "SuccessfulCreate", &format!("Created job {}", job.name_any())).await;
            job
        }
        Err(kube::Error::Api(e)) if e.is_already_exists() => {
            // Made before a status write that was lost, or by someone else: adopted into the
            // status only if it is this CronJob's.
            let job = api.get(&name).await?;
            let uid = cj.metadata.uid.as_deref().unwrap_or_default();
            if !owner::controlled_by(&job, uid) || state.lists(job.metadata.uid.as_deref().unwrap_or_default()) {
                return Ok(());
            }
            job
        }
        Err(e) => {
            event(ctx, cj, "Warning", "FailedCreate", &format!("Error creating job: {}", message(&e))).await;
            return Err(e.into());
        }
    };
    state.active.push(reference(&job));
    state.last_schedule = Some(scheduled);
    Ok(())
}

/// Deletes a Job of the CronJob (its pods in the background) and takes it off the active
/// list; false if it could not be deleted.
async fn delete_job(ctx: &Context, cj: &CronJob, api: &Api<Job>, job: &Job, state: &mut State) -> bool {
    let owner = cj.metadata.uid.as_deref().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let params = DeleteParams {
        preconditions: Some(Preconditions { uid: Some(uid.clone()), resource_version: None }),
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    ctx.expectations.expect_deletion(owner, &uid);
    match api.delete(&job.name_any(), &params).await {
        Ok(_) => event(ctx, cj, "Normal", "SuccessfulDelete", &format!("Deleted job {}", job.name_any())).await,
        // Already gone.
        Err(kube::Error::Api(e)) if e.is_not_found() => ctx.expectations.forget(owner, &uid),
        Err(e) => {
            ctx.expectations.forget(owner, &uid);
            event(ctx, cj, "Warning", "FailedDelete", &format!("Deleted job: {}", message(&e))).await;
            return false;
        }
    }
    state.remove(&uid);
    true
}
