use crate::field_error::FieldError;
use crate::pod_spec::default_template;
use crate::set_default;
use crate::strategy::Strategy;
use crate::workload::{immutable_selector, validate_workload};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub struct DeploymentStrategyRules;

impl Strategy for DeploymentStrategyRules {
    type Object = Deployment;

    fn default(&self, d: &mut Deployment) {
        let spec = &mut d.spec;
        set_default(&mut spec.replicas, 1);
        set_default(&mut spec.revision_history_limit, 10);
        set_default(&mut spec.progress_deadline_seconds, 600);
        let strategy = spec.strategy.get_or_insert_with(DeploymentStrategy::default);
        set_default(&mut strategy.type_, "RollingUpdate".to_string());
        if strategy.type_.as_deref() == Some("RollingUpdate") {
            let rolling = strategy.rolling_update.get_or_insert_with(RollingUpdateDeployment::default);
            set_default(&mut rolling.max_surge, IntOrString::String("25%".into()));
            set_default(&mut rolling.max_unavailable, IntOrString::String("25%".into()));
        }
        default_template(&mut spec.template);
    }

    fn prepare_create(&self, d: &mut Deployment) {
        d.status = None;
    }

    fn validate(&self, d: &Deployment) -> Vec<FieldError> {
        let spec = &d.spec;
        validate_workload(spec.replicas, Some(&spec.selector), &spec.template, &["Always"])
    }

    fn validate_update(&self, new: &Deployment, old: &Deployment) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        errs.extend(immutable_selector(
            Some(&new.spec.selector),
            Some(&old.spec.selector),
        ));
        errs
    }
}
