//! The finished Jobs a CronJob keeps: the most recent `successfulJobsHistoryLimit` Jobs
//! that completed and `failedJobsHistoryLimit` that failed; older ones (by start time, then
//! name; never-started ones count as newest) are deleted. Jobs already being deleted do not
//! count.

use crate::job::ending;
use crate::pods::timestamp;
use k8s_openapi::api::batch::v1::Job;
use std::sync::Arc;

/// The Jobs past the limits, oldest first.
pub fn expired(jobs: &[Arc<Job>], successful_limit: Option<i32>, failed_limit: Option<i32>) -> Vec<Arc<Job>> {
    let mut expired = Vec::new();
    for (ended, limit) in [("Complete", successful_limit), ("Failed", failed_limit)] {
        let Some(limit) = limit else { continue };
        let mut finished: Vec<&Arc<Job>> =
            jobs.iter().filter(|j| j.metadata.deletion_timestamp.is_none() && ending(j) == Some(ended)).collect();
        finished.sort_by_key(|j| {
            let started = j.status.as_ref().and_then(|s| s.start_time.as_ref()).map(timestamp);
            (started.is_none(), started, j.metadata.name.clone())
        });
        let excess = finished.len().saturating_sub(limit.max(0) as usize);
        expired.extend(finished.into_iter().take(excess).cloned());
    }
    expired
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};

    fn job(name: &str, ended: &str, started: Option<&str>) -> Arc<Job> {
        let mut job = Job::default();
        job.metadata.name = Some(name.into());
        job.status = Some(JobStatus {
            start_time: started.map(|t| serde_json::from_value(serde_json::json!(t)).unwrap()),
            conditions: Some(vec![JobCondition { type_: ended.into(), status: "True".into(), ..Default::default() }]),
            ..Default::default()
        });
        Arc::new(job)
    }

    fn names(jobs: Vec<Arc<Job>>) -> Vec<String> {
        jobs.iter().map(|j| j.metadata.name.clone().unwrap()).collect()
    }

    #[test]
    fn oldest_beyond_each_limit() {
        let jobs = vec![
            job("c", "Complete", Some("2026-11-23T10:03:00Z")),
            job("a", "Complete", Some("2026-11-23T10:01:00Z")),
            job("never", "Complete", None),
            job("b", "Complete", Some("2026-11-23T10:02:00Z")),
            job("f1", "Failed", Some("2026-11-23T10:01:00Z")),
            job("f2", "Failed", Some("2026-11-23T10:02:00Z")),
            job("running", "Suspended", Some("2026-11-23T09:00:00Z")),
        ];
        assert_eq!(names(expired(&jobs, Some(2), Some(1))), vec!["a", "b", "f1"]);
        assert_eq!(names(expired(&jobs, Some(0), None)), vec!["a", "b", "c", "never"]);
        assert!(expired(&jobs, None, None).is_empty());
    }
}
