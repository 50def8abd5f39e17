//! InterPodAffinity: places pods relative to other pods over a topology (a node label).
//! Required affinity: only into domains that already run a selected pod (or anywhere, for
//! the first of a group that selects itself). Required anti-affinity: never into a domain
//! running a selected pod, and never where a running pod's anti-affinity selects this one.
//! Preferred terms, the pod's and those of running pods that select it, score by weight.

use crate::cache::{Cache, NodeInfo};
use crate::framework::{Applies, Filter, PodInfo, Reject, Score};
use crate::terms::{Term, TermKind};
use crate::topology::{Domains, count};

pub struct InterPodAffinity;

#[derive(Default)]
pub struct State {
    /// Domains that running pods' anti-affinity closes to this pod, per topology key.
    closed: Vec<(String, Domains)>,
    /// Per required affinity term: its key and the selected pods per domain.
    affinity: Vec<(String, Vec<Domains>)>,
    /// No pod matches the required affinity anywhere, but the pod matches it itself.
    first_of_group: bool,
    /// Per required anti-affinity term: its key and the selected pods per domain.
    anti_affinity: Vec<(String, Vec<Domains>)>,
    /// Per preferred term (the pod's, or a running pod's that selects it): its key, weight
    /// and the pods counted per domain.
    preference: Vec<(String, i64, Vec<Domains>)>,
}

/// The pods the term selects, per domain of its topology key (tracked by the cache).
fn selected(term: &Term, cache: &Cache) -> Vec<Domains> {
    let covers = |ns: &str| term.covers(ns, &cache.namespaces);
    cache.selected(covers, &term.selector).filter_map(|g| g.in_key(&term.topology_key)).collect()
}

fn domain<'a>(node: &'a NodeInfo, key: &str) -> Option<&'a String> {
    node.labels().get(key)
}

impl Filter for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }

    fn pre_filter(&self, pod: &mut PodInfo, cache: &Cache) -> Result<Applies, Reject> {
        let mut state = State::default();
        for (term, group) in cache.placed_terms() {
            if term.kind == TermKind::AntiAffinity
                && term.selects(&pod.namespace, &pod.labels, &cache.namespaces)
                && let Some(domains) = group.in_key(&term.topology_key)
            {
                state.closed.push((term.topology_key.clone(), domains));
            }
        }
        for term in &pod.terms {
            match term.kind {
                TermKind::Affinity => state.affinity.push((term.topology_key.clone(), selected(term, cache))),
                TermKind::AntiAffinity => state.anti_affinity.push((term.topology_key.clone(), selected(term, cache))),
                _ => {}
            }
        }
        let nothing_selected = state.affinity.iter().all(|(_, groups)| groups.is_empty());
        let selects_itself = pod
            .terms
            .iter()
            .filter(|t| t.kind == TermKind::Affinity)
            .all(|t| t.selects(&pod.namespace, &pod.labels, &cache.namespaces));
        state.first_of_group = !state.affinity.is_empty() && nothing_selected && selects_itself;
        let applies =
            Applies::when(!(state.closed.is_empty() && state.affinity.is_empty() && state.anti_affinity.is_empty()));
        pod.state.affinity = state;
        Ok(applies)
    }

    /// In kube-scheduler's order: the pod's affinity, its anti-affinity, then that of
    /// running pods (the first that fails names the reason).
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Reject> {
        let state = &pod.state.affinity;
        if !state.first_of_group {
            for (key, groups) in &state.affinity {
                if domain(node, key).is_none_or(|d| count(groups, d) == 0) {
                    return Err(Reject::unresolvable("node(s) didn't match pod affinity rules"));
                }
            }
        }
        for (key, groups) in &state.anti_affinity {
            if domain(node, key).is_some_and(|d| count(groups, d) > 0) {
                return Err(Reject::resolvable("node(s) didn't match pod anti-affinity rules"));
            }
        }
        for (key, domains) in &state.closed {
            if domain(node, key).is_some_and(|d| domains.contains_key(d)) {
                return Err(Reject::resolvable("node(s) didn't satisfy existing pods anti-affinity rules"));
            }
        }
        Ok(())
    }
}

impl Score for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }

    fn pre_score(&self, pod: &mut PodInfo, cache: &Cache, _nodes: &[&NodeInfo]) -> Applies {
        let mut preference = Vec::new();
        for term in pod.terms.iter().filter(|t| t.weight() != 0) {
            preference.push((term.topology_key.clone(), term.weight(), selected(term, cache)));
        }
        // Running pods' preferences for this pod count too, and their required affinity
        // with kube-scheduler's hardPodAffinityWeight of 1.
        for (term, group) in cache.placed_terms() {
            let weight = match term.kind {
                TermKind::Affinity => 1,
                TermKind::AntiAffinity => continue,
                _ => term.weight(),
            };
            if term.selects(&pod.namespace, &pod.labels, &cache.namespaces)
                && let Some(domains) = group.in_key(&term.topology_key)
            {
                preference.push((term.topology_key.clone(), weight, vec![domains]));
            }
        }
        let applies = Applies::when(!preference.is_empty());
        pod.state.affinity.preference = preference;
        applies
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let preference = &pod.state.affinity.preference;
        preference.iter().filter_map(|(key, weight, groups)| Some(weight * count(groups, domain(node, key)?))).sum()
    }

    /// From the lowest (0) to the highest (100) raw score.
    fn normalize(&self, scores: &mut [i64]) {
        let (min, max) = (scores.iter().copied().min().unwrap_or(0), scores.iter().copied().max().unwrap_or(0));
        for s in scores.iter_mut() {
            *s = if max > min { 100 * (*s - min) / (max - min) } else { 0 };
        }
    }
}
