//! NodeResourcesBalancedAllocation: prefers nodes whose cpu and memory would be used in
//! equal shares with the pod on them (one minus the standard deviation of the shares).

use super::node_resources_fit::cpu_and_memory;
use crate::cache::{Cache, NodeInfo};
use crate::framework::{Applies, PodInfo, Score};

pub struct BalancedAllocation;

impl Score for BalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }

    /// A pod that requests neither cpu nor memory changes no balance; kube-scheduler skips
    /// it too, so that such pods do not all pile onto the best-balanced node.
    fn pre_score(&self, pod: &mut PodInfo, _cache: &Cache, _nodes: &[&NodeInfo]) -> Applies {
        Applies::when(pod.requests.cpu > 0 || pod.requests.memory > 0)
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let share = |(allocatable, requested): (i64, i64)| (requested as f64 / allocatable as f64).min(1.0);
        // The standard deviation of two values is half their distance; of one, nothing.
        let deviation = match cpu_and_memory(pod, node, false) {
            [cpu, memory] if cpu.0 > 0 && memory.0 > 0 => (share(cpu) - share(memory)).abs() / 2.0,
            _ => 0.0,
        };
        ((1.0 - deviation) * 100.0) as i64
    }
}
