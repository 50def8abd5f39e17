//! One pod per node that should run one, as kube's DaemonSet controller keeps them: a node
//! that should run a pod and has none gets one; on a node where pods may stay, failed pods
//! are deleted (with [`Backoff`]) so that they are replaced, succeeded ones too, and of
//! several running pods only the oldest stays (during a surge, the oldest of the current
//! revision and, while that one is not yet available and the old one is ready, the oldest
//! old one); a node where pods may not stay loses them. Pods meant for nodes that no longer
//! exist are deleted only while unscheduled: scheduled ones are the pod garbage collector's.

use super::backoff::Backoff;
use super::eligibility::{Fit, target_node};
use crate::controller_revision::REVISION_HASH_LABEL;
use crate::pods::{self, is_available, is_ready, is_terminal};
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A DaemonSet's pods by the node they run on or are meant for.
pub type PodsByNode = BTreeMap<String, Vec<Arc<Pod>>>;

/// Groups pods by node. Pods that finished and are being deleted are left out unless
/// `with_deleted_finished`: nothing remains to do with them but count them in the status.
pub fn by_node(pods: &[Arc<Pod>], with_deleted_finished: bool) -> PodsByNode {
    let mut grouped = PodsByNode::new();
    for pod in pods {
        if !with_deleted_finished && is_terminal(pod) && pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Some(node) = target_node(pod) {
            grouped.entry(node.to_string()).or_default().push(pod.clone());
        }
    }
    grouped
}

/// Scheduled pods first, then the oldest, then by name: the order in which daemon pods on
/// one node are kept.
pub fn oldest_first(pods: &mut [Arc<Pod>]) {
    pods.sort_by_cached_key(|p| {
        let created = p.metadata.creation_timestamp.as_ref().map(pods::timestamp);
        (pods::node_name(p).is_empty(), created, p.metadata.name.clone())
    });
}

/// Whether a pod runs the revision with this hash.
pub fn is_updated(pod: &Pod, hash: &str) -> bool {
    !hash.is_empty() && pod.metadata.labels.as_ref().and_then(|l| l.get(REVISION_HASH_LABEL)).is_some_and(|h| h == hash)
}

/// What the DaemonSet should change.
#[derive(Default)]
pub struct Changes {
    /// Nodes to create a pod on.
    pub create_on: Vec<String>,
    pub delete: Vec<Arc<Pod>>,
    /// Failed pods among those deleted, reported as FailedDaemonPod events.
    pub failed: Vec<(Arc<Pod>, String)>,
    /// When to look again for failed pods still in back-off.
    pub retry_after: Option<Duration>,
}

/// What the decisions depend on beyond the nodes and pods.
pub struct Rules<'a> {
    /// Whether the update strategy lets two pods share a node (maxSurge above zero).
    pub surge: bool,
    pub hash: &'a str,
    pub min_ready_seconds: i32,
    pub now: DateTime<Utc>,
    pub clock: Instant,
    pub backoff: &'a Backoff,
    /// Prefix of the back-off keys: the DaemonSet's uid.
    pub owner: &'a str,
}

