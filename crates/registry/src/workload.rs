//! What every controller-managed workload (Deployment, ReplicaSet, StatefulSet, DaemonSet)
//! shares: a non-negative replica count, a selector that matches its pod template's labels
//! and never changes, a pod template that restarts Always, and a status only controllers set.
//! Each kind's file says only what is its own: its defaults.

use crate::field_error::{FieldError, Path};
use crate::pod_spec::{validate_selector, validate_template};
use crate::strategy::Strategy;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Serialize, de::DeserializeOwned};
use std::marker::PhantomData;

pub trait Workload: Serialize + DeserializeOwned + schemars::JsonSchema + 'static {
    fn selector(&self) -> &LabelSelector;
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// `None` for kinds without a replica count (DaemonSets).
    fn replicas(&self) -> Option<i32>;
    fn set_defaults(&mut self);
    fn clear_status(&mut self);
    /// What only this kind checks in its spec.
    fn validate_spec(&self, _spec: &Path) -> Vec<FieldError> {
        Vec::new()
    }
}

pub struct WorkloadStrategy<T>(PhantomData<fn() -> T>);

impl<T> Default for WorkloadStrategy<T> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T: Workload> Strategy for WorkloadStrategy<T> {
    type Object = T;

    fn apply_defaults(&self, obj: &mut T) {
        obj.set_defaults();
    }

    fn prepare_create(&self, obj: &mut T) {
        obj.clear_status();
    }

    fn validate(&self, obj: &T) -> Vec<FieldError> {
        let spec = Path::new("spec");
        let mut errs = Vec::new();
        if let Some(r) = obj.replicas()
            && r < 0
        {
            errs.push(FieldError::invalid(spec.child("replicas"), r, "must be greater than or equal to 0"));
        }
        errs.extend(validate_selector(Some(obj.selector()), &spec.child("selector")));
        let template = obj.template().cloned().unwrap_or_default();
        errs.extend(validate_template(&template, Some(obj.selector()), &["Always"], &spec.child("template")));
        errs.extend(obj.validate_spec(&spec));
        errs
    }

    fn validate_update(&self, new: &T, old: &T) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        if new.selector() != old.selector() {
            errs.push(FieldError::invalid(
                Path::new("spec").child("selector"),
                format!("{:?}", new.selector()),
                "field is immutable",
            ));
        }
        errs
    }
}
