use crate::pod_spec::default_template;
use crate::set_default;
use crate::workload::Workload;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetUpdateStrategy, RollingUpdateDaemonSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

impl Workload for DaemonSet {
    fn selector(&self) -> &LabelSelector {
        &self.spec.selector
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        Some(&self.spec.template)
    }

    fn replicas(&self) -> Option<i32> {
        None
    }

    fn set_defaults(&mut self) {
        let spec = &mut self.spec;
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

    fn clear_status(&mut self) {
        self.status = None;
    }
}
