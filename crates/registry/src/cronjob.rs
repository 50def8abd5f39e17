//! CronJobs: defaults (Allow, not suspended, three successful and one failed Job kept) and
//! Kubernetes' rules: a schedule its cron parser accepts (its error text in the 422), no
//! `TZ=` in a new schedule (the `timeZone` field instead), an IANA time zone, a name short
//! enough for the Jobs named after it, and a job template whose selector is generated.

use crate::field_error::{FieldError, Path};
use crate::job::{default_job_spec, validate_job_spec};
use crate::set_default;
use crate::strategy::Strategy;
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec};

pub struct CronJobStrategy;

const CONCURRENCY: &[&str] = &["Allow", "Forbid", "Replace"];

/// Jobs are named `<cronjob>-<minutes since the epoch>`: eleven characters on top of the
/// CronJob's name, within the 63 of a label value.
const MAX_NAME: usize = 63 - 11;

/// Why `schedule` is refused. `TZ=` may stay in a schedule that already had it (as older
/// Kubernetes allowed), but not alongside `timeZone`.
fn schedule_errors(schedule: &str, tz_allowed: bool, time_zone: Option<&String>) -> Vec<String> {
    let mut errs: Vec<String> = cron::parse(schedule).err().into_iter().collect();
    if schedule.contains("TZ") {
        if !tz_allowed {
            errs.push("cannot use TZ or CRON_TZ in schedule, use timeZone field instead".into());
        } else if time_zone.is_some() {
            errs.push("cannot use both timeZone field and TZ or CRON_TZ in schedule".into());
        }
    }
    errs
}

/// Why `zone` is not a time zone Kubernetes accepts: IANA naming rules (components of at
/// most 14 letters, digits, `.`, `-`, `_`, `+`), not `Local`, and known to the database.
fn time_zone_errors(zone: &str) -> Vec<String> {
    if zone.is_empty() {
        return vec!["timeZone must be nil or non-empty string".into()];
    }
    let valid_part = |p: &str| {
        p != "."
            && p != ".."
            && !p.starts_with('-')
            && (1..=14).contains(&p.len())
            && p.chars().all(|c| c.is_ascii_alphanumeric() || ".-_+".contains(c))
    };
    if !zone.split('/').all(valid_part) {
        return vec![format!("unknown time zone {zone}")];
    }
    let mut errs = Vec::new();
    if zone.eq_ignore_ascii_case("Local") {
        errs.push("timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones".into());
    }
    // Go's time.LoadLocation knows "Local" (the controller manager's zone), not "local".
    if zone != "Local"
        && let Err(e) = cron::load_location(zone)
    {
        errs.push(e);
    }
    errs
}

