//! Counting a Job's finished pods exactly once, with the `batch.kubernetes.io/job-tracking`
//! finalizer every Job pod is created with, as Kubernetes does: a pod that finished (or is
//! being deleted before finishing, which counts as a failure) is first recorded by uid in
//! `status.uncountedTerminatedPods`, then loses the finalizer, and then moves into the
//! `succeeded` or `failed` count. A controller that stops between any two steps resumes from
//! what the status says. A failure that the podFailurePolicy ignores is released without
//! being counted; one that fails its index (backoffLimitPerIndex) also lists the index in
//! `status.failedIndexes`.

use super::failure_policy::judge;
use super::{TRACKING_FINALIZER, indexed, indexes, per_index};
use crate::{Error, Informers};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

/// The pods whose finalizer this controller is removing, until the watch shows it gone: a
/// pod seen again with the finalizer meanwhile must not be recorded (and counted) twice.
#[derive(Default)]
pub struct Releasing(Mutex<HashSet<String>>);

impl Releasing {
    fn start(&self, uid: &str) {
        self.0.lock().unwrap().insert(uid.to_string());
    }

    fn contains(&self, uid: &str) -> bool {
        self.0.lock().unwrap().contains(uid)
    }

    /// A pod change seen on the watch.
    pub fn observe(&self, pod: &Pod, deleted: bool) {
        if deleted || !tracked(pod) {
            self.0.lock().unwrap().remove(pod.metadata.uid.as_deref().unwrap_or_default());
        }
    }
}

/// A pod still holding the tracking finalizer with no Job left to count it (the Job was
/// deleted, or released the pod) gets the finalizer removed, so that it can go.
pub fn release_if_orphaned(client: &kube::Client, informers: &Informers, pod: &Pod, deleted: bool) {
    if deleted || !tracked(pod) || !informers.jobs.is_ready() {
        return;
    }
    let job = pod.metadata.owner_references.iter().flatten().find(|r| r.controller == Some(true) && r.kind == "Job");
    let alive = job.is_some_and(|r| {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        informers.jobs.get(namespace, &r.name).is_some_and(|j| j.metadata.uid.as_deref() == Some(r.uid.as_str()))
    });
    if alive {
        return;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), pod.metadata.namespace.as_deref().unwrap_or_default());
    let pod = pod.clone();
    tokio::spawn(async move {
        if let Err(e) = remove_finalizer(&pods, &pod).await {
            tracing::debug!(pod = pod.name_any(), error = %e, "could not release an orphaned job pod");
        }
    });
}

async fn remove_finalizer(pods: &Api<Pod>, pod: &Pod) -> kube::Result<()> {
    let rest: Vec<&String> = pod.finalizers().iter().filter(|f| *f != TRACKING_FINALIZER).collect();
    let patch = json!({"metadata": {"finalizers": rest, "resourceVersion": pod.resource_version()}});
    match pods.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        other => other.map(|_| ()),
    }
}

pub struct Counts {
    pub succeeded: usize,
    pub failed: usize,
    pub completed_indexes: BTreeSet<i32>,
    pub failed_indexes: BTreeSet<i32>,
}

/// Whether pods are replaced only once they have failed, not while they terminate: the
/// `Failed` podReplacementPolicy, which a podFailurePolicy implies.
pub fn only_replace_failed(job: &Job) -> bool {
    let spec = job.spec.as_ref();
    match spec.and_then(|s| s.pod_replacement_policy.as_deref()) {
        Some(policy) => policy == "Failed",
        None => spec.is_some_and(|s| s.pod_failure_policy.is_some()),
    }
}

/// Some(true) for a pod that succeeded, Some(false) for one that failed (or, unless only
/// failed pods are replaced, is being deleted unfinished), None for one still running.
fn outcome(job: &Job, pod: &Pod) -> Option<bool> {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Succeeded") => Some(true),
        Some("Failed") => Some(false),
        _ if pod.metadata.deletion_timestamp.is_some() && !only_replace_failed(job) => Some(false),
        _ => None,
    }
}

pub fn failed(job: &Job, pod: &Pod) -> bool {
    outcome(job, pod) == Some(false)
}

