use crate::field_error::{FieldError, Path};
use crate::pod_spec::default_template;
use crate::set_default;
use crate::workload::Workload;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

impl Workload for Deployment {
    fn selector(&self) -> &LabelSelector {
        &self.spec.selector
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        Some(&self.spec.template)
    }

    fn replicas(&self) -> Option<i32> {
        self.spec.replicas
    }

    fn set_defaults(&mut self) {
        let spec = &mut self.spec;
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

    fn clear_status(&mut self) {
        self.status = None;
    }

    fn validate_spec(&self, spec: &Path) -> Vec<FieldError> {
        let strategy = self.spec.strategy.as_ref();
        let recreate = strategy.and_then(|s| s.type_.as_deref()) == Some("Recreate");
        if recreate && strategy.is_some_and(|s| s.rolling_update.is_some()) {
            let field = spec.child("strategy").child("rollingUpdate");
            return vec![FieldError::forbidden(field, "may not be specified when strategy `type` is 'Recreate'")];
        }
        Vec::new()
    }
}
