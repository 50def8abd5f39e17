//! `backoffLimitPerIndex`: the failures of an Indexed Job counted per index. Each pod carries
//! the failures of its index before it in an annotation (and those a podFailurePolicy
//! ignored in another). An index fails for good when a failed pod had already used up the
//! limit, or when a FailIndex rule matched; it is then listed in `status.failedIndexes` and
//! never run again. The last failed pod of an index keeps its tracking finalizer until its
//! replacement exists, so that the count passes on even if the pod is deleted meanwhile.

use super::failure_policy::{self, Verdict};
use super::{backoff, completions, finished_at, finishing, index_of, is_active, tracking};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

pub const FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
pub const IGNORED_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-ignored-failure-count";

pub fn limited(job: &Job) -> bool {
    job.spec.as_ref().is_some_and(|s| s.backoff_limit_per_index.is_some())
}

fn count(pod: &Pod, key: &str) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 0)
        .unwrap_or(0)
}

/// Whether this failed pod fails its index.
pub fn fails_index(job: &Job, pod: &Pod, verdict: &Verdict) -> bool {
    let Some(limit) = job.spec.as_ref().and_then(|s| s.backoff_limit_per_index) else { return false };
    *verdict == Verdict::FailIndex || (verdict.counts() && count(pod, FAILURE_COUNT) >= limit)
}

/// The latest failed pod of each index: the one whose counts its replacement carries on.
pub fn last_failed<'a>(job: &Job, pods: &'a [Arc<Pod>]) -> BTreeMap<i32, &'a Arc<Pod>> {
    let total = completions(job).unwrap_or(0);
    let mut last: BTreeMap<i32, &Arc<Pod>> = BTreeMap::new();
    for pod in pods.iter().filter(|p| tracking::failed(job, p)) {
        let Some(index) = index_of(pod).filter(|i| *i < total) else { continue };
        let rank = |p: &Pod| (count(p, FAILURE_COUNT) + count(p, IGNORED_FAILURE_COUNT), finished_at(p));
        if last.get(&index).is_none_or(|known| rank(known) <= rank(pod)) {
            last.insert(index, pod);
        }
    }
    last
}

/// The uids of failed pods to keep (finalizer and all) until their index has a replacement;
/// none once the Job is finishing or deleted.
pub fn awaiting_replacement(job: &Job, pods: &[Arc<Pod>], done: &BTreeSet<i32>) -> BTreeSet<String> {
    if !limited(job) || finishing(job) {
        return BTreeSet::new();
    }
    let running: BTreeSet<i32> = pods.iter().filter(|p| is_active(p)).filter_map(|p| index_of(p)).collect();
    last_failed(job, pods)
        .into_iter()
        .filter(|(index, _)| !done.contains(index) && !running.contains(index))
        .filter_map(|(_, pod)| pod.metadata.uid.clone())
        .collect()
}

/// The annotations a replacement of `replaced` starts with.
pub fn replacement_annotations(job: &Job, replaced: Option<&Arc<Pod>>) -> [(&'static str, i32); 2] {
    let (mut failures, mut ignored) =
        replaced.map_or((0, 0), |p| (count(p, FAILURE_COUNT), count(p, IGNORED_FAILURE_COUNT)));
    if let Some(pod) = replaced {
        if failure_policy::judge(job, pod).counts() {
            failures += 1;
        } else {
            ignored += 1;
        }
    }
    [(FAILURE_COUNT, failures), (IGNORED_FAILURE_COUNT, ignored)]
}

/// How long the index of its last failed pod still waits before a replacement: the Job's
/// backoff, by the failures of the index.
pub fn backoff_left(last: &Pod, now: chrono::DateTime<chrono::Utc>) -> Duration {
    let failures = (count(last, FAILURE_COUNT) + count(last, IGNORED_FAILURE_COUNT) + 1) as usize;
    let Some(finished) = finished_at(last) else { return Duration::ZERO };
    let ready = finished + chrono::Duration::from_std(backoff(failures)).unwrap_or_default();
    (ready - now).to_std().unwrap_or_default()
}
