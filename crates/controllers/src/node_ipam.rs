//! Node IPAM: gives each node without one a podCIDR, the next free /24 of the cluster CIDR
//! (kube-controller-manager's range allocator with --allocate-node-cidrs). The node agent
//! waits for it before it wires its pod network. CIDRs nodes already hold, within the range,
//! are never handed out again.

use crate::{Error, Informers, drive, triggers};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

/// Each node's share of the cluster CIDR, Kubernetes' default for IPv4.
const NODE_MASK: u8 = 24;

/// An IPv4 range: its first address and prefix length.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    base: u32,
    prefix: u8,
}

impl std::str::FromStr for Range {
    type Err = String;

    fn from_str(s: &str) -> Result<Range, String> {
        let bad = || format!("{s:?} is not an IPv4 CIDR such as 10.42.0.0/16");
        let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > NODE_MASK {
            return Err(format!("the cluster CIDR {s} is smaller than one node's /{NODE_MASK}"));
        }
        Ok(Range { base: u32::from(ip) & (u32::MAX.checked_shl(32 - prefix as u32).unwrap_or(0)), prefix })
    }
}

impl Range {
    /// Every node CIDR of the range, in order.
    fn node_cidrs(self) -> impl Iterator<Item = String> {
        let count = 1u32 << (NODE_MASK - self.prefix);
        (0..count).map(move |i| format!("{}/{NODE_MASK}", Ipv4Addr::from(self.base + (i << (32 - NODE_MASK as u32)))))
    }
}

struct Ctx {
    client: kube::Client,
    informers: Arc<Informers>,
    range: Range,
    /// CIDRs handed out that the node informer may not show yet.
    given: Mutex<HashSet<String>>,
}

pub async fn run(client: kube::Client, informers: Arc<Informers>, cluster_cidr: Range) {
    let nodes = informers.nodes.clone();
    let controller = Controller::for_shared_stream(triggers(nodes.subscribe()), nodes.store());
    let ctx = Arc::new(Ctx { client, informers, range: cluster_cidr, given: Mutex::new(HashSet::new()) });
    drive("node-ipam-controller", controller, reconcile, ctx).await;
}

async fn reconcile(node: Arc<Node>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if node.spec.as_ref().and_then(|s| s.pod_cidr.as_ref()).is_some() {
        return Ok(Action::await_change());
    }
    let cidr = {
        let mut given = ctx.given.lock().unwrap();
        let held: HashSet<String> = ctx
            .informers
            .nodes
            .store()
            .state()
            .iter()
            .filter_map(|n| n.spec.as_ref().and_then(|s| s.pod_cidr.clone()))
            .collect();
        let free = ctx.range.node_cidrs().find(|c| !held.contains(c) && !given.contains(c));
        let Some(cidr) = free else {
            tracing::warn!(
                node = node.metadata.name.as_deref().unwrap_or(""),
                "no podCIDR is left in the cluster CIDR"
            );
            return Ok(Action::await_change());
        };
        given.insert(cidr.clone());
        cidr
    };
    let api: Api<Node> = Api::all(ctx.client.clone());
    let name = node.metadata.name.clone().unwrap_or_default();
    let patch = serde_json::json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    tracing::info!(node = name, pod_cidr = cidr, "allocated the node's podCIDR");
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_16_holds_256_node_cidrs_in_order() {
        let range: Range = "10.42.7.9/16".parse().unwrap();
        let cidrs: Vec<String> = range.node_cidrs().collect();
        assert_eq!(cidrs.len(), 256);
        assert_eq!(cidrs[0], "10.42.0.0/24");
        assert_eq!(cidrs[255], "10.42.255.0/24");
        assert!("10.42.0.0/25".parse::<Range>().is_err());
        assert!("10.42.0.0".parse::<Range>().is_err());
    }
}
