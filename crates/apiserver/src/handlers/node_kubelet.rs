//! Where a node's kubelet listens, for the pod and node subresources the API server proxies
//! to it (pods/log, exec, attach, portforward, nodes/proxy): the node's first address of the
//! preferred types, and the port it reports.

use super::Ctx;
use crate::error::{ApiError, ApiResult, Subject};
use crate::objects;
use serde_json::Value;

/// The order node addresses are tried in. kube-apiserver's default puts Hostname first, which
/// needs every node's host name to resolve from the control plane; skiff, like k3s, prefers
/// the addresses the node reports, and falls back to names.
const PREFERRED_ADDRESS_TYPES: [&str; 5] = ["InternalIP", "ExternalIP", "Hostname", "InternalDNS", "ExternalDNS"];
/// The kubelet port when a node does not say (kube-apiserver's --kubelet-port).
const DEFAULT_KUBELET_PORT: u16 = 10250;

/// The host and port of the kubelet of the node named.
pub async fn locate(ctx: &Ctx, node_name: &str) -> ApiResult<(String, u16)> {
    let nodes = ctx.api.registry.get("", "v1", "nodes").ok_or_else(|| ApiError::internal("no nodes resource"))?;
    let kv = ctx.api.store.get(&objects::key(nodes, None, node_name)).await?;
    let kv =
        kv.ok_or_else(|| ApiError::not_found(Subject { group: "", plural: "nodes", kind: "Node", name: node_name }))?;
    endpoint(&objects::decode(nodes, &kv)?)
}

/// Where the node's kubelet listens: its first address of the preferred types, and its port.
fn endpoint(node: &Value) -> ApiResult<(String, u16)> {
    let addresses = node["status"]["addresses"].as_array().map(Vec::as_slice).unwrap_or_default();
    let host = PREFERRED_ADDRESS_TYPES
        .iter()
        .find_map(|t| addresses.iter().find(|a| a["type"] == *t).and_then(|a| a["address"].as_str()))
        .ok_or_else(|| {
            let known: Vec<String> = addresses
                .iter()
                .map(|a| format!("{{{} {}}}", a["type"].as_str().unwrap_or(""), a["address"].as_str().unwrap_or("")))
                .collect();
            ApiError::new(500, "", format!("no preferred addresses found; known addresses: [{}]", known.join(" ")))
        })?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_kubelet_is_reached_at_the_preferred_address() {
        let node = json!({"status": {
            "addresses": [{"type": "ExternalIP", "address": "1.2.3.4"}, {"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10260}},
        }});
        assert_eq!(endpoint(&node).unwrap(), ("10.0.0.5".to_string(), 10260));
        let node = json!({"status": {"addresses": [
            {"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "10.0.0.5"},
        ]}});
        assert_eq!(endpoint(&node).unwrap(), ("10.0.0.5".to_string(), 10250));
        let named = json!({"status": {"addresses": [{"type": "Hostname", "address": "node-1"}]}});
        assert_eq!(endpoint(&named).unwrap(), ("node-1".to_string(), 10250));
        let e = endpoint(&json!({"status": {"addresses": [{"type": "Other", "address": "x"}]}})).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (500, "no preferred addresses found; known addresses: [{Other x}]"));
    }
}
