//! PersistentVolumes and PersistentVolumeClaims start Pending, with Filesystem volume mode.

use crate::field_error::FieldError;
use crate::set_default;
use crate::strategy::Strategy;
use k8s_openapi::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimStatus, PersistentVolumeStatus,
};

pub struct PersistentVolumeStrategy;

impl Strategy for PersistentVolumeStrategy {
    type Object = PersistentVolume;

    fn apply_defaults(&self, pv: &mut PersistentVolume) {
        if let Some(spec) = &mut pv.spec {
            set_default(&mut spec.persistent_volume_reclaim_policy, "Retain".to_string());
            set_default(&mut spec.volume_mode, "Filesystem".to_string());
        }
    }

    fn prepare_create(&self, pv: &mut PersistentVolume) {
        pv.status = Some(PersistentVolumeStatus { phase: Some("Pending".into()), ..Default::default() });
    }

    fn validate(&self, pv: &PersistentVolume) -> Vec<FieldError> {
        let Some(spec) = &pv.spec else { return vec![FieldError::required("spec", "")] };
        let mut errs = Vec::new();
        if spec.capacity.as_ref().is_none_or(|c| !c.contains_key("storage")) {
            errs.push(FieldError::required("spec.capacity", ""));
        }
        if spec.access_modes.as_ref().is_none_or(Vec::is_empty) {
            errs.push(FieldError::required("spec.accessModes", ""));
        }
        errs
    }
}

pub struct PersistentVolumeClaimStrategy;

impl Strategy for PersistentVolumeClaimStrategy {
    type Object = PersistentVolumeClaim;

    fn apply_defaults(&self, pvc: &mut PersistentVolumeClaim) {
        if let Some(spec) = &mut pvc.spec {
            set_default(&mut spec.volume_mode, "Filesystem".to_string());
        }
    }

    fn prepare_create(&self, pvc: &mut PersistentVolumeClaim) {
        pvc.status = Some(PersistentVolumeClaimStatus { phase: Some("Pending".into()), ..Default::default() });
    }

    fn validate(&self, pvc: &PersistentVolumeClaim) -> Vec<FieldError> {
        let Some(spec) = &pvc.spec else { return vec![FieldError::required("spec", "")] };
        let mut errs = Vec::new();
        if spec.access_modes.as_ref().is_none_or(Vec::is_empty) {
            errs.push(FieldError::required("spec.accessModes", "at least 1 access mode is required"));
        }
        errs
    }
}
