//! The Job a CronJob starts for a scheduled time: named after the CronJob and the time in
//! minutes since the epoch (so that the same time never makes two Jobs, even across
//! restarts), with the template's labels, annotations and spec, the CronJob as its
//! controller, and the scheduled time in the CronJob's time zone as an annotation.

use crate::owner;
use chrono::{DateTime, SecondsFormat, Utc};
use cron::Tz;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

pub fn job_name(cronjob: &str, scheduled: DateTime<Utc>) -> String {
    format!("{cronjob}-{}", scheduled.timestamp().div_euclid(60))
}

pub fn job_for(cj: &CronJob, scheduled: DateTime<Utc>, zone: Tz) -> Job {
    let template = cj.spec.job_template.metadata.clone().unwrap_or_default();
    let mut annotations = template.annotations.unwrap_or_default();
    let local = scheduled.with_timezone(&zone).to_rfc3339_opts(SecondsFormat::Secs, true);
    annotations.insert(SCHEDULED_TIMESTAMP.to_string(), local);
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(cj.metadata.name.as_deref().unwrap_or_default(), scheduled)),
            namespace: cj.metadata.namespace.clone(),
            labels: template.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![owner::reference(cj)]),
            ..Default::default()
        },
        spec: cj.spec.job_template.spec.clone(),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::collections::BTreeMap;

    #[test]
    fn a_job_from_the_template() {
        let mut cj = CronJob::default();
        cj.metadata.name = Some("backup".into());
        cj.metadata.namespace = Some("ops".into());
        cj.metadata.uid = Some("uid-1".into());
        cj.spec.job_template.metadata = Some(ObjectMeta {
            labels: Some(BTreeMap::from([("app".to_string(), "backup".to_string())])),
            annotations: Some(BTreeMap::from([("note".to_string(), "nightly".to_string())])),
            ..Default::default()
        });
        let scheduled = Utc.with_ymd_and_hms(2026, 11, 23, 2, 30, 0).unwrap();
        let job = job_for(&cj, scheduled, "America/New_York".parse().unwrap());
        assert_eq!(job.metadata.name.as_deref(), Some("backup-29923350"));
        assert_eq!(job.metadata.namespace.as_deref(), Some("ops"));
        assert_eq!(job.metadata.labels.unwrap()["app"], "backup");
        let annotations = job.metadata.annotations.unwrap();
        assert_eq!(annotations["note"], "nightly");
        assert_eq!(annotations[SCHEDULED_TIMESTAMP], "2026-11-22T21:30:00-05:00");
        let owner = &job.metadata.owner_references.unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str(), owner.controller), ("CronJob", "uid-1", Some(true)));
        let utc = job_for(&cj, scheduled, Tz::UTC);
        assert_eq!(utc.metadata.annotations.unwrap()[SCHEDULED_TIMESTAMP], "2026-11-23T02:30:00Z");
    }
}
