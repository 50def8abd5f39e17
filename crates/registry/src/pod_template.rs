use crate::field_error::{FieldError, Path};
use crate::pod_spec::{default_template, validate_template};
use crate::strategy::Strategy;
use k8s_openapi::api::core::v1::PodTemplate;

pub struct PodTemplateStrategy;

impl Strategy for PodTemplateStrategy {
    type Object = PodTemplate;

    fn apply_defaults(&self, pt: &mut PodTemplate) {
        if let Some(t) = &mut pt.template {
            default_template(t);
        }
    }

    fn validate(&self, pt: &PodTemplate) -> Vec<FieldError> {
        match &pt.template {
            None => vec![FieldError::required("template", "")],
            Some(t) => validate_template(t, None, &["Always", "OnFailure", "Never"], &Path::new("template")),
        }
    }
}
