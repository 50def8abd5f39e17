//! A DaemonSet's status as Kubernetes counts it, node by node over the nodes that exist:
//! desiredNumberScheduled (nodes that should run a pod), currentNumberScheduled (those
//! that have one), numberMisscheduled (nodes with a pod that should run none), and, judged
//! by the oldest pod on each node that should run one, numberReady, numberAvailable (ready
//! for minReadySeconds), updatedNumberScheduled (of the current revision) and
//! numberUnavailable (desired less available).

use super::eligibility::Fit;
use super::placement::{PodsByNode, is_updated, oldest_first};
use crate::pods::{is_available, is_ready};
use crate::status::count;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub desired: usize,
    pub current: usize,
    pub misscheduled: usize,
    pub ready: usize,
    pub available: usize,
    pub updated: usize,
}

/// The counts over every node, from all the DaemonSet's pods (finished ones included).
pub fn counts(
    fits: &BTreeMap<String, Fit>,
    pods: &PodsByNode,
    hash: &str,
    min_ready_seconds: i32,
    now: DateTime<Utc>,
) -> Counts {
    let mut c = Counts::default();
    for (node, fit) in fits {
        let on_node = pods.get(node).filter(|p| !p.is_empty());
        match (fit.should_run, on_node) {
            (true, None) => c.desired += 1,
            (true, Some(on_node)) => {
                c.desired += 1;
                c.current += 1;
                let mut on_node = on_node.clone();
                oldest_first(&mut on_node);
                let pod = &on_node[0];
                if is_ready(pod) {
                    c.ready += 1;
                    c.available += usize::from(is_available(pod, min_ready_seconds, now));
                }
                c.updated += usize::from(is_updated(pod, hash));
            }
            (false, Some(_)) => c.misscheduled += 1,
            (false, None) => {}
        }
    }
    c
}

impl Counts {
    /// The status fields as Kubernetes serializes them (the first four always, the rest
    /// left out when zero); observedGeneration only when this pass acted on the spec.
    pub fn to_status(&self, observed_generation: Option<i64>) -> Value {
        let mut status = json!({
            "desiredNumberScheduled": self.desired,
            "currentNumberScheduled": self.current,
            "numberMisscheduled": self.misscheduled,
            "numberReady": self.ready,
            "numberAvailable": count(self.available),
            "updatedNumberScheduled": count(self.updated),
            "numberUnavailable": count(self.desired.saturating_sub(self.available)),
        });
        if let Some(generation) = observed_generation {
            status["observedGeneration"] = json!(generation);
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemonset::placement::{by_node, tests::pod};

    #[test]
    fn counted_by_the_oldest_pod_of_each_node() {
        let fit = |should_run| Fit { should_run, may_stay: should_run };
        let fits: BTreeMap<String, Fit> = [("a", fit(true)), ("b", fit(true)), ("c", fit(true)), ("d", fit(false))]
            .into_iter()
            .map(|(n, f)| (n.to_string(), f))
            .collect();
        let pods = by_node(
            &[
                pod("a-young", "a", "new", "Running", true, "2026-01-01T00:00:05Z"),
                pod("a-old", "a", "old", "Running", false, "2026-01-01T00:00:00Z"),
                pod("b", "b", "new", "Running", true, "2026-01-01T00:00:00Z"),
                pod("d", "d", "new", "Running", true, "2026-01-01T00:00:00Z"),
            ],
            true,
        );
        let c = counts(&fits, &pods, "new", 0, Utc::now());
        assert_eq!(c, Counts { desired: 3, current: 2, misscheduled: 1, ready: 1, available: 1, updated: 1 });
        let status = c.to_status(Some(4));
        assert_eq!(status["numberUnavailable"], 2);
        assert_eq!(status["observedGeneration"], 4);
        assert!(Counts::default().to_status(None)["numberAvailable"].is_null());
        assert_eq!(Counts::default().to_status(None)["numberReady"], 0);
    }
}
