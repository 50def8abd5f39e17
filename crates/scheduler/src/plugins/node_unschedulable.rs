//! NodeUnschedulable: cordoned nodes take only pods that tolerate
//! `node.kubernetes.io/unschedulable:NoSchedule`.

use super::taint_toleration::tolerates;
use crate::cache::NodeInfo;
use crate::framework::{Filter, PodInfo};
use k8s_openapi::api::core::v1::Taint;

pub struct NodeUnschedulable;

impl Filter for NodeUnschedulable {
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), String> {
        let cordoned = node.node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
        let taint = Taint { key: "node.kubernetes.io/unschedulable".into(), effect: "NoSchedule".into(), ..Default::default() };
        if cordoned && !tolerates(pod.spec().tolerations.as_deref().unwrap_or_default(), &taint) {
            return Err("node(s) were unschedulable".into());
        }
        Ok(())
    }
}
