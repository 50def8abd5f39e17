//! NodeName: a pod that names its node goes only there. (Pods that name a node are bound
//! when created, so this holds for the few that reach the queue some other way.)

use crate::cache::{Cache, NodeInfo};
use crate::framework::{Applies, Filter, PodInfo, Reject};

pub struct NodeName;

impl Filter for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }

    fn pre_filter(&self, pod: &mut PodInfo, _cache: &Cache) -> Result<Applies, Reject> {
        Ok(Applies::when(pod.spec().node_name.as_ref().is_some_and(|n| !n.is_empty())))
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
