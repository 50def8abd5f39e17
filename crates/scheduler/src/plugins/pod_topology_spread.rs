//! PodTopologySpread: keeps the pods a constraint selects evenly spread over the domains of
//! a topology key (zones, hostnames). DoNotSchedule constraints filter: a node is refused
//! when placing the pod there would make its domain exceed the least-populated domain by
//! more than maxSkew (with fewer domains than minDomains, the least is taken as zero).
//! ScheduleAnyway constraints score: the fewer selected pods in a node's domain, the better.
//! Which nodes count follows nodeAffinityPolicy (Honor by default) and nodeTaintsPolicy
//! (Ignore by default).

use super::node_affinity;
use super::taint_toleration::untolerated;
use crate::cache::{Cache, NodeInfo};
use crate::framework::{Applies, Filter, PodInfo, Reject, Score};
use crate::selector::Selector;
use crate::topology::{Domains, count};
use k8s_openapi::api::core::v1::TopologySpreadConstraint;
use std::collections::HashMap;
use std::sync::Arc;

pub struct PodTopologySpread;

/// One constraint with the pods it counts, per domain.
pub struct Spread {
    key: String,
    max_skew: i64,
    /// Whether the incoming pod is itself one of the pods the constraint selects.
    self_match: i64,
    /// Selected pods per domain (value of `key`), over the nodes that count.
    counts: Vec<Domains>,
    /// How many domains there are.
    domains: usize,
    /// The fewest selected pods in any domain.
    min: i64,
}

#[derive(Default)]
pub struct State {
    hard: Vec<Spread>,
    soft: Vec<Spread>,
}

fn constraints<'a>(pod: &'a PodInfo, when: &'a str) -> impl Iterator<Item = &'a TopologySpreadConstraint> {
    let all = pod.spec().topology_spread_constraints.as_deref().unwrap_or_default();
    all.iter().filter(move |c| c.when_unsatisfiable == when)
}

/// The topology keys of the pod's constraints, for the cache to count pods by.
pub fn keys(pod: &PodInfo) -> impl Iterator<Item = &str> {
    pod.spec().topology_spread_constraints.iter().flatten().map(|c| c.topology_key.as_str())
}

/// Whether a node's pods count for the pod's constraints, under their inclusion policies.
fn counts_node(pod: &PodInfo, c: &TopologySpreadConstraint, node: &NodeInfo) -> bool {
    node.labels().contains_key(&c.topology_key)
        && (c.node_affinity_policy.as_deref() == Some("Ignore") || node_affinity::matches(pod, node))
        && (c.node_taints_policy.as_deref() != Some("Honor") || untolerated(pod, node).is_none())
}

/// Whether every node with the key counts: the pod's node affinity does not narrow them
/// (or is ignored), nor do taints.
fn every_node_counts(pod: &PodInfo, c: &TopologySpreadConstraint) -> bool {
    let spec = pod.spec();
    let narrowed = spec.node_selector.as_ref().is_some_and(|s| !s.is_empty())
        || spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .is_some_and(|n| n.required_during_scheduling_ignored_during_execution.is_some());
    (c.node_affinity_policy.as_deref() == Some("Ignore") || !narrowed)
        && c.node_taints_policy.as_deref() != Some("Honor")
}

fn spread(pod: &PodInfo, c: &TopologySpreadConstraint, cache: &Cache) -> Spread {
    let selector = Selector::new(c.label_selector.as_ref()).with_label_keys(c.match_label_keys.as_ref(), &pod.labels);
    let key = &c.topology_key;
    let (counts, min, domains) = if every_node_counts(pod, c) {
        // Counted by the cache as pods come and go: a lookup per domain.
        let counts: Vec<Domains> =
            cache.selected(|ns| ns == pod.namespace, &selector).filter_map(|g| g.in_key(key)).collect();
        let domains = cache.domains(key).map(|d| d.keys().collect::<Vec<_>>()).unwrap_or_default();
        let min = domains.iter().map(|d| count(&counts, d)).min().unwrap_or(0);
        (counts, min, domains.len())
    } else {
        // Only some nodes count: visit them.
        let mut per_domain: HashMap<String, i64> = HashMap::new();
        for node in cache.nodes.iter().filter(|n| counts_node(pod, c, n)) {
            per_domain.entry(node.labels()[key].clone()).or_default();
        }
        for group in cache.selected(|ns| ns == pod.namespace, &selector) {
            for (name, n) in &group.nodes {
                let Some(node) = cache.node(name).filter(|node| counts_node(pod, c, node)) else { continue };
                *per_domain.entry(node.labels()[key].clone()).or_default() += i64::from(*n);
            }
        }
        let min = per_domain.values().copied().min().unwrap_or(0);
        let domains = per_domain.len();
        (vec![Arc::new(per_domain)], min, domains)
    };
    let too_few_domains = c.min_domains.is_some_and(|m| (domains as i64) < i64::from(m));
    Spread {
        key: key.clone(),
        max_skew: i64::from(c.max_skew),
        self_match: i64::from(selector.matches(&pod.labels)),
        counts,
        domains,
        min: if too_few_domains { 0 } else { min },
    }
}

impl Filter for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }

    fn pre_filter(&self, pod: &mut PodInfo, cache: &Cache) -> Result<Applies, Reject> {
        pod.state.spread.hard = constraints(pod, "DoNotSchedule").map(|c| spread(pod, c, cache)).collect();
        Ok(Applies::when(!pod.state.spread.hard.is_empty()))
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Reject> {
        for s in &pod.state.spread.hard {
            let Some(domain) = node.labels().get(&s.key) else {
                return Err(Reject::unresolvable(
                    "node(s) didn't match pod topology spread constraints (missing required label)",
                ));
            };
            let skew = count(&s.counts, domain) + s.self_match - s.min;
            if skew > s.max_skew {
                return Err(Reject::resolvable("node(s) didn't match pod topology spread constraints"));
            }
        }
        Ok(())
    }
}

impl Score for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }

    fn pre_score(&self, pod: &mut PodInfo, cache: &Cache, _nodes: &[&NodeInfo]) -> Applies {
        pod.state.spread.soft = constraints(pod, "ScheduleAnyway").map(|c| spread(pod, c, cache)).collect();
        Applies::when(!pod.state.spread.soft.is_empty())
    }

    /// Selected pods in the node's domains, each constraint weighed by the log of its
    /// number of domains (as kube-scheduler weighs them), in thousandths; fewer is better.
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let mut total = 0.0;
        for s in &pod.state.spread.soft {
            let Some(domain) = node.labels().get(&s.key) else { return -1 };
            let weight = ((s.domains + 2) as f64).ln();
            total += count(&s.counts, domain) as f64 * weight + (s.max_skew - 1) as f64;
        }
        (total * 1000.0) as i64
    }

    /// Fewest pods scores 100; nodes without a constraint's key (marked -1) score 0.
    fn normalize(&self, scores: &mut [i64]) {
        let counted = scores.iter().copied().filter(|s| *s >= 0);
        let (min, max) = (counted.clone().min().unwrap_or(0), counted.max().unwrap_or(0));
        for s in scores.iter_mut() {
            *s = match *s {
                s if s < 0 => 0,
                _ if max == 0 => 100,
                s => 100 * (max + min - s) / max,
            };
        }
    }
}
