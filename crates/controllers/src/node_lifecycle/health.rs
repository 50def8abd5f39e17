//! Whether a node is still heard from. The kubelet renews the node's Lease (in
//! kube-node-lease) every 10 s and refreshes its Ready condition's heartbeat; the controller
//! notes, on its own clock, when either signal last moved (the timestamps in them may come
//! from a skewed clock, so only their change counts). A node silent for longer than the
//! grace period (the startup grace period while it never posted a Ready condition) has its
//! Ready, MemoryPressure, DiskPressure and PIDPressure conditions set to Unknown.

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// The conditions the kubelet reports and the controller turns Unknown when it goes silent
/// (NetworkUnavailable belongs to the network, not the kubelet).
const KUBELET_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

pub fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// The node's Ready status: "True", "False" or "Unknown", None if it never reported one.
pub fn ready_status(node: &Node) -> Option<&str> {
    condition(node, "Ready").map(|c| c.status.as_str())
}

/// What was last seen of one node's signals.
struct Seen {
    /// When a signal last moved.
    probe: DateTime<Utc>,
    /// The Ready condition's heartbeat; None while the node has no Ready condition.
    ready_heartbeat: Option<Option<Time>>,
    lease_renewed: Option<MicroTime>,
}

/// The signals of every node, as last seen.
#[derive(Default)]
pub struct Health {
    seen: HashMap<String, Seen>,
}

/// How long a node may stay silent.
pub struct Grace {
    pub monitor: Duration,
    pub startup: Duration,
}

impl Health {
    /// Notes the node's signals at `now`; true if it has been silent for longer than its
    /// grace period.
    pub fn silent(&mut self, node: &Node, lease: Option<&Lease>, now: DateTime<Utc>, grace: &Grace) -> bool {
        let name = node.metadata.name.clone().unwrap_or_default();
        let ready = condition(node, "Ready");
        let heartbeat = ready.map(|c| c.last_heartbeat_time.clone());
        let created = node.metadata.creation_timestamp.as_ref().map(crate::pods::timestamp).unwrap_or(now);
        let seen = self.seen.entry(name).or_insert_with(|| Seen {
            // A node that never reported is given its startup grace from its creation.
            probe: if ready.is_none() { created } else { now },
            ready_heartbeat: heartbeat.clone(),
            lease_renewed: None,
        });
        if seen.ready_heartbeat != heartbeat {
            seen.ready_heartbeat = heartbeat;
            seen.probe = now;
        }
        let renewed = lease.and_then(|l| l.spec.as_ref()?.renew_time.clone());
        if renewed.is_some() && (seen.lease_renewed.is_none() || seen.lease_renewed < renewed) {
            seen.lease_renewed = renewed;
            seen.probe = now;
        }
        let grace = if ready.is_some() { grace.monitor } else { grace.startup };
        let deadline = chrono::Duration::from_std(grace).ok().and_then(|g| seen.probe.checked_add_signed(g));
        deadline.is_some_and(|deadline| now > deadline)
    }

    /// Records the Ready heartbeat the controller itself wrote, so that it is not taken for
    /// a sign of life.
    pub fn wrote(&mut self, node: &Node) {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        if let Some(seen) = self.seen.get_mut(name) {
            seen.ready_heartbeat = Some(condition(node, "Ready").and_then(|c| c.last_heartbeat_time.clone()));
        }
    }

    pub fn forget(&mut self, name: &str) {
        self.seen.remove(name);
    }

    /// Gives every node a fresh grace period (when the whole cluster comes back from a
    /// disruption, the silence was the controller's, not the nodes').
    pub fn refresh(&mut self, now: DateTime<Utc>) {
        for seen in self.seen.values_mut() {
            seen.probe = now;
        }
    }
}

