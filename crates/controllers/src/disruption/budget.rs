//! The arithmetic of a PodDisruptionBudget, as kube-controller-manager's disruption
//! controller does it: how many pods are expected and how many must stay healthy, which
//! evictions recorded by the API server in `disruptedPods` are still awaited, how many pods
//! count as healthy, and so how many more may be disrupted.

use crate::pods::{is_ready, timestamp};
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How long an eviction recorded in `disruptedPods` is waited for: a pod still there after
/// that was not deleted after all, and counts again.
pub fn deletion_timeout() -> chrono::Duration {
    chrono::Duration::minutes(2)
}

/// A number, or a percentage of `total` rounded up (`"50%"` of 3 is 2).
pub fn scaled(value: &IntOrString, total: i32) -> Result<i32, String> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let Some(number) = s.strip_suffix('%') else {
                return Err("invalid value for IntOrString: invalid type: string is not a percentage".into());
            };
            let percent: i64 = number.parse().map_err(|e| format!("invalid value {s:?}: {e}"))?;
            Ok((percent as f64 * total as f64 / 100.0).ceil() as i32)
        }
    }
}

/// Whether the budget is relative to the scale of its pods' controllers (a percentage, or
/// maxUnavailable) rather than to the pods that exist.
pub fn needs_scale(spec: &PodDisruptionBudgetSpec) -> bool {
    spec.max_unavailable.is_some() || matches!(spec.min_available, Some(IntOrString::String(_)))
}

/// What a budget asks of its pods.
#[derive(Debug, PartialEq, Eq)]
pub struct Goal {
    pub expected_pods: i32,
    pub desired_healthy: i32,
}

/// The goal of a budget selecting `matching_pods` pods whose controllers want
/// `controllers_scale` replicas in all (read only when [`needs_scale`]).
pub fn goal(spec: &PodDisruptionBudgetSpec, matching_pods: i32, controllers_scale: i32) -> Result<Goal, String> {
    if let Some(max_unavailable) = &spec.max_unavailable {
        let unavailable = scaled(max_unavailable, controllers_scale)?;
        return Ok(Goal {
            expected_pods: controllers_scale,
            desired_healthy: (controllers_scale - unavailable).max(0),
        });
    }
    Ok(match &spec.min_available {
        Some(IntOrString::Int(n)) => Goal { expected_pods: matching_pods, desired_healthy: *n },
        Some(percent) => {
            Goal { expected_pods: controllers_scale, desired_healthy: scaled(percent, controllers_scale)? }
        }
        None => Goal { expected_pods: 0, desired_healthy: 0 },
    })
}

/// The evictions still awaited: the recorded ones whose pod exists, is not yet being
/// deleted and was evicted less than [`deletion_timeout`] ago.
#[derive(Debug, Default, PartialEq)]
pub struct Awaited {
    pub pods: BTreeMap<String, Time>,
    /// When the first of them times out: the budget is looked at again then.
    pub recheck: Option<DateTime<Utc>>,
    /// Pods evicted longer ago than that and still not being deleted.
    pub overdue: Vec<String>,
}

pub fn awaited(recorded: Option<&BTreeMap<String, Time>>, pods: &[Arc<Pod>], now: DateTime<Utc>) -> Awaited {
    let mut out = Awaited::default();
    let Some(recorded) = recorded else { return out };
    for pod in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(at) = recorded.get(&name) else { continue };
        let expires = timestamp(at) + deletion_timeout();
        if expires < now {
            out.overdue.push(name);
        } else {
            out.recheck = Some(out.recheck.map_or(expires, |r| r.min(expires)));
            out.pods.insert(name, at.clone());
        }
    }
    out
}

/// Ready pods that are neither being deleted nor awaiting an eviction.
pub fn healthy(pods: &[Arc<Pod>], awaited: &BTreeMap<String, Time>, now: DateTime<Utc>) -> i32 {
    let evicting = |pod: &Pod| {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        awaited.get(name).is_some_and(|at| timestamp(at) + deletion_timeout() > now)
    };
    let counted = pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none() && !evicting(p) && is_ready(p));
    counted.count() as i32
}

