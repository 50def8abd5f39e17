//! NodeResourcesBalancedAllocation: prefers nodes whose cpu and memory would be used in
//! equal shares with the pod on them (one minus the standard deviation of the shares).

use super::node_resources_fit::usage_with;
use crate::cache::NodeInfo;
use crate::framework::{PodInfo, Score};

pub struct BalancedAllocation;

impl Score for BalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let [cpu, memory] = usage_with(pod, node, false).map(|u| u.min(1.0));
        // The standard deviation of two values is half their distance.
        let deviation = (cpu - memory).abs() / 2.0;
        ((1.0 - deviation) * 100.0) as i64
    }
}
