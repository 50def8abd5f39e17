//! Label selectors as pod affinity and topology spread use them: matchLabels and
//! matchExpressions (In, NotIn, Exists, DoesNotExist), all of which must hold. An absent
//! selector matches nothing; an empty one matches everything.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use std::collections::BTreeMap;

pub type Labels = BTreeMap<String, String>;

/// A selector compiled once per scheduling cycle.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    requirements: Vec<(String, Op, Vec<String>)>,
    /// An absent selector, which selects nothing.
    nothing: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Selector {
    pub fn new(selector: Option<&LabelSelector>) -> Selector {
        let Some(selector) = selector else { return Selector { requirements: Vec::new(), nothing: true } };
        let mut requirements: Vec<_> =
            selector.match_labels.iter().flatten().map(|(k, v)| (k.clone(), Op::In, vec![v.clone()])).collect();
        for LabelSelectorRequirement { key, operator, values } in selector.match_expressions.iter().flatten() {
            let op = match operator.as_str() {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                // The API server refuses other operators; select nothing rather than everything.
                _ => return Selector { requirements: Vec::new(), nothing: true },
            };
            requirements.push((key.clone(), op, values.clone().unwrap_or_default()));
        }
        Selector { requirements, nothing: false }
    }

    /// Adds `key In (value)` for each matchLabelKeys key the pod has, as topology spread and
    /// pod affinity take them from the incoming pod.
    pub fn with_label_keys(mut self, keys: Option<&Vec<String>>, labels: &Labels) -> Selector {
        for key in keys.into_iter().flatten() {
            if let Some(value) = labels.get(key) {
                self.requirements.push((key.clone(), Op::In, vec![value.clone()]));
            }
        }
        self
    }

    /// Adds `key NotIn (value)` for each mismatchLabelKeys key the pod has.
    pub fn without_label_keys(mut self, keys: Option<&Vec<String>>, labels: &Labels) -> Selector {
        for key in keys.into_iter().flatten() {
            if let Some(value) = labels.get(key) {
                self.requirements.push((key.clone(), Op::NotIn, vec![value.clone()]));
            }
        }
        self
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        !self.nothing
            && self.requirements.iter().all(|(key, op, values)| {
                let value = labels.get(key);
                match op {
                    Op::In => value.is_some_and(|v| values.contains(v)),
                    Op::NotIn => value.is_none_or(|v| !values.contains(v)),
                    Op::Exists => value.is_some(),
                    Op::DoesNotExist => value.is_none(),
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn selectors_match_as_kubernetes_matches_them() {
        let s: LabelSelector = serde_json::from_value(json!({"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}, {"key": "env", "operator": "Exists"}]}))
        .unwrap();
        let s = Selector::new(Some(&s));
        assert!(s.matches(&labels(&[("app", "web"), ("env", "prod")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "prod"), ("tier", "db")])));
        assert!(!s.matches(&labels(&[("app", "web")])));
        assert!(Selector::new(Some(&LabelSelector::default())).matches(&labels(&[])));
        assert!(!Selector::new(None).matches(&labels(&[("app", "web")])));
    }
}
