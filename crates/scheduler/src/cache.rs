//! The scheduler's view of the cluster, kept from watches: each node with what its pods
//! already request and which host ports they hold. A pod chosen for a node counts there at
//! once (assumed), before its binding is confirmed, so that the next decision sees it.

use crate::framework::host_ports;
use crate::resources::{Resources, milli, pod_requests};
use k8s_openapi::api::core::v1::{Node, Pod};
use std::collections::HashMap;
use std::sync::Arc;

pub struct NodeInfo {
    pub node: Arc<Node>,
    pub allocatable: Resources,
    pub requested: Resources,
    pub pods: usize,
    pub host_ports: Vec<(String, String, i32)>,
}

impl NodeInfo {
    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or("")
    }
}

/// Where a pod counts, and what it counts for.
struct Placement {
    node: String,
    requests: Resources,
    ports: Vec<(String, String, i32)>,
}

#[derive(Default)]
pub struct Cache {
    pub nodes: HashMap<String, NodeInfo>,
    /// The node names, sorted: the order a search for nodes goes round.
    pub order: Vec<String>,
    /// By pod uid.
    placed: HashMap<String, Placement>,
}

impl Cache {
    pub fn set_node(&mut self, node: Node) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let allocatable: Resources = node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|(k, q)| Some((k.clone(), milli(&q.0)?)))
            .collect();
        if !self.nodes.contains_key(&name) {
            // Pods seen bound to this node before the node itself count on it now.
            let mut info = NodeInfo {
                node: Arc::new(Node::default()),
                allocatable: Resources::new(),
                requested: Resources::new(),
                pods: 0,
                host_ports: Vec::new(),
            };
            for placement in self.placed.values().filter(|p| p.node == name) {
                for (k, v) in &placement.requests {
                    *info.requested.entry(k.clone()).or_default() += v;
                }
                info.pods += 1;
                info.host_ports.extend(placement.ports.iter().cloned());
            }
            self.nodes.insert(name.clone(), info);
            if let Err(at) = self.order.binary_search(&name) {
                self.order.insert(at, name.clone());
            }
        }
        let entry = self.nodes.get_mut(&name).expect("inserted above");
        entry.node = Arc::new(node);
        entry.allocatable = allocatable;
    }

    pub fn remove_node(&mut self, name: &str) {
        self.nodes.remove(name);
        if let Ok(at) = self.order.binary_search_by(|n| n.as_str().cmp(name)) {
            self.order.remove(at);
        }
    }

    /// Counts `pod` on `node` (replacing where it counted before).
    pub fn place(&mut self, uid: &str, pod: &Pod, node: &str) {
        if self.placed.get(uid).is_some_and(|p| p.node == node) {
            return;
        }
        self.forget(uid);
        let placement = Placement {
            node: node.to_string(),
            requests: pod.spec.as_ref().map(pod_requests).unwrap_or_default(),
            ports: host_ports(pod),
        };
        if let Some(info) = self.nodes.get_mut(node) {
            for (k, v) in &placement.requests {
                *info.requested.entry(k.clone()).or_default() += v;
            }
            info.pods += 1;
            info.host_ports.extend(placement.ports.iter().cloned());
        }
        self.placed.insert(uid.to_string(), placement);
    }

    /// Stops counting the pod anywhere (it is gone, finished, or its binding failed).
    pub fn forget(&mut self, uid: &str) {
        let Some(placement) = self.placed.remove(uid) else { return };
        if let Some(info) = self.nodes.get_mut(&placement.node) {
            for (k, v) in &placement.requests {
                *info.requested.entry(k.clone()).or_default() -= v;
            }
            info.pods = info.pods.saturating_sub(1);
            for port in &placement.ports {
                if let Some(at) = info.host_ports.iter().position(|p| p == port) {
                    info.host_ports.swap_remove(at);
                }
            }
        }
    }
}
