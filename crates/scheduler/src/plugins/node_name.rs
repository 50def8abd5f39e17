//! NodeName: a pod that names its node goes only there. (Pods that name a node are bound
//! when created, so this holds for the few that reach the queue some other way.)

use crate::cache::NodeInfo;
use crate::framework::{Filter, PodInfo, Reject};

pub struct NodeName;

impl Filter for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Reject> {
        match pod.spec().node_name.as_deref() {
            Some(wanted) if !wanted.is_empty() && wanted != node.name => {
                Err(Reject::unresolvable("node(s) didn't match the requested node name"))
            }
            _ => Ok(()),
        }
    }
}
