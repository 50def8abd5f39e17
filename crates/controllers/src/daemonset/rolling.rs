//! RollingUpdate, as kube's DaemonSet controller rolls pods to a new revision. Without
//! surge, old pods are deleted (and [`super::placement`] creates their replacements) only
//! while fewer than maxUnavailable of the nodes that should run a pod lack an available
//! one; old pods that are unavailable anyway go at once. With maxSurge, a new pod is created
//! beside an old available one on at most maxSurge nodes at a time (at once where the old
//! one is unavailable), and the old pod goes when the new one is available.

use super::eligibility::Fit;
use super::placement::{PodsByNode, is_updated};
use crate::int_or_percent::scaled;
use crate::pods::is_available;
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Whether the DaemonSet rolls its pods to new revisions itself (RollingUpdate, the
/// default) rather than on deletion (OnDelete).
pub fn is_rolling(ds: &DaemonSet) -> bool {
    let strategy = ds.spec.update_strategy.as_ref();
    strategy.and_then(|s| s.type_.as_deref()).unwrap_or("RollingUpdate") == "RollingUpdate"
}

/// (maxSurge, maxUnavailable) as numbers of pods out of `desired`, percentages rounded up;
/// both zero would stall an update, so unavailability is then one.
pub fn limits(ds: &DaemonSet, desired: i32) -> (i32, i32) {
    let rolling = ds.spec.update_strategy.as_ref().filter(|_| is_rolling(ds)).and_then(|s| s.rolling_update.as_ref());
    let Some(rolling) = rolling else { return (0, 0) };
    let surge = scaled(rolling.max_surge.as_ref(), "0", desired, true);
    let unavailable = scaled(rolling.max_unavailable.as_ref(), "0", desired, true);
    if desired > 0 && surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable) }
}

/// Whether a node may hold an old and a new pod at once.
pub fn allows_surge(ds: &DaemonSet) -> bool {
    limits(ds, 1).0 != 0
}

/// What one rolling step changes: old pods to delete and nodes to create new pods on.
pub struct Step {
    pub delete: Vec<Arc<Pod>>,
    pub create_on: Vec<String>,
}

/// The pods of one node: the current revision's and an old one's, or None when the node
/// has more than one of either (placement prunes it first).
fn split<'a>(pods: &'a [Arc<Pod>], hash: &str) -> Option<(Option<&'a Arc<Pod>>, Option<&'a Arc<Pod>>)> {
    let (mut new, mut old) = (None, None);
    for pod in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        let slot = if is_updated(pod, hash) { &mut new } else { &mut old };
        if slot.replace(pod).is_some() {
            return None;
        }
    }
    Some((new, old))
}

