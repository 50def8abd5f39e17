use crate::field_error::FieldError;
use crate::pod_spec::default_template;
use crate::set_default;
use crate::strategy::Strategy;
use crate::workload::{immutable_selector, validate_workload};
use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetUpdateStrategy,
};

pub struct StatefulSetStrategy;

impl Strategy for StatefulSetStrategy {
    type Object = StatefulSet;

    fn default(&self, sts: &mut StatefulSet) {
        let spec = &mut sts.spec;
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

    fn prepare_create(&self, sts: &mut StatefulSet) {
        sts.status = None;
    }

    fn validate(&self, sts: &StatefulSet) -> Vec<FieldError> {
        let spec = &sts.spec;
        validate_workload(spec.replicas, Some(&spec.selector), &spec.template, &["Always"])
    }

    fn validate_update(&self, new: &StatefulSet, old: &StatefulSet) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        errs.extend(immutable_selector(
            Some(&new.spec.selector),
            Some(&old.spec.selector),
        ));
        errs
    }
}
