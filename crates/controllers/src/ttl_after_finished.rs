//! TTL after finished: a Job with `ttlSecondsAfterFinished` is deleted (in the foreground:
//! its pods first) that many seconds after it completed or failed. Before deleting, the Job
//! is read again from the API, so that a TTL just changed or removed is honoured.

use crate::{Error, Informers, drive, triggers};
use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::controller::{Action, Controller};
use std::sync::Arc;
use std::time::Duration;

pub async fn run(client: kube::Client, informers: Arc<Informers>) {
    let controller = Controller::for_shared_stream(triggers(informers.jobs.subscribe()), informers.jobs.store());
    drive("ttl-after-finished-controller", controller, reconcile, Arc::new(client)).await;
}

/// When the Job finished: its completion time, or when it was marked Failed.
fn finished_at(job: &Job) -> Option<DateTime<Utc>> {
    let status = job.status.as_ref()?;
    if let Some(t) = &status.completion_time {
        return Some(crate::pods::timestamp(t));
    }
    let failed = status.conditions.iter().flatten().find(|c| c.type_ == "Failed" && c.status == "True")?;
    failed.last_transition_time.as_ref().map(crate::pods::timestamp)
}

/// How long until the Job expires; None if it does not.
fn left(job: &Job) -> Option<chrono::Duration> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    Some(finished_at(job)? + chrono::Duration::seconds(ttl as i64) - Utc::now())
}

async fn reconcile(job: Arc<Job>, client: Arc<kube::Client>) -> Result<Action, Error> {
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    match left(&job) {
        None => Ok(Action::await_change()),
        Some(left) if left > chrono::Duration::zero() => {
            Ok(Action::requeue(left.to_std().unwrap_or_default() + Duration::from_millis(100)))
        }
        Some(_) => {
            let api: Api<Job> = Api::namespaced((*client).clone(), &job.namespace().unwrap_or_default());
            let Some(fresh) = api.get_opt(&job.name_any()).await? else {
                return Ok(Action::await_change());
            };
            if left(&fresh).is_none_or(|l| l > chrono::Duration::zero()) {
                return Ok(Action::requeue(Duration::from_secs(1)));
            }
            // As Kubernetes deletes an expired Job: its pods go first, and only this Job
            // (not one made since under its name) is deleted.
            let params = DeleteParams {
                preconditions: Some(Preconditions { uid: fresh.metadata.uid.clone(), resource_version: None }),
                propagation_policy: Some(PropagationPolicy::Foreground),
                ..Default::default()
            };
            match api.delete(&fresh.name_any(), &params).await {
                Ok(_) => Ok(Action::await_change()),
                Err(kube::Error::Api(e)) if e.code == 404 => Ok(Action::await_change()),
                Err(e) => Err(e.into()),
            }
        }
    }
}
