//! TaintToleration: a pod goes only where it tolerates every NoSchedule and NoExecute taint,
//! and prefers nodes with fewer PreferNoSchedule taints it does not tolerate. The matching
//! ([`tolerates`], [`first_untolerated`]) is pure over tolerations and taints, so that the
//! DaemonSet controller decides with it where its pods may run and may keep running.

use crate::cache::NodeInfo;
use crate::framework::{Filter, PodInfo, Reject, Score, normalize_by_max};
use k8s_openapi::api::core::v1::{Taint, Toleration};

pub struct TaintToleration;

/// Whether any toleration matches the taint, as Kubernetes matches them.
pub fn tolerates(tolerations: &[Toleration], key: &str, value: &str, effect: &str) -> bool {
    toleration_for(tolerations, key, value, effect).is_some()
}

/// The first toleration that matches the taint: the taint eviction controller reads its
/// tolerationSeconds.
pub fn toleration_for<'a>(
    tolerations: &'a [Toleration],
    key: &str,
    value: &str,
    effect: &str,
) -> Option<&'a Toleration> {
    tolerations.iter().find(|t| {
        let effect_ok = t.effect.as_deref().is_none_or(|e| e.is_empty() || e == effect);
        let exists = t.operator.as_deref() == Some("Exists");
        // An empty key with Exists tolerates every taint.
        let key_ok = match t.key.as_deref().unwrap_or("") {
            "" => exists,
            k => k == key,
        };
        let value_ok = exists || t.value.as_deref().unwrap_or("") == value;
        effect_ok && key_ok && value_ok
    })
}

/// The first of `taints` with one of `effects` that no toleration tolerates.
pub fn first_untolerated<'a>(tolerations: &[Toleration], taints: &'a [Taint], effects: &[&str]) -> Option<&'a Taint> {
    taints.iter().find(|t| {
        effects.contains(&t.effect.as_str())
            && !tolerates(tolerations, &t.key, t.value.as_deref().unwrap_or(""), &t.effect)
    })
}

/// The first NoSchedule or NoExecute taint of the node that the pod does not tolerate.
pub fn untolerated<'a>(pod: &PodInfo, node: &'a NodeInfo) -> Option<&'a Taint> {
    let tolerations = pod.spec().tolerations.as_deref().unwrap_or_default();
    first_untolerated(tolerations, node.taints(), &["NoSchedule", "NoExecute"])
}

impl Filter for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Reject> {
        match untolerated(pod, node) {
            Some(t) => Err(Reject::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key,
                t.value.as_deref().unwrap_or("")
            ))),
            None => Ok(()),
        }
    }
}

impl Score for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    /// How many PreferNoSchedule taints the pod does not tolerate: fewer is better.
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let tolerations = pod.spec().tolerations.as_deref().unwrap_or_default();
        node.taints()
            .iter()
            .filter(|t| {
                t.effect == "PreferNoSchedule"
                    && !tolerates(tolerations, &t.key, t.value.as_deref().unwrap_or(""), &t.effect)
            })
            .count() as i64
    }

    fn normalize(&self, scores: &mut [i64]) {
        normalize_by_max(scores, true);
    }
}