/// Sets the kubelet's conditions to Unknown, as for a node that stopped reporting (a missing
/// one is added, its heartbeat the node's creation). Returns whether Ready changed.
pub fn mark_unknown(conditions: &mut Vec<Value>, created: &Value, now: &str) -> bool {
    let ready_before = conditions.iter().find(|c| c["type"] == "Ready").cloned();
    for type_ in KUBELET_CONDITIONS {
        match conditions.iter_mut().find(|c| c["type"] == type_) {
            None => conditions.push(json!({
                "type": type_, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                "message": "Kubelet never posted node status.", "lastHeartbeatTime": created, "lastTransitionTime": now,
            })),
            Some(c) if c["status"] != "Unknown" => {
                c["status"] = json!("Unknown");
                c["reason"] = json!("NodeStatusUnknown");
                c["message"] = json!("Kubelet stopped posting node status.");
                c["lastTransitionTime"] = json!(now);
            }
            Some(_) => {}
        }
    }
    conditions.iter().find(|c| c["type"] == "Ready") != ready_before.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(heartbeat: Option<&str>) -> Node {
        let mut node = json!({"metadata": {"name": "n", "creationTimestamp": "2026-01-01T00:00:00Z"}});
        if let Some(h) = heartbeat {
            node["status"] = json!({"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": h}]});
        }
        serde_json::from_value(node).unwrap()
    }

    fn lease(renewed: &str) -> Lease {
        serde_json::from_value(json!({"metadata": {"name": "n"}, "spec": {"renewTime": renewed}})).unwrap()
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    const GRACE: Grace = Grace { monitor: Duration::from_secs(40), startup: Duration::from_secs(60) };

    #[test]
    fn a_node_is_silent_once_neither_heartbeat_nor_lease_moves_for_the_grace_period() {
        let mut health = Health::default();
        let n = node(Some("2026-01-01T00:00:00Z"));
        assert!(!health.silent(&n, Some(&lease("2026-01-01T00:00:00.000001Z")), at(0), &GRACE));
        // The Lease moves: the node is alive whatever its status says.
        assert!(!health.silent(&n, Some(&lease("2026-01-01T00:00:30.000001Z")), at(30), &GRACE));
        assert!(!health.silent(&n, Some(&lease("2026-01-01T00:00:30.000001Z")), at(70), &GRACE));
        assert!(health.silent(&n, Some(&lease("2026-01-01T00:00:30.000001Z")), at(71), &GRACE));
        // A new heartbeat revives it.
        assert!(!health.silent(&node(Some("2026-01-01T00:02:00Z")), None, at(72), &GRACE));
    }

    #[test]
    fn a_node_that_never_reported_gets_the_startup_grace_from_its_creation() {
        let mut health = Health::default();
        let created = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
        assert!(!health.silent(&node(None), None, created + chrono::Duration::seconds(60), &GRACE));
        assert!(health.silent(&node(None), None, created + chrono::Duration::seconds(61), &GRACE));
    }

    #[test]
    fn silence_turns_the_kubelet_conditions_unknown_once() {
        let mut conditions = vec![
            json!({"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": "h", "lastTransitionTime": "t"}),
            json!({"type": "NetworkUnavailable", "status": "False"}),
        ];
        assert!(mark_unknown(&mut conditions, &json!("created"), "now"));
        let ready = &conditions[0];
        assert_eq!((ready["status"].as_str(), ready["reason"].as_str()), (Some("Unknown"), Some("NodeStatusUnknown")));
        assert_eq!(ready["message"], "Kubelet stopped posting node status.");
        assert_eq!(
            (ready["lastHeartbeatTime"].as_str(), ready["lastTransitionTime"].as_str()),
            (Some("h"), Some("now"))
        );
        assert_eq!(conditions[1]["status"], "False");
        let memory = conditions.iter().find(|c| c["type"] == "MemoryPressure").unwrap();
        assert_eq!(
            (memory["reason"].as_str(), memory["lastHeartbeatTime"].as_str()),
            (Some("NodeStatusNeverUpdated"), Some("created"))
        );
        assert!(!mark_unknown(&mut conditions, &json!("created"), "later"));
        assert_eq!(conditions[0]["lastTransitionTime"], "now");
    }
}