/// The spec's rules; `old` is the spec being updated, if any.
fn validate_spec(spec: &CronJobSpec, old: Option<&CronJobSpec>) -> Vec<FieldError> {
    let path = Path::new("spec");
    let mut errs = Vec::new();
    if spec.schedule.is_empty() {
        errs.push(FieldError::required(path.child("schedule"), ""));
    } else {
        let tz_allowed = old.is_some_and(|o| o.schedule.contains("TZ"));
        for e in schedule_errors(&spec.schedule, tz_allowed, spec.time_zone.as_ref()) {
            errs.push(FieldError::invalid(path.child("schedule"), &spec.schedule, e));
        }
    }
    if let Some(deadline) = spec.starting_deadline_seconds
        && deadline < 0
    {
        errs.push(FieldError::invalid(
            path.child("startingDeadlineSeconds"),
            deadline,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(zone) = &spec.time_zone
        && old.is_none_or(|o| o.time_zone.as_ref() != Some(zone))
    {
        for e in time_zone_errors(zone) {
            errs.push(FieldError::invalid(path.child("timeZone"), zone, e));
        }
    }
    if let Some(policy) = &spec.concurrency_policy
        && !CONCURRENCY.contains(&policy.as_str())
    {
        errs.push(FieldError::not_supported(path.child("concurrencyPolicy"), policy, CONCURRENCY));
    }
    let template = path.child("jobTemplate").child("spec");
    match &spec.job_template.spec {
        None => errs.push(FieldError::required(template, "")),
        Some(job_spec) => {
            errs.extend(validate_job_spec(job_spec, &template));
            if let Some(selector) = &job_spec.selector {
                let shown = serde_json::to_string(selector).unwrap_or_default();
                errs.push(FieldError::invalid(template.child("selector"), shown, "`selector` will be auto-generated"));
            }
            if job_spec.manual_selector == Some(true) {
                errs.push(FieldError::not_supported(template.child("manualSelector"), true, &["nil", "false"]));
            }
        }
    }
    for (name, limit) in [
        ("successfulJobsHistoryLimit", spec.successful_jobs_history_limit),
        ("failedJobsHistoryLimit", spec.failed_jobs_history_limit),
    ] {
        if let Some(limit) = limit
            && limit < 0
        {
            errs.push(FieldError::invalid(path.child(name), limit, "must be greater than or equal to 0"));
        }
    }
    errs
}

impl Strategy for CronJobStrategy {
    type Object = CronJob;

    fn apply_defaults(&self, cj: &mut CronJob) {
        let spec = &mut cj.spec;
        set_default(&mut spec.concurrency_policy, "Allow".to_string());
        set_default(&mut spec.suspend, false);
        set_default(&mut spec.successful_jobs_history_limit, 3);
        set_default(&mut spec.failed_jobs_history_limit, 1);
        if let Some(job_spec) = &mut spec.job_template.spec {
            default_job_spec(job_spec);
        }
    }

    fn prepare_create(&self, cj: &mut CronJob) {
        cj.status = None;
    }

    fn validate(&self, cj: &CronJob) -> Vec<FieldError> {
        let mut errs = validate_spec(&cj.spec, None);
        let name = cj.metadata.name.as_deref().unwrap_or_default();
        if name.len() > MAX_NAME {
            errs.push(FieldError::invalid(
                "metadata.name",
                name,
                format!("must be no more than {MAX_NAME} characters"),
            ));
        }
        errs
    }

    /// An existing CronJob keeps its name, however long.
    fn validate_update(&self, new: &CronJob, old: &CronJob) -> Vec<FieldError> {
        validate_spec(&new.spec, Some(&old.spec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert!(schedule_errors("*/5 * * * *", false, None).is_empty());
        assert!(schedule_errors("@hourly", false, None).is_empty());
        assert!(schedule_errors("@every 1h", false, None).is_empty());
        assert_eq!(schedule_errors("* * *", false, None), vec!["expected exactly 5 fields, found 3: [* * *]"]);
        assert_eq!(schedule_errors("@sometimes", false, None), vec!["unrecognized descriptor: @sometimes"]);
        assert_eq!(
            schedule_errors("TZ=UTC 0 0 * * *", false, None),
            vec!["cannot use TZ or CRON_TZ in schedule, use timeZone field instead"]
        );
        assert!(schedule_errors("TZ=UTC 0 0 * * *", true, None).is_empty());
        let utc = "UTC".to_string();
        assert_eq!(
            schedule_errors("TZ=UTC 0 0 * * *", true, Some(&utc)),
            vec!["cannot use both timeZone field and TZ or CRON_TZ in schedule"]
        );
    }

    #[test]
    fn time_zones() {
        for zone in ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5"] {
            assert!(time_zone_errors(zone).is_empty(), "{zone}");
        }
        assert_eq!(time_zone_errors(""), vec!["timeZone must be nil or non-empty string"]);
        assert_eq!(time_zone_errors("Europe/Berlinn"), vec!["unknown time zone Europe/Berlinn"]);
        assert_eq!(time_zone_errors("../etc/passwd"), vec!["unknown time zone ../etc/passwd"]);
        assert_eq!(time_zone_errors("America/Fifteen_Letters"), vec!["unknown time zone America/Fifteen_Letters"]);
        let explicit = "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones";
        assert_eq!(time_zone_errors("Local"), vec![explicit]);
        assert_eq!(time_zone_errors("local"), vec![explicit.to_string(), "unknown time zone local".into()]);
    }
}
