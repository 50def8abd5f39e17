//! NodePorts: a host port (with its protocol and address) is held by one pod per node.

use crate::cache::NodeInfo;
use crate::framework::{Filter, PodInfo};

pub struct NodePorts;

fn conflicts(a: &(String, String, i32), b: &(String, String, i32)) -> bool {
    let any = |ip: &str| ip == "0.0.0.0" || ip == "::";
    a.0 == b.0 && a.2 == b.2 && (a.1 == b.1 || any(&a.1) || any(&b.1))
}

impl Filter for NodePorts {
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), String> {
        if pod.host_ports.iter().any(|want| node.host_ports.iter().any(|held| conflicts(want, held))) {
            return Err("node(s) didn't have free ports for the requested pod ports".into());
        }
        Ok(())
    }
}
