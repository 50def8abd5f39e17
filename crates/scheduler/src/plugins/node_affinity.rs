//! NodeAffinity: the pod's nodeSelector and required node affinity terms must match the node
//! (terms are alternatives, expressions within a term all hold); preferred terms score by
//! the weights of those that match. Terms that name nodes by `metadata.name` narrow the
//! search to those nodes before any is visited, as DaemonSet pods are placed. The matching
//! itself ([`spec_matches`]) is a pure function over a pod spec and a node's labels and name,
//! which the DaemonSet controller asks as well to decide where its pods belong.

use crate::cache::{Cache, NodeInfo};
use crate::framework::{Applies, Filter, PodInfo, Reject, Score, normalize_by_max};
use crate::selector::Labels;
use k8s_openapi::api::core::v1::{NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodSpec};
use std::collections::HashSet;

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

fn term_matches(term: &NodeSelectorTerm, labels: &Labels, name: &str) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    expressions.iter().all(|r| requirement_holds(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| requirement_holds(r, (r.key == "metadata.name").then_some(name)))
}

/// Whether the node satisfies a node selector (any of its terms), as volume node affinity
/// and required node affinity use them.
pub fn selector_matches(selector: &NodeSelector, node: &NodeInfo) -> bool {
    selector.node_selector_terms.iter().any(|t| term_matches(t, node.labels(), &node.name))
}

fn required(spec: &PodSpec) -> Option<&NodeSelector> {
    let affinity = spec.affinity.as_ref()?.node_affinity.as_ref()?;
    affinity.required_during_scheduling_ignored_during_execution.as_ref()
}

/// Whether a node with these labels and this name satisfies the pod's nodeSelector and
/// required node affinity.
pub fn spec_matches(spec: &PodSpec, labels: &Labels, name: &str) -> bool {
    spec.node_selector.iter().flatten().all(|(k, v)| labels.get(k) == Some(v))
        && required(spec).is_none_or(|r| r.node_selector_terms.iter().any(|t| term_matches(t, labels, name)))
}

/// Whether the node satisfies the pod's nodeSelector and required node affinity.
pub fn matches(pod: &PodInfo, node: &NodeInfo) -> bool {
    spec_matches(pod.spec(), node.labels(), &node.name)
}

/// The node names every required term pins the pod to with `metadata.name In (...)`, if
/// every term does.
fn named_nodes(pod: &PodInfo) -> Option<HashSet<String>> {
    let terms = &required(pod.spec())?.node_selector_terms;
    let mut names = HashSet::new();
    for term in terms {
        let pinned = term.match_fields.iter().flatten().find(|r| r.key == "metadata.name" && r.operator == "In")?;
        names.extend(pinned.values.iter().flatten().cloned());
    }
    (!terms.is_empty()).then_some(names)
}

impl Filter for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn pre_filter(&self, pod: &mut PodInfo, _cache: &Cache) -> Result<Applies, Reject> {
        pod.state.node_names = named_nodes(pod);
        let selector = pod.spec().node_selector.as_ref().is_some_and(|s| !s.is_empty());
        Ok(Applies::when(selector || required(pod.spec()).is_some()))
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Reject> {
        if matches(pod, node) {
            Ok(())
        } else {
            Err(Reject::unresolvable("node(s) didn't match Pod's node affinity/selector"))
        }
    }
}

impl Score for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn pre_score(&self, pod: &mut PodInfo, _cache: &Cache, _nodes: &[&NodeInfo]) -> Applies {
        let affinity = pod.spec().affinity.as_ref().and_then(|a| a.node_affinity.as_ref());
        Applies::when(affinity.is_some_and(|a| a.preferred_during_scheduling_ignored_during_execution.is_some()))
    }

    /// The weights of the preferred terms the node matches.
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(affinity) = pod.spec().affinity.as_ref().and_then(|a| a.node_affinity.as_ref()) else { return 0 };
        let preferred = affinity.preferred_during_scheduling_ignored_during_execution.as_deref().unwrap_or_default();
        preferred
            .iter()
            .filter(|p| term_matches(&p.preference, node.labels(), &node.name))
            .map(|p| i64::from(p.weight))
            .sum()
    }

    fn normalize(&self, scores: &mut [i64]) {
        normalize_by_max(scores, false);
    }
}
