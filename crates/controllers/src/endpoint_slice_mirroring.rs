//! The EndpointSlice mirroring controller: the Endpoints a user keeps for a Service without
//! a selector, mirrored into EndpointSlices owned by the Endpoints object, as
//! kube-controller-manager does, so that slice readers see them too. Each subset becomes
//! slices of its ports and address type, of up to 1000 addresses (the rest are not
//! mirrored): `addresses` as ready endpoints, `notReadyAddresses` as not ready. Endpoints are
//! not mirrored when labelled `endpointslice.kubernetes.io/skip-mirror: "true"`, when they
//! hold a leader election record, or when their Service is missing or has a selector; their
//! mirrored slices are then deleted.

use crate::endpoint_slice::reconciler::{self, Group, MANAGED_BY_LABEL, SERVICE_NAME_LABEL, Template, Writer};
use crate::{Error, Informers, drive, triggers};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub const MANAGER: &str = "endpointslicemirroring-controller.k8s.io";
const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
/// The most addresses of one subset mirrored (--mirroring-max-endpoints-per-subset).
const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;
/// Annotations of the Endpoints that are not carried over to the slices.
const NOT_MIRRORED_ANNOTATIONS: &[&str] =
    &["endpoints.kubernetes.io/last-change-trigger-time", "kubectl.kubernetes.io/last-applied-configuration"];

struct Context {
    informers: Arc<Informers>,
    writer: Writer,
}

pub async fn run(client: kube::Client, informers: Arc<Informers>) {
    let endpoints = &informers.endpoints;
    let services = informers.services.subscribe().map(|c| c.object);
    let slices = informers.endpoint_slices.subscribe().map(|c| c.object);
    let controller = Controller::for_shared_stream(triggers(endpoints.subscribe()), endpoints.store())
        .watches_shared_stream(services, |s: Arc<Service>| Some(named(&s.metadata, s.metadata.name.as_deref()?)))
        .watches_shared_stream(slices, |s: Arc<EndpointSlice>| {
            let endpoints = s.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
            managed(&s).then(|| named(&s.metadata, endpoints))
        });
    let writer = Writer::new(client, informers.endpoint_slices.clone());
    drive(
        "endpointslicemirroring-controller",
        controller,
        reconcile,
        Arc::new(Context { informers: informers.clone(), writer }),
    )
    .await;
}

/// The Endpoints named `name` in the namespace of the object `meta` describes.
fn named(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, name: &str) -> ObjectRef<Endpoints> {
    ObjectRef::new(name).within(meta.namespace.as_deref().unwrap_or_default())
}

fn managed(slice: &EndpointSlice) -> bool {
    slice.metadata.labels.as_ref().and_then(|l| l.get(MANAGED_BY_LABEL)).map(String::as_str) == Some(MANAGER)
}

/// Whether these Endpoints are to be mirrored.
fn mirrored(endpoints: &Endpoints, informers: &Informers) -> bool {
    let meta = &endpoints.metadata;
    let skipped = meta.labels.as_ref().and_then(|l| l.get(SKIP_MIRROR_LABEL)).map(String::as_str) == Some("true");
    let leader = meta.annotations.as_ref().is_some_and(|a| a.contains_key(LEADER_ANNOTATION));
    let service =
        informers.services.get(meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default());
    let selectorless =
        service.is_some_and(|s| s.spec.as_ref().and_then(|s| s.selector.as_ref()).is_none_or(|s| s.is_empty()));
    !skipped && !leader && selectorless && meta.deletion_timestamp.is_none()
}

async fn reconcile(endpoints: Arc<Endpoints>, ctx: Arc<Context>) -> Result<Action, Error> {
    let informers = &ctx.informers;
    informers.services.ready().await;
    informers.endpoint_slices.ready().await;
    let uid = endpoints.metadata.uid.as_deref().unwrap_or_default();
    let Some(existing) = ctx.writer.existing(uid, MANAGER) else {
        return Ok(Action::requeue(Duration::from_millis(200)));
    };
    let groups = if mirrored(&endpoints, informers) { groups(&endpoints) } else { Vec::new() };
    let template = template(&endpoints);
    let plan = reconciler::plan(&template, existing, groups);
    ctx.writer.write(&template.namespace, plan).await?;
    Ok(Action::await_change())
}

fn template(endpoints: &Endpoints) -> Template {
    let meta = &endpoints.metadata;
    let mut labels = meta.labels.clone().unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.into(), meta.name.clone().unwrap_or_default());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGER.into());
    let mut annotations = meta.annotations.clone().unwrap_or_default();
    annotations.retain(|k, _| !NOT_MIRRORED_ANNOTATIONS.contains(&k.as_str()));
    Template {
        owner: crate::owner::reference(endpoints),
        namespace: meta.namespace.clone().unwrap_or_default(),
        labels,
        annotations,
        capacity: MAX_ENDPOINTS_PER_SUBSET,
        placeholder: None,
    }
}

/// The endpoints of each subset, by address type, ready ones first, up to the limit.
fn groups(endpoints: &Endpoints) -> Vec<Group> {
    let mut groups = Vec::new();
    for subset in endpoints.subsets.iter().flatten() {
        let ports: Vec<EndpointPort> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| EndpointPort {
                name: p.name.clone(),
                port: Some(p.port),
                protocol: p.protocol.clone(),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset.not_ready_addresses.iter().flatten().map(|a| (a, false));
        for (address, ready) in ready.chain(not_ready).take(MAX_ENDPOINTS_PER_SUBSET) {
            let Ok(ip) = address.ip.parse::<IpAddr>() else { continue };
            let address_type = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
            reconciler::add(&mut groups, address_type, ports.clone(), endpoint(address, ready));
        }
    }
    groups
}

fn endpoint(address: &EndpointAddress, ready: bool) -> Endpoint {
    Endpoint {
        addresses: vec![address.ip.clone()],
        conditions: Some(EndpointConditions { ready: Some(ready), ..Default::default() }),
        hostname: address.hostname.clone().filter(|h| !h.is_empty()),
        node_name: address.node_name.clone(),
        target_ref: address.target_ref.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subsets_become_groups_by_ports_and_address_type() {
        let endpoints: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "default"},
            "subsets": [
                {"addresses": [{"ip": "192.0.2.1"}, {"ip": "2001:db8::1"}], "notReadyAddresses": [{"ip": "192.0.2.2"}], "ports": [{"name": "sql", "port": 5432}]},
                {"addresses": [{"ip": "192.0.2.3"}, {"ip": "not-an-ip"}], "ports": [{"name": "metrics", "port": 9187}]},
            ],
        }))
        .unwrap();
        let groups = groups(&endpoints);
        let summary: Vec<_> = groups
            .iter()
            .map(|g| {
                (
                    g.address_type.as_str(),
                    g.ports[0].port.unwrap(),
                    g.endpoints
                        .iter()
                        .map(|e| (e.addresses[0].as_str(), e.conditions.as_ref().unwrap().ready.unwrap()))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("IPv4", 5432, vec![("192.0.2.1", true), ("192.0.2.2", false)]),
                ("IPv6", 5432, vec![("2001:db8::1", true)]),
                ("IPv4", 9187, vec![("192.0.2.3", true)]),
            ]
        );
    }
}