/// The rolling step for these pods (kube's `rollingUpdate`). `fits` covers every node.
pub fn step(ds: &DaemonSet, fits: &BTreeMap<String, Fit>, pods: &PodsByNode, hash: &str, now: DateTime<Utc>) -> Step {
    let min_ready = ds.spec.min_ready_seconds.unwrap_or(0);
    let available = |p: &Arc<Pod>| is_available(p, min_ready, now);
    let should_run = |node: &str| fits.get(node).is_some_and(|f| f.should_run);
    let mut nodes: BTreeMap<&str, &[Arc<Pod>]> = pods.iter().map(|(n, p)| (n.as_str(), p.as_slice())).collect();
    let desired = fits
        .iter()
        .filter(|(_, f)| f.should_run)
        .inspect(|(n, _)| {
            nodes.entry(n.as_str()).or_default();
        })
        .count() as i32;
    let (max_surge, max_unavailable) = limits(ds, desired);

    if max_surge == 0 {
        let (mut unavailable, mut replace, mut candidates) = (0, Vec::new(), Vec::new());
        for pods in nodes.values() {
            let Some((new, old)) = split(pods, hash) else {
                unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(new), None) => unavailable += i32::from(!available(new)),
                (None, Some(old)) if !available(old) => {
                    replace.push(old.clone());
                    unavailable += 1;
                }
                (None, Some(old)) if unavailable < max_unavailable => candidates.push(old.clone()),
                (None, Some(_)) => {}
            }
        }
        let room = (max_unavailable - unavailable).max(0) as usize;
        replace.extend(candidates.into_iter().take(room));
        return Step { delete: replace, create_on: Vec::new() };
    }

    let (mut delete, mut not_wanted, mut allowed, mut candidates) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut surging, mut available_count) = (0, 0);
    for (node, pods) in &nodes {
        let Some((new, old)) = split(pods, hash) else {
            surging += 1;
            continue;
        };
        if old.or(new).is_some_and(available) {
            available_count += 1;
        }
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) if !available(old) => {
                if should_run(node) {
                    allowed.push(node.to_string())
                } else {
                    delete.push(old.clone())
                }
            }
            (None, Some(old)) if !should_run(node) => not_wanted.push(old.clone()),
            (None, Some(_)) if surging >= max_surge => {}
            (None, Some(_)) => candidates.push(node.to_string()),
            (Some(new), Some(_)) if !available(new) => surging += 1,
            (Some(_), Some(old)) => delete.push(old.clone()),
        }
    }
    // Pods on nodes that should no longer run one go only as pods elsewhere become
    // available, so that availability never drops.
    let deletable = (available_count - desired).max(0) as usize;
    delete.extend(not_wanted.into_iter().take(deletable));
    let room = (max_surge - surging).max(0) as usize;
    allowed.extend(candidates.into_iter().take(room));
    Step { delete, create_on: allowed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemonset::placement::{by_node, tests::pod};
    use serde_json::json;

    fn ds(strategy: serde_json::Value) -> DaemonSet {
        serde_json::from_value(
            json!({"metadata": {"name": "d"}, "spec": {"selector": {}, "template": {}, "updateStrategy": strategy}}),
        )
        .unwrap()
    }

    fn fits(nodes: &[&str]) -> BTreeMap<String, Fit> {
        nodes.iter().map(|n| (n.to_string(), Fit { should_run: true, may_stay: true })).collect()
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<String> {
        pods.iter().map(|p| p.metadata.name.clone().unwrap()).collect()
    }

    #[test]
    fn limits_resolve_as_kubernetes_resolves_them() {
        assert_eq!(
            limits(
                &ds(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%", "maxSurge": 0}})),
                15
            ),
            (0, 2)
        );
        assert_eq!(
            limits(&ds(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}})), 3),
            (0, 1)
        );
        assert_eq!(limits(&ds(json!({"type": "OnDelete"})), 3), (0, 0));
        assert!(allows_surge(&ds(
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "1%"}})
        )));
    }

    #[test]
    fn without_surge_old_pods_go_within_max_unavailable() {
        let d = ds(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2, "maxSurge": 0}}));
        let t = "2026-01-01T00:00:00Z";
        let pods = by_node(
            &[
                pod("a", "a", "new", "Running", true, t),
                pod("b", "b", "old", "Running", true, t),
                pod("c", "c", "old", "Running", true, t),
                pod("d", "d", "old", "Running", false, t),
            ],
            false,
        );
        // d's old pod is unavailable anyway and goes; one more may go, b.
        let all = fits(&["a", "b", "c", "d"]);
        let first = step(&d, &all, &pods, "new", Utc::now());
        assert_eq!(names(&first.delete), ["d", "b"]);
        assert!(first.create_on.is_empty());
        // With b's replacement not yet ready and d's missing, nothing more goes.
        let t2 = "2026-01-01T00:01:00Z";
        let pods = by_node(
            &[
                pod("a", "a", "new", "Running", true, t),
                pod("b2", "b", "new", "Running", false, t2),
                pod("c", "c", "old", "Running", true, t),
            ],
            false,
        );
        assert!(step(&d, &all, &pods, "new", Utc::now()).delete.is_empty());
    }

    #[test]
    fn with_surge_new_pods_come_first() {
        let d = ds(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}));
        let t = "2026-01-01T00:00:00Z";
        let pods = by_node(
            &[
                pod("a-old", "a", "old", "Running", true, t),
                pod("a-new", "a", "new", "Running", true, t),
                pod("b", "b", "old", "Running", true, t),
                pod("c", "c", "old", "Running", true, t),
            ],
            false,
        );
        let step = step(&d, &fits(&["a", "b", "c"]), &pods, "new", Utc::now());
        assert_eq!(names(&step.delete), ["a-old"]);
        assert_eq!(step.create_on, ["b"]);
    }
}
