use crate::field_error::{FieldError, Path};
use crate::pod_spec::{default_template, validate_template};
use crate::set_default;
use crate::strategy::Strategy;
use k8s_openapi::api::core::v1::ReplicationController;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

pub struct ReplicationControllerStrategy;

impl Strategy for ReplicationControllerStrategy {
    type Object = ReplicationController;

    /// The selector and the controller's own labels default to the template's labels.
    fn apply_defaults(&self, rc: &mut ReplicationController) {
        let Some(spec) = &mut rc.spec else { return };
        set_default(&mut spec.replicas, 1);
        let Some(template) = &mut spec.template else { return };
        default_template(template);
        let labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
        if spec.selector.as_ref().is_none_or(|s| s.is_empty()) {
            spec.selector = Some(labels.clone());
        }
        if rc.metadata.labels.as_ref().is_none_or(|l| l.is_empty()) {
            rc.metadata.labels = Some(labels);
        }
    }

    fn prepare_create(&self, rc: &mut ReplicationController) {
        rc.status = None;
    }

    fn validate(&self, rc: &ReplicationController) -> Vec<FieldError> {
        let Some(spec) = &rc.spec else { return vec![FieldError::required("spec", "")] };
        let spec_path = Path::new("spec");
        let selector = spec.selector.clone().filter(|s| !s.is_empty());
        let mut errs = Vec::new();
        if selector.is_none() {
            errs.push(FieldError::required(spec_path.child("selector"), ""));
        }
        match &spec.template {
            None => errs.push(FieldError::required(spec_path.child("template"), "")),
            Some(t) => {
                let sel = LabelSelector { match_labels: selector, ..Default::default() };
                errs.extend(validate_template(t, Some(&sel), &["Always"], &spec_path.child("template")));
            }
        }
        errs
    }
}
