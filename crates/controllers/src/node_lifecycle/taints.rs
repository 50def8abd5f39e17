//! The taints the node lifecycle controller keeps on nodes. NoSchedule taints follow the
//! node's conditions at once (Ready False or Unknown, memory, disk and PID pressure, an
//! unavailable network, `spec.unschedulable`), so that the scheduler places nothing new
//! there; the NoExecute `not-ready` and `unreachable` taints, which make the taint eviction
//! controller evict the node's pods, are added through each zone's rate-limited queue and
//! removed as soon as the node is Ready again.

use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Which taint each condition in each status calls for.
const CONDITION_TAINTS: [(&str, &str, &str); 6] = [
    ("Ready", "False", NOT_READY),
    ("Ready", "Unknown", UNREACHABLE),
    ("MemoryPressure", "True", "node.kubernetes.io/memory-pressure"),
    ("DiskPressure", "True", "node.kubernetes.io/disk-pressure"),
    ("NetworkUnavailable", "True", "node.kubernetes.io/network-unavailable"),
    ("PIDPressure", "True", "node.kubernetes.io/pid-pressure"),
];

pub fn taint(key: &str, effect: &str) -> Taint {
    Taint { key: key.into(), effect: effect.into(), ..Default::default() }
}

pub fn has(node: &Node, wanted: &Taint) -> bool {
    taints_of(node).iter().any(|t| same(t, wanted))
}

/// Taints are the same when their key and effect are.
fn same(a: &Taint, b: &Taint) -> bool {
    a.key == b.key && a.effect == b.effect
}

fn taints_of(node: &Node) -> &[Taint] {
    node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default()
}

/// The NoSchedule taints the node's conditions and unschedulability call for.
pub fn wanted_no_schedule(node: &Node) -> Vec<Taint> {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    let mut wanted: Vec<Taint> = conditions
        .iter()
        .filter_map(|c| CONDITION_TAINTS.iter().find(|(t, s, _)| *t == c.type_ && *s == c.status))
        .map(|(_, _, key)| taint(key, "NoSchedule"))
        .collect();
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        wanted.push(taint(UNSCHEDULABLE, "NoSchedule"));
    }
    wanted
}

/// The NoSchedule taints this controller manages that the node has now.
pub fn managed_no_schedule(node: &Node) -> Vec<Taint> {
    let managed = |key: &str| key == UNSCHEDULABLE || CONDITION_TAINTS.iter().any(|(_, _, k)| *k == key);
    taints_of(node).iter().filter(|t| t.effect == "NoSchedule" && managed(&t.key)).cloned().collect()
}

/// The node's taints with `add` added (stamped with the time, unless already there) and
/// `remove` removed; None if that changes nothing.
pub fn swapped(current: &[Taint], add: &[Taint], remove: &[Taint]) -> Option<Vec<Taint>> {
    let mut next: Vec<Taint> = current.iter().filter(|t| !remove.iter().any(|r| same(t, r))).cloned().collect();
    for taint in add {
        if !next.iter().any(|t| same(t, taint)) {
            next.push(Taint { time_added: Some(Time(k8s_openapi::jiff::Timestamp::now())), ..taint.clone() });
        }
    }
    (next.len() != current.len() || next.iter().zip(current).any(|(a, b)| !same(a, b))).then_some(next)
}

/// Adds and removes taints on the node, reading it again after a conflict. Returns whether
/// the node changed.
pub async fn swap(api: &Api<Node>, node: &Node, add: &[Taint], remove: &[Taint]) -> kube::Result<bool> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let mut node = node.clone();
    for _ in 0..5 {
        let Some(next) = swapped(taints_of(&node), add, remove) else { return Ok(false) };
        let taints = if next.is_empty() { serde_json::Value::Null } else { json!(next) };
        let patch =
            json!({"metadata": {"resourceVersion": node.metadata.resource_version}, "spec": {"taints": taints}});
        match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => return Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => match api.get_opt(&name).await? {
                Some(fresh) => node = fresh,
                None => return Ok(false),
            },
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(conditions: serde_json::Value, unschedulable: bool, taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "n"},
            "spec": {"unschedulable": unschedulable, "taints": taints},
            "status": {"conditions": conditions},
        }))
        .unwrap()
    }

    fn keys(taints: &[Taint]) -> Vec<(&str, &str)> {
        taints.iter().map(|t| (t.key.as_str(), t.effect.as_str())).collect()
    }

    #[test]
    fn no_schedule_taints_follow_the_conditions() {
        let n = node(
            json!([{"type": "Ready", "status": "Unknown"}, {"type": "DiskPressure", "status": "True"}, {"type": "PIDPressure", "status": "False"}]),
            true,
            json!([{"key": "dedicated", "effect": "NoSchedule"}, {"key": NOT_READY, "effect": "NoSchedule"}, {"key": UNREACHABLE, "effect": "NoExecute"}]),
        );
        assert_eq!(
            keys(&wanted_no_schedule(&n)),
            [
                (UNREACHABLE, "NoSchedule"),
                ("node.kubernetes.io/disk-pressure", "NoSchedule"),
                (UNSCHEDULABLE, "NoSchedule")
            ]
        );
        // A user's taint and the NoExecute taints are not the NoSchedule pass's business.
        assert_eq!(keys(&managed_no_schedule(&n)), [(NOT_READY, "NoSchedule")]);
    }

    #[test]
    fn swapping_keeps_other_taints_and_stamps_new_ones() {
        let current = vec![taint("dedicated", "NoSchedule"), taint(NOT_READY, "NoExecute")];
        let next = swapped(&current, &[taint(UNREACHABLE, "NoExecute")], &[taint(NOT_READY, "NoExecute")]).unwrap();
        assert_eq!(keys(&next), [("dedicated", "NoSchedule"), (UNREACHABLE, "NoExecute")]);
        assert!(next[1].time_added.is_some());
        assert_eq!(swapped(&next, &[taint(UNREACHABLE, "NoExecute")], &[taint(NOT_READY, "NoExecute")]), None);
        assert_eq!(swapped(&next, &[], &[taint(UNREACHABLE, "NoSchedule")]), None);
    }
}
