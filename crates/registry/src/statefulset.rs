use crate::pod_spec::default_template;
use crate::set_default;
use crate::workload::Workload;
use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

impl Workload for StatefulSet {
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
        set_default(&mut spec.pod_management_policy, "OrderedReady".to_string());
        let strategy = spec.update_strategy.get_or_insert_with(StatefulSetUpdateStrategy::default);
        set_default(&mut strategy.type_, "RollingUpdate".to_string());
        if strategy.type_.as_deref() == Some("RollingUpdate") {
            let rolling = strategy.rolling_update.get_or_insert_with(RollingUpdateStatefulSetStrategy::default);
            set_default(&mut rolling.partition, 0);
        }
        let retention = spec
            .persistent_volume_claim_retention_policy
            .get_or_insert_with(StatefulSetPersistentVolumeClaimRetentionPolicy::default);
        set_default(&mut retention.when_deleted, "Retain".to_string());
        set_default(&mut retention.when_scaled, "Retain".to_string());
        for claim in spec.volume_claim_templates.iter_mut().flatten() {
            if let Some(claim_spec) = &mut claim.spec {
                set_default(&mut claim_spec.volume_mode, "Filesystem".to_string());
            }
        }
        default_template(&mut spec.template);
    }

    fn clear_status(&mut self) {
        self.status = None;
    }
}
