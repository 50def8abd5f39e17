use crate::field_error::FieldError;
use crate::pod_spec::default_template;
use crate::set_default;
use crate::strategy::Strategy;
use crate::workload::{immutable_selector, validate_workload};
use k8s_openapi::api::apps::v1::ReplicaSet;

pub struct ReplicaSetStrategy;

impl Strategy for ReplicaSetStrategy {
    type Object = ReplicaSet;

    fn default(&self, rs: &mut ReplicaSet) {
        let spec = &mut rs.spec;
        set_default(&mut spec.replicas, 1);
        if let Some(t) = &mut spec.template {
            default_template(t);
        }
    }

    fn prepare_create(&self, rs: &mut ReplicaSet) {
        rs.status = None;
    }

    fn validate(&self, rs: &ReplicaSet) -> Vec<FieldError> {
        let spec = &rs.spec;
        let template = spec.template.clone().unwrap_or_default();
        validate_workload(spec.replicas, Some(&spec.selector), &template, &["Always"])
    }

    fn validate_update(&self, new: &ReplicaSet, old: &ReplicaSet) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        errs.extend(immutable_selector(
            Some(&new.spec.selector),
            Some(&old.spec.selector),
        ));
        errs
    }
}
