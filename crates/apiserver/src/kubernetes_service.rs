//! The `kubernetes` Service in default, and the Endpoints and EndpointSlice that say where
//! it leads: this server's advertised address and port. Pods reach the API through it. As
//! kube-apiserver's endpoint reconciler does, the server rewrites them at every start (its
//! address or port may have changed), and marks the Endpoints not to be mirrored, since it
//! writes the EndpointSlice itself.

use crate::api::Api;
use crate::bootstrap::put;
use serde_json::json;
use std::net::SocketAddr;

const NAME: &str = "kubernetes";
const NAMESPACE: &str = "default";

/// Makes the Service, its Endpoints and its EndpointSlice say `advertise`.
pub async fn reconcile(api: &Api, advertise: SocketAddr) -> anyhow::Result<()> {
    let port = advertise.port();
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": api.services.first_ip(),
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]},
    });
    put(api, ("", "v1", "services"), Some(NAMESPACE), service, &["/spec/ports"]).await?;
    let endpoints = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": NAME, "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": advertise.ip().to_string()}],
                     "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
    });
    put(api, ("", "v1", "endpoints"), Some(NAMESPACE), endpoints, &["/subsets"]).await?;
    let address_type = if advertise.is_ipv4() { "IPv4" } else { "IPv6" };
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": NAME, "labels": {"kubernetes.io/service-name": NAME}},
        "addressType": address_type,
        "endpoints": [{"addresses": [advertise.ip().to_string()], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    });
    put(api, ("discovery.k8s.io", "v1", "endpointslices"), Some(NAMESPACE), slice, &["/endpoints", "/ports"]).await
}
