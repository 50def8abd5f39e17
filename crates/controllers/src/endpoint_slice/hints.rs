//! Routing hints from a Service's `trafficDistribution`, as Kubernetes' EndpointSlice
//! controller writes them for service proxies: with PreferSameZone (or its older name
//! PreferClose) each ready endpoint is hinted for its own zone; with PreferSameNode, for its
//! own node as well. Endpoints that are not ready, and Services without a preference, get no
//! hints.

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointHints, ForNode, ForZone};

pub fn of(traffic_distribution: Option<&str>, endpoint: &Endpoint) -> Option<EndpointHints> {
    let same_node = match traffic_distribution? {
        "PreferClose" | "PreferSameZone" => false,
        "PreferSameNode" => true,
        _ => return None,
    };
    if endpoint.conditions.as_ref().and_then(|c| c.ready) != Some(true) {
        return None;
    }
    let named = |name: &Option<String>| name.clone().filter(|n| !n.is_empty());
    let for_zones = named(&endpoint.zone).map(|name| vec![ForZone { name }]);
    let for_nodes = named(&endpoint.node_name).filter(|_| same_node).map(|name| vec![ForNode { name }]);
    (for_zones.is_some() || for_nodes.is_some()).then_some(EndpointHints { for_nodes, for_zones })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn endpoint(ready: bool, zone: Option<&str>) -> Endpoint {
        serde_json::from_value(json!({"addresses": ["10.0.0.1"], "conditions": {"ready": ready},
                                      "nodeName": "n1", "zone": zone}))
        .unwrap()
    }

    fn hints(distribution: Option<&str>, endpoint: &Endpoint) -> Value {
        serde_json::to_value(of(distribution, endpoint)).unwrap()
    }

    #[test]
    fn ready_endpoints_are_hinted_for_their_zone_and_node() {
        let zoned = endpoint(true, Some("z1"));
        assert_eq!(hints(Some("PreferClose"), &zoned), json!({"forZones": [{"name": "z1"}]}));
        assert_eq!(hints(Some("PreferSameZone"), &zoned), json!({"forZones": [{"name": "z1"}]}));
        assert_eq!(
            hints(Some("PreferSameNode"), &zoned),
            json!({"forNodes": [{"name": "n1"}], "forZones": [{"name": "z1"}]})
        );
        assert_eq!(hints(Some("PreferSameNode"), &endpoint(true, None)), json!({"forNodes": [{"name": "n1"}]}));
    }

    #[test]
    fn no_preference_no_zone_or_not_ready_means_no_hints() {
        assert_eq!(hints(None, &endpoint(true, Some("z1"))), Value::Null);
        assert_eq!(hints(Some("PreferSameZone"), &endpoint(true, None)), Value::Null);
        assert_eq!(hints(Some("PreferSameZone"), &endpoint(false, Some("z1"))), Value::Null);
    }
}
