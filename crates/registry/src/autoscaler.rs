//! HorizontalPodAutoscalers, at both served versions: minReplicas defaults to 1, a v2
//! autoscaler without metrics targets 80% CPU utilization (as Kubernetes defaults it), and the
//! replica bounds and the target reference are checked.

use crate::field_error::{FieldError, Path};
use crate::set_default;
use crate::strategy::Strategy;
use k8s_openapi::api::autoscaling::{v1, v2};

pub struct HorizontalPodAutoscalerV2Strategy;
pub struct HorizontalPodAutoscalerV1Strategy;

impl Strategy for HorizontalPodAutoscalerV2Strategy {
    type Object = v2::HorizontalPodAutoscaler;

    fn apply_defaults(&self, hpa: &mut v2::HorizontalPodAutoscaler) {
        let spec = &mut hpa.spec;
        set_default(&mut spec.min_replicas, 1);
        if spec.metrics.as_ref().is_none_or(Vec::is_empty) {
            spec.metrics = Some(vec![v2::MetricSpec {
                type_: "Resource".into(),
                resource: Some(v2::ResourceMetricSource {
                    name: "cpu".into(),
                    target: v2::MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(80),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]);
        }
    }

    fn validate(&self, hpa: &v2::HorizontalPodAutoscaler) -> Vec<FieldError> {
        let (spec, target) = (&hpa.spec, &hpa.spec.scale_target_ref);
        bounds_and_target(spec.min_replicas, spec.max_replicas, &target.kind, &target.name)
    }
}

impl Strategy for HorizontalPodAutoscalerV1Strategy {
    type Object = v1::HorizontalPodAutoscaler;

    fn apply_defaults(&self, hpa: &mut v1::HorizontalPodAutoscaler) {
        set_default(&mut hpa.spec.min_replicas, 1);
    }

    fn validate(&self, hpa: &v1::HorizontalPodAutoscaler) -> Vec<FieldError> {
        let (spec, target) = (&hpa.spec, &hpa.spec.scale_target_ref);
        bounds_and_target(spec.min_replicas, spec.max_replicas, &target.kind, &target.name)
    }
}

fn bounds_and_target(min: Option<i32>, max: i32, kind: &str, name: &str) -> Vec<FieldError> {
    let spec = Path::new("spec");
    let mut errs = Vec::new();
    let min = min.unwrap_or(1);
    if min < 1 {
        errs.push(FieldError::invalid(spec.child("minReplicas"), min, "must be greater than or equal to 1"));
    }
    if max < min {
        errs.push(FieldError::invalid(
            spec.child("maxReplicas"),
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    let target = spec.child("scaleTargetRef");
    if kind.is_empty() {
        errs.push(FieldError::required(target.child("kind"), ""));
    }
    if name.is_empty() {
        errs.push(FieldError::required(target.child("name"), ""));
    }
    errs
}