impl Rules<'_> {
    /// The changes that bring every node to its one pod (kube's `manage`).
    pub fn manage(&self, fits: &BTreeMap<String, Fit>, pods: &PodsByNode) -> Changes {
        let mut changes = Changes::default();
        for (node, fit) in fits {
            self.node(node, *fit, pods.get(node).map(Vec::as_slice).unwrap_or_default(), &mut changes);
        }
        let missing_nodes = pods.iter().filter(|(node, _)| !fits.contains_key(*node));
        let unscheduled = missing_nodes
            .flat_map(|(_, pods)| pods)
            .filter(|p| pods::node_name(p).is_empty() && p.metadata.deletion_timestamp.is_none());
        changes.delete.extend(unscheduled.cloned());
        changes
    }

    fn node(&self, node: &str, fit: Fit, pods: &[Arc<Pod>], changes: &mut Changes) {
        if fit.should_run && pods.is_empty() {
            changes.create_on.push(node.to_string());
            return;
        }
        let live = pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none());
        if !fit.may_stay {
            changes.delete.extend(live.cloned());
            return;
        }
        let mut running = Vec::new();
        for pod in live {
            match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
                Some("Failed") => {
                    let key = format!("{}/{node}", self.owner);
                    if let Some(wait) = self.backoff.remaining(&key, self.clock) {
                        changes.retry_after = Some(changes.retry_after.map_or(wait, |w| w.min(wait)));
                        continue;
                    }
                    self.backoff.step(&key, self.clock);
                    changes.failed.push((pod.clone(), node.to_string()));
                    changes.delete.push(pod.clone());
                }
                Some("Succeeded") => changes.delete.push(pod.clone()),
                _ => running.push(pod.clone()),
            }
        }
        oldest_first(&mut running);
        if !self.surge {
            changes.delete.extend(running.into_iter().skip(1));
            return;
        }
        if running.is_empty() {
            if fit.should_run {
                changes.create_on.push(node.to_string());
            }
            return;
        }
        // Surging: the oldest pod of the current revision and the oldest old one may both
        // stay, the old one only while it is ready and the new one not yet available.
        let (mut newest, mut oldest) = (None, None);
        for pod in running {
            let slot = if is_updated(&pod, self.hash) { &mut newest } else { &mut oldest };
            if slot.is_none() {
                *slot = Some(pod);
            } else {
                changes.delete.push(pod);
            }
        }
        if let (Some(new), Some(old)) = (newest, oldest)
            && (!is_ready(&old) || is_available(&new, self.min_ready_seconds, self.now))
        {
            changes.delete.push(old);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    pub fn pod(name: &str, node: &str, hash: &str, phase: &str, ready: bool, created: &str) -> Arc<Pod> {
        let ready = if ready { "True" } else { "False" };
        Arc::new(serde_json::from_value(json!({
            "metadata": {"name": name, "uid": name, "creationTimestamp": created, "labels": {REVISION_HASH_LABEL: hash}},
            "spec": {"nodeName": node, "containers": []},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        })).unwrap())
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<String> {
        pods.iter().map(|p| p.metadata.name.clone().unwrap()).collect()
    }

    fn fits(entries: &[(&str, bool, bool)]) -> BTreeMap<String, Fit> {
        entries
            .iter()
            .map(|(n, should_run, may_stay)| (n.to_string(), Fit { should_run: *should_run, may_stay: *may_stay }))
            .collect()
    }

    fn rules(backoff: &Backoff, surge: bool) -> Rules<'_> {
        Rules { surge, hash: "new", min_ready_seconds: 0, now: Utc::now(), clock: Instant::now(), backoff, owner: "ds" }
    }

    #[test]
    fn one_pod_per_node_that_should_run_one() {
        let backoff = Backoff::default();
        let pods = by_node(
            &[
                pod("a1", "a", "new", "Running", true, "2026-01-01T00:00:01Z"),
                pod("a0", "a", "new", "Running", true, "2026-01-01T00:00:00Z"),
                pod("c1", "c", "new", "Running", true, "2026-01-01T00:00:00Z"),
                pod("d1", "d", "new", "Running", true, "2026-01-01T00:00:00Z"),
            ],
            false,
        );
        let changes = rules(&backoff, false)
            .manage(&fits(&[("a", true, true), ("b", true, true), ("c", false, false), ("d", false, true)]), &pods);
        assert_eq!(changes.create_on, ["b"]);
        // The younger of two on a; the pod on c, which may not stay; d's may stay.
        assert_eq!(names(&changes.delete), ["a1", "c1"]);
    }

    #[test]
    fn failed_pods_are_replaced_with_back_off() {
        let backoff = Backoff::default();
        let pods = by_node(&[pod("a0", "a", "new", "Failed", false, "2026-01-01T00:00:00Z")], false);
        let nodes = fits(&[("a", true, true)]);
        let first = rules(&backoff, false).manage(&nodes, &pods);
        assert_eq!(names(&first.delete), ["a0"]);
        assert_eq!(first.failed.len(), 1);
        let again = rules(&backoff, false).manage(&nodes, &pods);
        assert!(again.delete.is_empty());
        assert!(again.retry_after.is_some());
    }

    #[test]
    fn surging_keeps_the_old_pod_until_the_new_one_is_available() {
        let backoff = Backoff::default();
        let nodes = fits(&[("a", true, true)]);
        let old = pod("old", "a", "old", "Running", true, "2026-01-01T00:00:00Z");
        let waiting = by_node(&[old.clone(), pod("new", "a", "new", "Running", false, "2026-01-01T00:00:01Z")], false);
        assert!(rules(&backoff, true).manage(&nodes, &waiting).delete.is_empty());
        let available = by_node(&[old, pod("new", "a", "new", "Running", true, "2026-01-01T00:00:01Z")], false);
        assert_eq!(names(&rules(&backoff, true).manage(&nodes, &available).delete), ["old"]);
    }
}
