//! NodeResourcesFit: a pod fits where every resource it requests (cpu, memory,
//! ephemeral-storage, extended resources) and one more pod slot are free; among those,
//! LeastAllocated prefers the emptiest nodes (cpu and memory weighed alike).

use crate::cache::NodeInfo;
use crate::framework::{Filter, PodInfo, Score};

pub struct NodeResourcesFit;

impl Filter for NodeResourcesFit {
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), String> {
        let allowed_pods = node.allocatable.get("pods").copied().unwrap_or(110_000) / 1000;
        if node.pods as i128 + 1 > allowed_pods {
            return Err("Too many pods".into());
        }
        for (name, wanted) in pod.requests.iter().filter(|(_, v)| **v > 0) {
            let free = node.allocatable.get(name).copied().unwrap_or(0) - node.requested.get(name).copied().unwrap_or(0);
            if *wanted > free {
                return Err(format!("Insufficient {name}"));
            }
        }
        Ok(())
    }
}

/// Requests Kubernetes assumes for scoring when a pod states none: 100m cpu, 200Mi memory.
const DEFAULT_CPU: i128 = 100;
const DEFAULT_MEMORY: i128 = 200 * 1024 * 1024 * 1000;

impl Score for NodeResourcesFit {
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let share = |name: &str, default: i128| {
            let capacity = node.allocatable.get(name).copied().unwrap_or(0);
            if capacity <= 0 {
                return 0;
            }
            let wanted = pod.requests.get(name).copied().filter(|v| *v > 0).unwrap_or(default);
            let used = node.requested.get(name).copied().unwrap_or(0) + wanted;
            ((capacity - used).max(0) * 100 / capacity) as i64
        };
        (share("cpu", DEFAULT_CPU) + share("memory", DEFAULT_MEMORY)) / 2
    }
}
