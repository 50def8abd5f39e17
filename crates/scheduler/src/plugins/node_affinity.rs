//! NodeAffinity: the pod's nodeSelector and required node affinity terms must match the node
//! (terms are alternatives, expressions within a term all hold); preferred terms score by
//! the weights of those that match.

use crate::cache::NodeInfo;
use crate::framework::{Filter, PodInfo, Score};
use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};
use std::collections::BTreeMap;

pub struct NodeAffinity;

fn requirement_holds(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let number = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => matches!((value.and_then(number), values.first().and_then(|x| number(x))), (Some(v), Some(x)) if v > x),
        "Lt" => matches!((value.and_then(number), values.first().and_then(|x| number(x))), (Some(v), Some(x)) if v < x),
        _ => false,
    }
}

fn term_matches(term: &NodeSelectorTerm, labels: &BTreeMap<String, String>, name: &str) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    expressions.iter().all(|r| requirement_holds(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| requirement_holds(r, (r.key == "metadata.name").then_some(name)))
}

fn labels(node: &NodeInfo) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    node.node.metadata.labels.as_ref().unwrap_or(&EMPTY)
}

impl Filter for NodeAffinity {
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), String> {
        let labels = labels(node);
        let spec = pod.spec();
        let selector_ok = spec.node_selector.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
        let required = spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| n.required_during_scheduling_ignored_during_execution.as_ref());
        let affinity_ok = required.is_none_or(|r| r.node_selector_terms.iter().any(|t| term_matches(t, labels, node.name())));
        if selector_ok && affinity_ok { Ok(()) } else { Err("node(s) didn't match Pod's node affinity/selector".into()) }
    }
}

impl Score for NodeAffinity {
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let preferred = pod
            .spec()
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| n.preferred_during_scheduling_ignored_during_execution.as_deref())
            .unwrap_or_default();
        let total: i64 = preferred.iter().map(|p| i64::from(p.weight)).sum();
        if total == 0 {
            return 0;
        }
        let matched: i64 = preferred
            .iter()
            .filter(|p| term_matches(&p.preference, labels(node), node.name()))
            .map(|p| i64::from(p.weight))
            .sum();
        matched * 100 / total
    }
}
