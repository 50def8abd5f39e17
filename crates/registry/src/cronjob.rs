use crate::field_error::{FieldError, Path};
use crate::job::{default_job_spec, validate_job_spec};
use crate::set_default;
use crate::strategy::Strategy;
use k8s_openapi::api::batch::v1::CronJob;

pub struct CronJobStrategy;

const CONCURRENCY: &[&str] = &["Allow", "Forbid", "Replace"];
const MACROS: &[&str] = &["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"];

/// A standard five-field cron line (optionally `TZ=zone` first) or one of the `@` macros.
fn schedule_errors(schedule: &str) -> Option<String> {
    let line = schedule.trim();
    let line = match line.strip_prefix("TZ=").or_else(|| line.strip_prefix("CRON_TZ=")) {
        Some(rest) => rest.split_once(' ').map(|(_, l)| l.trim()).unwrap_or(""),
        None => line,
    };
    if line.starts_with('@') {
        return (!MACROS.contains(&line) && !line.starts_with("@every "))
            .then(|| format!("unrecognized descriptor: {line}"));
    }
    let fields = line.split_whitespace().count();
    (fields != 5).then(|| format!("expected exactly 5 fields, found {fields}: {line}"))
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
        let spec = &cj.spec;
        let path = Path::new("spec");
        let mut errs = Vec::new();
        if spec.schedule.is_empty() {
            errs.push(FieldError::required(path.child("schedule"), ""));
        } else if let Some(e) = schedule_errors(&spec.schedule) {
            errs.push(FieldError::invalid(path.child("schedule"), &spec.schedule, e));
        }
        if let Some(policy) = &spec.concurrency_policy
            && !CONCURRENCY.contains(&policy.as_str())
        {
            errs.push(FieldError::not_supported(path.child("concurrencyPolicy"), policy, CONCURRENCY));
        }
        match &spec.job_template.spec {
            None => errs.push(FieldError::required(path.child("jobTemplate").child("spec"), "")),
            Some(job_spec) => errs.extend(validate_job_spec(job_spec, &path.child("jobTemplate").child("spec"))),
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::schedule_errors;

    #[test]
    fn schedules() {
        assert!(schedule_errors("*/5 * * * *").is_none());
        assert!(schedule_errors("@hourly").is_none());
        assert!(schedule_errors("TZ=UTC 0 0 * * *").is_none());
        assert!(schedule_errors("* * *").is_some());
        assert!(schedule_errors("@sometimes").is_some());
    }
}
