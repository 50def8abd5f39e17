//! PodDisruptionBudgets: minAvailable and maxUnavailable, of which at most one is set, are a
//! non-negative number or a percentage up to 100%; the selector must parse; the
//! unhealthyPodEvictionPolicy is AlwaysAllow or IfHealthyBudget.

use crate::field_error::{FieldError, Path};
use crate::labels::Selector;
use crate::strategy::Strategy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub struct PodDisruptionBudgetStrategy;

const POLICIES: &[&str] = &["AlwaysAllow", "IfHealthyBudget"];

impl Strategy for PodDisruptionBudgetStrategy {
    type Object = PodDisruptionBudget;

    fn validate(&self, pdb: &PodDisruptionBudget) -> Vec<FieldError> {
        let path = Path::new("spec");
        let Some(spec) = &pdb.spec else { return Vec::new() };
        let mut errs = Vec::new();
        if spec.min_available.is_some() && spec.max_unavailable.is_some() {
            errs.push(FieldError::invalid(&path, "", "minAvailable and maxUnavailable cannot be both set"));
        }
        for (field, value) in [("minAvailable", &spec.min_available), ("maxUnavailable", &spec.max_unavailable)] {
            if let Some(value) = value {
                errs.extend(int_or_percent(value, &path.child(field)));
            }
        }
        if let Some(selector) = &spec.selector
            && let Err(e) = Selector::from_label_selector(selector)
        {
            errs.push(FieldError::invalid(path.child("selector"), "", e));
        }
        if let Some(policy) = &spec.unhealthy_pod_eviction_policy
            && !POLICIES.contains(&policy.as_str())
        {
            errs.push(FieldError::not_supported(path.child("unhealthyPodEvictionPolicy"), policy, POLICIES));
        }
        errs
    }
}

/// A non-negative number, or a percentage (`[0-9]+%`) of at most 100%.
fn int_or_percent(value: &IntOrString, path: &Path) -> Vec<FieldError> {
    match value {
        IntOrString::Int(n) if *n < 0 => vec![FieldError::invalid(path, *n, "must be greater than or equal to 0")],
        IntOrString::Int(_) => Vec::new(),
        IntOrString::String(s) => {
            match s.strip_suffix('%').filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())) {
                None => vec![FieldError::invalid(
                    path,
                    s,
                    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                )],
                Some(digits) if digits.parse::<u64>().map_or(true, |p| p > 100) => {
                    vec![FieldError::invalid(path, s, "must not be greater than 100%")]
                }
                Some(_) => Vec::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(spec: serde_json::Value) -> Vec<String> {
        let pdb: PodDisruptionBudget =
            serde_json::from_value(json!({"metadata": {"name": "b"}, "spec": spec})).unwrap();
        PodDisruptionBudgetStrategy.validate(&pdb).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn numbers_and_percentages() {
        assert!(errors(json!({"minAvailable": 2})).is_empty());
        assert!(errors(json!({"maxUnavailable": "100%"})).is_empty());
        assert_eq!(
            errors(json!({"minAvailable": -1})),
            ["spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"]
        );
        assert_eq!(
            errors(json!({"maxUnavailable": "101%"})),
            ["spec.maxUnavailable: Invalid value: \"101%\": must not be greater than 100%"]
        );
        assert!(errors(json!({"minAvailable": "half"}))[0].contains("a valid percent string"));
    }

    #[test]
    fn one_of_min_and_max() {
        assert_eq!(errors(json!({"minAvailable": 1, "maxUnavailable": 1})).len(), 1);
    }

    #[test]
    fn eviction_policies() {
        assert!(errors(json!({"unhealthyPodEvictionPolicy": "AlwaysAllow"})).is_empty());
        assert!(
            errors(json!({"unhealthyPodEvictionPolicy": "Never"}))[0]
                .starts_with("spec.unhealthyPodEvictionPolicy: Unsupported value")
        );
    }
}
