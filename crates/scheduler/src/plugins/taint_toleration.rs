//! TaintToleration: a pod goes only where it tolerates every NoSchedule and NoExecute taint,
//! and prefers nodes with fewer PreferNoSchedule taints it does not tolerate.

use crate::cache::NodeInfo;
use crate::framework::{Filter, PodInfo, Reject, Score, normalize_by_max};
use k8s_openapi::api::core::v1::Toleration;

pub struct TaintToleration;

/// Whether any toleration matches the taint, as Kubernetes matches them.
pub fn tolerates(tolerations: &[Toleration], key: &str, value: &str, effect: &str) -> bool {
    tolerations.iter().any(|t| {
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

/// The first NoSchedule or NoExecute taint of the node that the pod does not tolerate.
pub fn untolerated<'a>(pod: &PodInfo, node: &'a NodeInfo) -> Option<&'a k8s_openapi::api::core::v1::Taint> {
    let tolerations = pod.spec().tolerations.as_deref().unwrap_or_default();
    node.taints().iter().find(|t| {
        matches!(t.effect.as_str(), "NoSchedule" | "NoExecute")
            && !tolerates(tolerations, &t.key, t.value.as_deref().unwrap_or(""), &t.effect)
    })
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
            .filter(|t| t.effect == "PreferNoSchedule" && !tolerates(tolerations, &t.key, t.value.as_deref().unwrap_or(""), &t.effect))
            .count() as i64
    }

    fn normalize(&self, scores: &mut [i64]) {
        normalize_by_max(scores, true);
    }
}