/// Disruptions allowed: none while the budget expects no pods (its first pods must not be
/// evicted before it has seen them), else the healthy pods beyond those desired.
pub fn disruptions_allowed(current_healthy: i32, goal: &Goal) -> i32 {
    if goal.expected_pods <= 0 { 0 } else { (current_healthy - goal.desired_healthy).max(0) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> PodDisruptionBudgetSpec {
        serde_json::from_value(value).unwrap()
    }

    fn pod(name: &str, ready: bool, deleting: bool) -> Arc<Pod> {
        let mut pod = json!({"metadata": {"name": name}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
        if deleting {
            pod["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        Arc::new(serde_json::from_value(pod).unwrap())
    }

    fn time(t: DateTime<Utc>) -> Time {
        serde_json::from_value(json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))).unwrap()
    }

    #[test]
    fn percentages_round_up() {
        assert_eq!(scaled(&IntOrString::String("50%".into()), 3), Ok(2));
        assert_eq!(scaled(&IntOrString::String("10%".into()), 5), Ok(1));
        assert_eq!(scaled(&IntOrString::String("0%".into()), 5), Ok(0));
        assert_eq!(scaled(&IntOrString::Int(4), 2), Ok(4));
        assert!(scaled(&IntOrString::String("5".into()), 10).unwrap_err().contains("not a percentage"));
        assert!(scaled(&IntOrString::String("x%".into()), 10).is_err());
    }

    #[test]
    fn goals() {
        let min = spec(json!({"minAvailable": 2}));
        assert!(!needs_scale(&min));
        assert_eq!(goal(&min, 3, 0), Ok(Goal { expected_pods: 3, desired_healthy: 2 }));
        let percent = spec(json!({"minAvailable": "50%"}));
        assert!(needs_scale(&percent));
        assert_eq!(goal(&percent, 2, 5), Ok(Goal { expected_pods: 5, desired_healthy: 3 }));
        let max = spec(json!({"maxUnavailable": 1}));
        assert!(needs_scale(&max));
        assert_eq!(goal(&max, 2, 3), Ok(Goal { expected_pods: 3, desired_healthy: 2 }));
        assert_eq!(
            goal(&spec(json!({"maxUnavailable": "100%"})), 2, 3),
            Ok(Goal { expected_pods: 3, desired_healthy: 0 })
        );
        assert_eq!(goal(&spec(json!({"maxUnavailable": 5})), 2, 3), Ok(Goal { expected_pods: 3, desired_healthy: 0 }));
        assert_eq!(goal(&spec(json!({})), 2, 3), Ok(Goal { expected_pods: 0, desired_healthy: 0 }));
    }

    #[test]
    fn allowed_needs_expected_pods() {
        assert_eq!(disruptions_allowed(3, &Goal { expected_pods: 3, desired_healthy: 2 }), 1);
        assert_eq!(disruptions_allowed(1, &Goal { expected_pods: 3, desired_healthy: 2 }), 0);
        assert_eq!(disruptions_allowed(3, &Goal { expected_pods: 0, desired_healthy: 0 }), 0);
    }

    #[test]
    fn evictions_are_awaited_for_two_minutes() {
        let now = Utc::now();
        let pods = vec![pod("a", true, false), pod("b", true, false), pod("c", true, true), pod("d", true, false)];
        let recorded = BTreeMap::from([
            ("a".to_string(), time(now - chrono::Duration::seconds(30))),
            ("b".to_string(), time(now - chrono::Duration::seconds(180))),
            ("c".to_string(), time(now)),
            ("gone".to_string(), time(now)),
        ]);
        let awaited = awaited(Some(&recorded), &pods, now);
        assert_eq!(awaited.pods.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(awaited.overdue, ["b"]);
        let recheck = awaited.recheck.unwrap();
        assert!((recheck - (now + chrono::Duration::seconds(90))).num_seconds().abs() <= 1);
        // a is awaited, c is being deleted: b (overdue, counts again) and d are healthy.
        assert_eq!(healthy(&pods, &awaited.pods, now), 2);
    }

    #[test]
    fn unready_pods_are_not_healthy() {
        let pods = vec![pod("a", false, false), pod("b", true, false)];
        assert_eq!(healthy(&pods, &BTreeMap::new(), Utc::now()), 1);
    }
}
