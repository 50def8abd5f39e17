//! NodePorts: a host port (with its protocol and address) is held by one pod per node.

use crate::cache::{Cache, NodeInfo};
use crate::framework::{Applies, Filter, HostPort, PodInfo, Reject};

pub struct NodePorts;

fn conflicts(a: &HostPort, b: &HostPort) -> bool {
    let any = |ip: &str| ip == "0.0.0.0" || ip == "::";
    a.0 == b.0 && a.2 == b.2 && (a.1 == b.1 || any(&a.1) || any(&b.1))
}

impl Filter for NodePorts {
    fn name(&self) -> &'static str {
        "NodePorts"
    }

    fn pre_filter(&self, pod: &mut PodInfo, _cache: &Cache) -> Result<Applies, Reject> {
        Ok(Applies::when(!pod.host_ports.is_empty()))
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Reject> {
        let held = node.pods.iter().flat_map(|p| p.host_ports.iter());
        if held.into_iter().any(|held| pod.host_ports.iter().any(|want| conflicts(want, held))) {
            return Err(Reject::resolvable("node(s) didn't have free ports for the requested pod ports"));
        }
        Ok(())
    }
}
