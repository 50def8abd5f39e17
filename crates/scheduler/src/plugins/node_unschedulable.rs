//! NodeUnschedulable: cordoned nodes take only pods that tolerate
//! `node.kubernetes.io/unschedulable:NoSchedule`.

use super::taint_toleration::tolerates;
use crate::cache::NodeInfo;
use crate::framework::{Filter, PodInfo, Reject};

pub struct NodeUnschedulable;

impl Filter for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Reject> {
        let tolerations = pod.spec().tolerations.as_deref().unwrap_or_default();
        if node.unschedulable && !tolerates(tolerations, "node.kubernetes.io/unschedulable", "", "NoSchedule") {
            return Err(Reject::unresolvable("node(s) were unschedulable"));
        }
        Ok(())
    }
}
