//! NodeResourcesFit: a pod fits where every resource it requests (cpu, memory,
//! ephemeral-storage, extended resources) and one more pod slot are free. Among those,
//! LeastAllocated (the default) prefers the emptiest nodes and MostAllocated the fullest,
//! cpu and memory weighed alike.

use crate::cache::NodeInfo;
use crate::framework::{Filter, PodInfo, Reject, Score};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
pub enum Strategy {
    LeastAllocated,
    MostAllocated,
}

pub struct NodeResourcesFit {
    pub strategy: Strategy,
}

impl Filter for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Reject> {
        if node.pods.len() as i64 + 1 > node.allowed_pods {
            return Err(Reject::resolvable("Too many pods"));
        }
        let (want, have, used) = (&pod.requests, &node.allocatable, &node.requested);
        // The common resources first, without a lookup.
        if want.cpu > 0 && want.cpu > have.cpu - used.cpu {
            return Err(Reject::resolvable("Insufficient cpu"));
        }
        if want.memory > 0 && want.memory > have.memory - used.memory {
            return Err(Reject::resolvable("Insufficient memory"));
        }
        if want.ephemeral_storage > 0 && want.ephemeral_storage > have.ephemeral_storage - used.ephemeral_storage {
            return Err(Reject::resolvable("Insufficient ephemeral-storage"));
        }
        for (name, wanted) in &want.extended {
            if *wanted > 0 && *wanted > have.get(name) - used.get(name) {
                return Err(Reject::resolvable(format!("Insufficient {name}")));
            }
        }
        Ok(())
    }
}

/// Requests Kubernetes assumes for scoring when a pod states none: 100m cpu, 200Mi memory.
const DEFAULT_CPU: i64 = 100;
const DEFAULT_MEMORY: i64 = 200 * 1024 * 1024;

/// The share of cpu and of memory the node would have in use with the pod on it, each from
/// 0.0 to 1.0 (more than 1.0 when overcommitted).
pub fn usage_with(pod: &PodInfo, node: &NodeInfo, defaults: bool) -> [f64; 2] {
    let share = |capacity: i64, used: i64, wanted: i64, default: i64| {
        let wanted = if defaults && wanted == 0 { default } else { wanted };
        if capacity <= 0 { 1.0 } else { (used + wanted) as f64 / capacity as f64 }
    };
    let (want, have, used) = (&pod.requests, &node.allocatable, &node.requested);
    [share(have.cpu, used.cpu, want.cpu, DEFAULT_CPU), share(have.memory, used.memory, want.memory, DEFAULT_MEMORY)]
}

impl Score for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let used: f64 = usage_with(pod, node, true).iter().map(|u| u.clamp(0.0, 1.0)).sum::<f64>() / 2.0;
        match self.strategy {
            Strategy::LeastAllocated => ((1.0 - used) * 100.0) as i64,
            Strategy::MostAllocated => (used * 100.0) as i64,
        }
    }
}
