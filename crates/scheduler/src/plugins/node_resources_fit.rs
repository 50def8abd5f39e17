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

/// (allocatable, requested with the pod) of cpu and of memory: the pod's and the node's
/// pods' requests as the scores count them (with defaults for what a container leaves
/// unstated) when `scoring`, or as stated.
pub fn cpu_and_memory(pod: &PodInfo, node: &NodeInfo, scoring: bool) -> [(i64, i64); 2] {
    let have = &node.allocatable;
    let [used_cpu, used_memory] =
        if scoring { node.scoring_requested } else { [node.requested.cpu, node.requested.memory] };
    let [want_cpu, want_memory] = if scoring { pod.scoring_requests } else { [pod.requests.cpu, pod.requests.memory] };
    [(have.cpu, used_cpu + want_cpu), (have.memory, used_memory + want_memory)]
}

impl Score for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    /// Each resource scored in whole points as kube-scheduler scores it (integer division,
    /// so that rounding agrees), then averaged over the resources the node has.
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let (sum, count) = cpu_and_memory(pod, node, true)
            .into_iter()
            .filter(|(allocatable, _)| *allocatable > 0)
            .map(|(allocatable, requested)| match self.strategy {
                Strategy::LeastAllocated if requested > allocatable => 0,
                Strategy::LeastAllocated => (allocatable - requested) * 100 / allocatable,
                Strategy::MostAllocated => requested.min(allocatable) * 100 / allocatable,
            })
            .fold((0, 0), |(sum, count), score| (sum + score, count + 1));
        if count == 0 { 0 } else { sum / count }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use serde_json::json;
    use std::sync::Arc;

    fn pod(name: &str, requests: serde_json::Value) -> Arc<k8s_openapi::api::core::v1::Pod> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name, "uid": name},
                "spec": {"containers": [{"name": "app", "resources": {"requests": requests}}]}}))
            .unwrap(),
        )
    }

    /// Five 100m pods on a 32-cpu, 256Gi node cost it a point of cpu score, in whole points
    /// per resource as kube-scheduler counts: 98 for cpu, 99 for memory (the pods' unstated
    /// memory counted at 200Mi each), so 98 against an empty node's 99.
    #[test]
    fn least_allocated_scores_each_resource_in_whole_points() {
        let mut cache = Cache::default();
        for name in ["busy", "empty"] {
            cache.set_node(
                serde_json::from_value(json!({"metadata": {"name": name},
                    "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"}}}))
                .unwrap(),
            );
        }
        for i in 0..5 {
            cache.place(pod(&format!("p{i}"), json!({"cpu": "100m"})), "busy");
        }
        let next = PodInfo::new(pod("next", json!({"cpu": "100m"})));
        let fit = NodeResourcesFit { strategy: Strategy::LeastAllocated };
        let score = |node: &str| fit.score(&next, cache.node(node).unwrap());
        assert_eq!((score("busy"), score("empty")), (98, 99));
    }
}
