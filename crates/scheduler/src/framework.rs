//! The plugin interfaces, in the spirit of kube-scheduler's framework: a filter says whether
//! a pod may go on a node (and if not, why, in kube-scheduler's words); a score ranks the
//! nodes that passed, from 0 to 100.

use crate::cache::NodeInfo;
use crate::resources::{Resources, pod_requests};
use k8s_openapi::api::core::v1::Pod;
use std::sync::Arc;

/// A pod being scheduled, with what the plugins need precomputed once.
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub requests: Resources,
    /// (protocol, hostIP, hostPort) of every container port with a host port.
    pub host_ports: Vec<(String, String, i32)>,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let spec = pod.spec.clone().unwrap_or_default();
        PodInfo { requests: pod_requests(&spec), host_ports: host_ports(&pod), pod }
    }

    pub fn spec(&self) -> &k8s_openapi::api::core::v1::PodSpec {
        self.pod.spec.as_ref().expect("queued pods have a spec")
    }
}

pub fn host_ports(pod: &Pod) -> Vec<(String, String, i32)> {
    let spec = pod.spec.as_ref();
    let containers = spec.into_iter().flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()));
    containers
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|p| *p > 0)?;
            let ip = p.host_ip.clone().filter(|ip| !ip.is_empty()).unwrap_or_else(|| "0.0.0.0".into());
            Some((p.protocol.clone().unwrap_or_else(|| "TCP".into()), ip, port))
        })
        .collect()
}

pub trait Filter: Send + Sync {
    /// `Err` carries the reason, counted per node in the FailedScheduling message
    /// (`Insufficient cpu`, `node(s) had untolerated taint {dedicated: gpu}`).
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), String>;
}

pub trait Score: Send + Sync {
    /// From 0 (worst) to 100 (best).
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64;
    fn weight(&self) -> i64 {
        1
    }
}
