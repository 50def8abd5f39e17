//! What every controller-managed workload shares: a non-negative replica count, a selector
//! that matches its pod template's labels, and a selector that never changes.

use crate::field_error::{FieldError, Path};
use crate::pod_spec::{validate_selector, validate_template};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

pub fn validate_workload(
    replicas: Option<i32>,
    selector: Option<&LabelSelector>,
    template: &PodTemplateSpec,
    restart_policies: &[&str],
) -> Vec<FieldError> {
    let spec = Path::new("spec");
    let mut errs = Vec::new();
    if let Some(r) = replicas
        && r < 0
    {
        errs.push(FieldError::invalid(spec.child("replicas"), r, "must be greater than or equal to 0"));
    }
    errs.extend(validate_selector(selector, &spec.child("selector")));
    errs.extend(validate_template(template, selector, restart_policies, &spec.child("template")));
    errs
}

pub fn immutable_selector(new: Option<&LabelSelector>, old: Option<&LabelSelector>) -> Vec<FieldError> {
    if new != old {
        vec![FieldError::invalid(
            Path::new("spec").child("selector"),
            format!("{new:?}"),
            "field is immutable",
        )]
    } else {
        Vec::new()
    }
}
