//! TaintToleration: a pod goes only where it tolerates every NoSchedule and NoExecute taint,
//! and prefers nodes with fewer PreferNoSchedule taints it does not tolerate.

use crate::cache::NodeInfo;
use crate::framework::{Filter, PodInfo, Score};
use k8s_openapi::api::core::v1::{Taint, Toleration};

pub struct TaintToleration;

/// Whether any toleration matches the taint, as Kubernetes matches them.
pub fn tolerates(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| {
        let effect_ok = t.effect.as_deref().is_none_or(|e| e.is_empty() || e == taint.effect);
        let exists = t.operator.as_deref() == Some("Exists");
        // An empty key with Exists tolerates every taint.
        let key_ok = match t.key.as_deref().unwrap_or("") {
            "" => exists,
            key => key == taint.key,
        };
        let value_ok = exists || t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("");
        effect_ok && key_ok && value_ok
    })
}

fn taints(node: &NodeInfo) -> &[Taint] {
    node.node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default()
}

impl Filter for TaintToleration {
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), String> {
        let tolerations = pod.spec().tolerations.as_deref().unwrap_or_default();
        match taints(node).iter().find(|t| matches!(t.effect.as_str(), "NoSchedule" | "NoExecute") && !tolerates(tolerations, t)) {
            Some(t) => Err(format!("node(s) had untolerated taint {{{}: {}}}", t.key, t.value.as_deref().unwrap_or(""))),
            None => Ok(()),
        }
    }
}

impl Score for TaintToleration {
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let tolerations = pod.spec().tolerations.as_deref().unwrap_or_default();
        let intolerable = taints(node).iter().filter(|t| t.effect == "PreferNoSchedule" && !tolerates(tolerations, t)).count();
        (100 - 10 * intolerable as i64).max(0)
    }
}
