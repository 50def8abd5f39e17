use crate::pod_spec::default_template;
use crate::set_default;
use crate::workload::Workload;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

impl Workload for ReplicaSet {
    fn selector(&self) -> &LabelSelector {
        &self.spec.selector
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.template.as_ref()
    }

    fn replicas(&self) -> Option<i32> {
        self.spec.replicas
    }

    fn set_defaults(&mut self) {
        set_default(&mut self.spec.replicas, 1);
        if let Some(t) = &mut self.spec.template {
            default_template(t);
        }
    }

    fn clear_status(&mut self) {
        self.status = None;
    }
}
