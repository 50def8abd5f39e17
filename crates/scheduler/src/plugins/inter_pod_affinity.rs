//! InterPodAffinity: places pods relative to other pods over a topology (a node label).
//! Required affinity: only into domains that already run a selected pod (or anywhere, for
//! the first of a group that selects itself). Required anti-affinity: never into a domain
//! running a selected pod, and never where a running pod's anti-affinity selects this one.
//! Preferred terms, the pod's and those of running pods that select it, score by weight.

use crate::cache::{Cache, NodeInfo};
use crate::framework::{Filter, PodInfo, Reject, Score};
use crate::terms::{Term, TermKind};
use std::collections::{HashMap, HashSet};

pub struct InterPodAffinity;

/// Per topology key, a number per domain.
type ByDomain = HashMap<String, HashMap<String, i64>>;

#[derive(Default)]
pub struct State {
    /// Domains that running pods' anti-affinity closes to this pod.
    closed: HashMap<String, HashSet<String>>,
    /// Per required affinity term: selected pods per domain.
    affinity: Vec<(String, HashMap<String, i64>)>,
    /// No pod matches the required affinity anywhere, but the pod matches it itself.
    first_of_group: bool,
    /// Per required anti-affinity term: selected pods per domain.
    anti_affinity: Vec<(String, HashMap<String, i64>)>,
    /// Preference per domain, from preferred terms.
    preference: ByDomain,
}

/// Selected pods per domain of the term's topology key.
fn per_domain(term: &Term, cache: &Cache) -> HashMap<String, i64> {
    let mut counts = HashMap::new();
    for (name, n) in cache.selected_per_node(|ns| term.covers(ns, &cache.namespaces), &term.selector) {
        if let Some(domain) = cache.node(name).and_then(|node| node.labels().get(&term.topology_key)) {
            *counts.entry(domain.clone()).or_default() += i64::from(n);
        }
    }
    counts
}

/// Adds `amount` for each pod a running pod's term has on each node, to its domain.
fn add_per_domain(into: &mut ByDomain, term: &Term, nodes: &HashMap<String, u32>, cache: &Cache, amount: i64) {
    for (name, n) in nodes {
        if let Some(domain) = cache.node(name).and_then(|node| node.labels().get(&term.topology_key)) {
            *into.entry(term.topology_key.clone()).or_default().entry(domain.clone()).or_default() += amount * i64::from(*n);
        }
    }
}

impl Filter for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }

    fn pre_filter(&self, pod: &mut PodInfo, cache: &Cache) -> Result<(), Reject> {
        let mut state = State::default();
        for (term, nodes) in cache.placed_terms() {
            if term.kind == TermKind::AntiAffinity && term.selects(&pod.namespace, &pod.labels, &cache.namespaces) {
                let mut closed = ByDomain::new();
                add_per_domain(&mut closed, term, nodes, cache, 1);
                for (key, domains) in closed {
                    state.closed.entry(key).or_default().extend(domains.into_keys());
                }
            }
        }
        for term in &pod.terms {
            match term.kind {
                TermKind::Affinity => state.affinity.push((term.topology_key.clone(), per_domain(term, cache))),
                TermKind::AntiAffinity => state.anti_affinity.push((term.topology_key.clone(), per_domain(term, cache))),
                _ => {}
            }
        }
        let nothing_selected = state.affinity.iter().all(|(_, counts)| counts.is_empty());
        let selects_itself = pod
            .terms
            .iter()
            .filter(|t| t.kind == TermKind::Affinity)
            .all(|t| t.selects(&pod.namespace, &pod.labels, &cache.namespaces));
        state.first_of_group = !state.affinity.is_empty() && nothing_selected && selects_itself;
        pod.state.affinity = state;
        Ok(())
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Reject> {
        let state = &pod.state.affinity;
        let labels = node.labels();
        for (key, domains) in &state.closed {
            if labels.get(key).is_some_and(|d| domains.contains(d)) {
                return Err(Reject::resolvable("node(s) didn't satisfy existing pods anti-affinity rules"));
            }
        }
        if !state.first_of_group {
            for (key, counts) in &state.affinity {
                if labels.get(key).and_then(|d| counts.get(d)).is_none_or(|n| *n == 0) {
                    return Err(Reject::unresolvable("node(s) didn't match pod affinity rules"));
                }
            }
        }
        for (key, counts) in &state.anti_affinity {
            if labels.get(key).and_then(|d| counts.get(d)).is_some_and(|n| *n > 0) {
                return Err(Reject::resolvable("node(s) didn't match pod anti-affinity rules"));
            }
        }
        Ok(())
    }
}

impl Score for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }

    fn pre_score(&self, pod: &mut PodInfo, cache: &Cache, _nodes: &[&NodeInfo]) {
        let mut preference = ByDomain::new();
        for term in pod.terms.iter().filter(|t| t.weight() != 0) {
            for (domain, n) in per_domain(term, cache) {
                *preference.entry(term.topology_key.clone()).or_default().entry(domain).or_default() += term.weight() * n;
            }
        }
        // Running pods' preferences for this pod count too, and their required affinity
        // with kube-scheduler's hardPodAffinityWeight of 1.
        for (term, nodes) in cache.placed_terms() {
            let weight = match term.kind {
                TermKind::Affinity => 1,
                TermKind::AntiAffinity => continue,
                _ => term.weight(),
            };
            if term.selects(&pod.namespace, &pod.labels, &cache.namespaces) {
                add_per_domain(&mut preference, term, nodes, cache, weight);
            }
        }
        pod.state.affinity.preference = preference;
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let labels = node.labels();
        pod.state
            .affinity
            .preference
            .iter()
            .filter_map(|(key, domains)| domains.get(labels.get(key)?))
            .sum()
    }

    /// From the lowest (0) to the highest (100) raw score.
    fn normalize(&self, scores: &mut [i64]) {
        let (min, max) = (scores.iter().copied().min().unwrap_or(0), scores.iter().copied().max().unwrap_or(0));
        for s in scores.iter_mut() {
            *s = if max > min { 100 * (*s - min) / (max - min) } else { 0 };
        }
    }
}