fn tracked(pod: &Pod) -> bool {
    pod.finalizers().iter().any(|f| f == TRACKING_FINALIZER)
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn list(set: &BTreeSet<String>) -> Value {
    if set.is_empty() { Value::Null } else { json!(set) }
}

fn index_list(set: &BTreeSet<i32>) -> Option<String> {
    (!set.is_empty()).then(|| indexes::format(set))
}

/// Takes the finished pods one step further. Returns the counts when there was nothing to
/// record, or None after writing the status (whose watch event brings the next pass).
pub async fn account(
    client: &kube::Client,
    api: &Api<Job>,
    job: &Job,
    claimed: &[Arc<Pod>],
    releasing: &Releasing,
) -> Result<Option<Counts>, Error> {
    let status = job.status.clone().unwrap_or_default();
    let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
    let mut succeeded: BTreeSet<String> = uncounted.succeeded.unwrap_or_default().into_iter().collect();
    let mut failed: BTreeSet<String> = uncounted.failed.unwrap_or_default().into_iter().collect();
    let mut completed = indexes::parse(status.completed_indexes.as_deref().unwrap_or(""));
    let mut failed_indexes = indexes::parse(status.failed_indexes.as_deref().unwrap_or(""));
    let total = super::completions(job).unwrap_or(0);
    let index = |pod: &Pod| super::index_of(pod).filter(|i| indexed(job) && *i < total);

    // 1. Record the newly finished.
    let mut recorded = false;
    let mut ignored = BTreeSet::new();
    for pod in claimed.iter().filter(|p| tracked(p) && outcome(job, p) == Some(false)) {
        if let Some(i) = index(pod)
            && per_index::fails_index(job, pod, &judge(job, pod))
        {
            failed_indexes.insert(i);
        }
    }
    let done: BTreeSet<i32> = completed.union(&failed_indexes).copied().collect();
    let awaiting = per_index::awaiting_replacement(job, claimed, &done);
    for pod in claimed.iter().filter(|p| tracked(p)) {
        let id = uid(pod);
        if succeeded.contains(&id) || failed.contains(&id) || releasing.contains(&id) || awaiting.contains(&id) {
            continue;
        }
        match outcome(job, pod) {
            Some(true) => {
                succeeded.insert(id);
                completed.extend(index(pod));
            }
            Some(false) if judge(job, pod).counts() => {
                failed.insert(id);
            }
            Some(false) => {
                ignored.insert(id);
                continue;
            }
            None => continue,
        }
        recorded = true;
    }
    let failed_text = index_list(&failed_indexes);
    if recorded || failed_text != status.failed_indexes {
        let desired = json!({"uncountedTerminatedPods": {"succeeded": list(&succeeded), "failed": list(&failed)},
                             "completedIndexes": index_list(&completed), "failedIndexes": failed_text});
        crate::status::write(api, job, desired).await?;
        return Ok(None);
    }

    // 2. Release the recorded pods.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &job.namespace().unwrap_or_default());
    let mut holding = BTreeSet::new();
    let settled = |p: &Pod| [&succeeded, &failed, &ignored].iter().any(|set| set.contains(&uid(p)));
    for pod in claimed.iter().filter(|p| tracked(p) && settled(p)) {
        releasing.start(&uid(pod));
        match remove_finalizer(&pods, pod).await {
            Ok(()) => {}
            Err(e) => {
                tracing::debug!(pod = pod.name_any(), error = %e, "could not remove the job tracking finalizer");
                holding.insert(uid(pod));
            }
        }
    }

    // 3. Count the released ones.
    let released_ok: BTreeSet<String> = succeeded.difference(&holding).cloned().collect();
    let released_failed: BTreeSet<String> = failed.difference(&holding).cloned().collect();
    let total_ok = status.succeeded.unwrap_or(0) as usize + released_ok.len();
    let total_failed = status.failed.unwrap_or(0) as usize + released_failed.len();
    if !released_ok.is_empty() || !released_failed.is_empty() {
        let left_ok: BTreeSet<String> = succeeded.intersection(&holding).cloned().collect();
        let left_failed: BTreeSet<String> = failed.intersection(&holding).cloned().collect();
        let desired = json!({
            "succeeded": crate::status::count(total_ok),
            "failed": crate::status::count(total_failed),
            "uncountedTerminatedPods": {"succeeded": list(&left_ok), "failed": list(&left_failed)},
        });
        crate::status::write(api, job, desired).await?;
        return Ok(None);
    }
    Ok(Some(Counts {
        succeeded: total_ok + succeeded.len() - released_ok.len(),
        failed: total_failed + failed.len() - released_failed.len(),
        completed_indexes: completed,
        failed_indexes,
    }))
}
