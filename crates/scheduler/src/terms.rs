//! Pod affinity and anti-affinity terms, compiled once: which pods a term selects (labels
//! and namespaces) and over which topology (a node label) it counts them.

use crate::selector::{Labels, Selector};
use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm};
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TermKind {
    /// Required affinity: the pod goes only where selected pods run.
    Affinity,
    /// Required anti-affinity: the pod goes only where no selected pod runs.
    AntiAffinity,
    /// Preferred affinity with its weight.
    PreferAffinity(i32),
    /// Preferred anti-affinity with its weight.
    PreferAntiAffinity(i32),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Term {
    pub kind: TermKind,
    pub topology_key: String,
    pub selector: Selector,
    /// Namespaces named by the term; with `namespace_selector`, those it selects as well.
    pub namespaces: Vec<String>,
    pub namespace_selector: Option<Selector>,
}

impl Term {
    fn new(kind: TermKind, term: &PodAffinityTerm, namespace: &str, labels: &Labels) -> Term {
        let mut namespaces = term.namespaces.clone().unwrap_or_default();
        let namespace_selector = term.namespace_selector.as_ref().map(|s| Selector::new(Some(s)));
        // Neither namespaces nor a selector: the pod's own namespace.
        if namespaces.is_empty() && namespace_selector.is_none() {
            namespaces.push(namespace.to_string());
        }
        let selector = Selector::new(term.label_selector.as_ref())
            .with_label_keys(term.match_label_keys.as_ref(), labels)
            .without_label_keys(term.mismatch_label_keys.as_ref(), labels);
        Term { kind, topology_key: term.topology_key.clone(), selector, namespaces, namespace_selector }
    }

    /// Whether the term selects a pod with these labels in this namespace.
    pub fn selects(&self, namespace: &str, labels: &Labels, namespace_labels: &HashMap<String, Labels>) -> bool {
        self.covers(namespace, namespace_labels) && self.selector.matches(labels)
    }

    pub fn covers(&self, namespace: &str, namespace_labels: &HashMap<String, Labels>) -> bool {
        self.namespaces.iter().any(|n| n == namespace)
            || self
                .namespace_selector
                .as_ref()
                .is_some_and(|s| namespace_labels.get(namespace).is_some_and(|l| s.matches(l)))
    }

    pub fn weight(&self) -> i64 {
        match self.kind {
            TermKind::PreferAffinity(w) => i64::from(w),
            TermKind::PreferAntiAffinity(w) => -i64::from(w),
            TermKind::Affinity | TermKind::AntiAffinity => 0,
        }
    }
}

/// Every affinity and anti-affinity term of a pod.
pub fn pod_terms(pod: &Pod) -> Vec<Term> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let empty = Labels::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    let Some(affinity) = pod.spec.as_ref().and_then(|s| s.affinity.as_ref()) else { return Vec::new() };
    let mut terms = Vec::new();
    let sides = [
        (
            affinity.pod_affinity.as_ref().map(|a| {
                (
                    &a.required_during_scheduling_ignored_during_execution,
                    &a.preferred_during_scheduling_ignored_during_execution,
                )
            }),
            false,
        ),
        (
            affinity.pod_anti_affinity.as_ref().map(|a| {
                (
                    &a.required_during_scheduling_ignored_during_execution,
                    &a.preferred_during_scheduling_ignored_during_execution,
                )
            }),
            true,
        ),
    ];
    for (side, anti) in sides {
        let Some((required, preferred)) = side else { continue };
        for term in required.iter().flatten() {
            let kind = if anti { TermKind::AntiAffinity } else { TermKind::Affinity };
            terms.push(Term::new(kind, term, namespace, labels));
        }
        for weighted in preferred.iter().flatten() {
            let kind = if anti {
                TermKind::PreferAntiAffinity(weighted.weight)
            } else {
                TermKind::PreferAffinity(weighted.weight)
            };
            terms.push(Term::new(kind, &weighted.pod_affinity_term, namespace, labels));
        }
    }
    terms
}
