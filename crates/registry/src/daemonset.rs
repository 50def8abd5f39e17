use crate::field_error::FieldError;
use crate::pod_spec::default_template;
use crate::set_default;
use crate::strategy::Strategy;
use crate::workload::{immutable_selector, validate_workload};
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetUpdateStrategy, RollingUpdateDaemonSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub struct DaemonSetStrategy;

impl Strategy for DaemonSetStrategy {
    type Object = DaemonSet;

    fn default(&self, ds: &mut DaemonSet) {
        let spec = &mut ds.spec;
        set_default(&mut spec.revision_history_limit, 10);
        let strategy = spec.update_strategy.get_or_insert_with(DaemonSetUpdateStrategy::default);
        set_default(&mut strategy.type_, "RollingUpdate".to_string());
        if strategy.type_.as_deref() == Some("RollingUpdate") {
            let rolling = strategy.rolling_update.get_or_insert_with(RollingUpdateDaemonSet::default);
            set_default(&mut rolling.max_unavailable, IntOrString::Int(1));
            set_default(&mut rolling.max_surge, IntOrString::Int(0));
        }
        default_template(&mut spec.template);
    }

    fn prepare_create(&self, ds: &mut DaemonSet) {
        ds.status = None;
    }

    fn validate(&self, ds: &DaemonSet) -> Vec<FieldError> {
        let spec = &ds.spec;
        validate_workload(None, Some(&spec.selector), &spec.template, &["Always"])
    }

    fn validate_update(&self, new: &DaemonSet, old: &DaemonSet) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        errs.extend(immutable_selector(
            Some(&new.spec.selector),
            Some(&old.spec.selector),
        ));
        errs
    }
}
