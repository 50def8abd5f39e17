//! Jobs: defaults, the generated selector that ties a Job to its pods by uid, and the rules
//! on completions, parallelism and restart policy (those on failure and success policies are
//! in `job_policies`).

use crate::field_error::{FieldError, Path};
use crate::pod_spec::{default_template, validate_template};
use crate::set_default;
use crate::strategy::Strategy;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

pub struct JobStrategy;

pub fn default_job_spec(spec: &mut JobSpec) {
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
    }
    set_default(&mut spec.parallelism, 1);
    set_default(&mut spec.backoff_limit, if spec.backoff_limit_per_index.is_some() { i32::MAX } else { 6 });
    set_default(&mut spec.completion_mode, "NonIndexed".to_string());
    set_default(&mut spec.suspend, false);
    set_default(
        &mut spec.pod_replacement_policy,
        if spec.pod_failure_policy.is_some() { "Failed" } else { "TerminatingOrFailed" }.to_string(),
    );
    set_default(&mut spec.manual_selector, false);
    default_template(&mut spec.template);
}

/// Unless `manualSelector` is set, the Job selects its pods by its own uid, as Kubernetes does.
fn generate_selector(job: &mut Job) {
    let (Some(spec), Some(uid), Some(name)) = (&mut job.spec, job.metadata.uid.clone(), job.metadata.name.clone())
    else {
        return;
    };
    if spec.manual_selector == Some(true) {
        return;
    }
    let labels = spec.template.metadata.get_or_insert_with(Default::default).labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("controller-uid", &uid),
        ("job-name", &name),
    ] {
        labels.insert(k.to_string(), v.clone());
    }
    spec.selector = Some(LabelSelector {
        match_labels: Some(BTreeMap::from([("batch.kubernetes.io/controller-uid".to_string(), uid)])),
        ..Default::default()
    });
}

pub fn validate_job_spec(spec: &JobSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (name, value) in
        [("parallelism", spec.parallelism), ("completions", spec.completions), ("backoffLimit", spec.backoff_limit)]
    {
        if let Some(v) = value
            && v < 0
        {
            errs.push(FieldError::invalid(path.child(name), v, "must be greater than or equal to 0"));
        }
    }
    if let Some(mode) = &spec.completion_mode
        && !["NonIndexed", "Indexed"].contains(&mode.as_str())
    {
        errs.push(FieldError::not_supported(path.child("completionMode"), mode, &["NonIndexed", "Indexed"]));
    }
    if spec.completion_mode.as_deref() == Some("Indexed") && spec.completions.is_none() {
        errs.push(FieldError::required(path.child("completions"), "when completion mode is Indexed"));
    }
    errs.extend(crate::job_policies::validate(spec, path));
    errs.extend(validate_template(
        &spec.template,
        spec.selector.as_ref(),
        &["OnFailure", "Never"],
        &path.child("template"),
    ));
    errs
}

impl Strategy for JobStrategy {
    type Object = Job;

    fn apply_defaults(&self, job: &mut Job) {
        if let Some(spec) = &mut job.spec {
            default_job_spec(spec);
        }
    }

    fn prepare_create(&self, job: &mut Job) {
        job.status = None;
        generate_selector(job);
    }

    fn validate(&self, job: &Job) -> Vec<FieldError> {
        match &job.spec {
            None => vec![FieldError::required("spec", "")],
            Some(spec) => validate_job_spec(spec, &Path::new("spec")),
        }
    }

    fn validate_update(&self, new: &Job, old: &Job) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        let (Some(n), Some(o)) = (&new.spec, &old.spec) else { return errs };
        if n.selector != o.selector {
            errs.push(FieldError::invalid("spec.selector", format!("{:?}", n.selector), "field is immutable"));
        }
        if n.template != o.template && o.suspend != Some(true) {
            errs.push(FieldError::invalid("spec.template", "", "field is immutable"));
        }
        if n.pod_failure_policy != o.pod_failure_policy {
            errs.push(FieldError::invalid("spec.podFailurePolicy", "", "field is immutable"));
        }
        if n.success_policy != o.success_policy {
            errs.push(FieldError::invalid("spec.successPolicy", "", "field is immutable"));
        }
        if n.completions != o.completions && n.completion_mode.as_deref() != Some("Indexed") {
            errs.push(FieldError::invalid("spec.completions", format!("{:?}", n.completions), "field is immutable"));
        }
        errs
    }
}
