//! The Endpoints controller: for every Service with a selector, an Endpoints object of the
//! same name listing its pods' addresses, as kube-controller-manager keeps it. Ready pods go
//! in `addresses`, the others in `notReadyAddresses` (all in `addresses` when the Service
//! publishes not-ready addresses); pods being deleted are left out unless it does. Each
//! Service port resolves to the pod's port (a named targetPort may be missing from some
//! pods); pods with the same ports share a subset. A headless Service without ports still
//! lists its addresses. At most 1000 addresses are kept, ready ones first, and the object
//! is then annotated as truncated. Each write carries the [`trigger_time`] of the change
//! that made it. Endpoints of a Service that is gone are deleted.

use crate::service_pods::{self, ServicesOfPods};
use crate::trigger_time::{self, TriggerTimes};
use crate::{Error, Informers, drive, triggers};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service};
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The most addresses an Endpoints object holds.
const MAX_ADDRESSES: usize = 1000;
const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Endpoints kept by leader election, never the controller's to delete.
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

struct Context {
    client: kube::Client,
    informers: Arc<Informers>,
    pods_of_services: Arc<ServicesOfPods>,
    trigger_times: Arc<TriggerTimes>,
}

pub async fn run(client: kube::Client, informers: Arc<Informers>) {
    let services = &informers.services;
    let pods = informers.pods.subscribe().map(|c| c.object);
    let pods_of_services = Arc::new(ServicesOfPods::default());
    let trigger_times = Arc::new(TriggerTimes::default());
    let endpoints = informers.endpoints.subscribe().map(|c| c.object);
    let controller =
        Controller::for_shared_stream(triggers(trigger_times.forgetting(services.subscribe())), services.store())
            .watches_shared_stream(pods, pods_of_services.mapper(informers.pods.store(), services.store()))
            .watches_shared_stream(endpoints, |e: Arc<Endpoints>| {
                Some(ObjectRef::<Service>::new(e.metadata.name.as_deref()?).within(e.metadata.namespace.as_deref()?))
            });
    let ctx = Arc::new(Context { client, informers: informers.clone(), pods_of_services, trigger_times });
    tokio::join!(drive("endpoint-controller", controller, reconcile, ctx.clone()), delete_leftovers(ctx));
}

async fn reconcile(service: Arc<Service>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.informers.pods.ready().await;
    ctx.informers.endpoints.ready().await;
    if service_pods::selector(&service).is_none() || service.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = service.metadata.namespace.clone().unwrap_or_default();
    let name = service.metadata.name.clone().unwrap_or_default();
    let pods = service_pods::selected(&service, &ctx.informers.pods);
    ctx.pods_of_services.remember(&service, &pods);
    let trigger_time = ctx.trigger_times.sync(&service, &pods);
    let (subsets, truncated) = subsets(&service, &pods);
    let current = ctx.informers.endpoints.get(&namespace, &name);
    let mut desired = current.as_deref().cloned().unwrap_or_default();
    desired.metadata.name = Some(name.clone());
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    labels.remove(HEADLESS_LABEL);
    if service_pods::is_headless(&service) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    desired.metadata.labels = Some(labels).filter(|l| !l.is_empty());
    let mut annotations = desired.metadata.annotations.take().unwrap_or_default();
    annotations.remove(OVER_CAPACITY);
    if truncated {
        annotations.insert(OVER_CAPACITY.into(), "truncated".into());
    }
    desired.metadata.annotations = Some(annotations).filter(|a| !a.is_empty());
    desired.subsets = Some(subsets).filter(|s| !s.is_empty());
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &namespace);
    // The trigger time goes with a write, and makes none.
    if current.as_deref() == Some(&desired) {
        return Ok(Action::await_change());
    }
    trigger_time::annotate(&mut desired.metadata.annotations, trigger_time);
    match current {
        Some(_) => api.replace(&name, &PostParams::default(), &desired).await?,
        None => api.create(&PostParams::default(), &desired).await?,
    };
    Ok(Action::await_change())
}

/// The Service's subsets from its pods, and whether addresses were left out for capacity.
fn subsets(service: &Service, pods: &[Arc<Pod>]) -> (Vec<EndpointSubset>, bool) {
    let publish_not_ready = service_pods::publishes_not_ready(service);
    // Pods grouped by the ports they serve: (ready, not ready) addresses per port list.
    let mut groups: BTreeMap<Vec<PortKey>, (Vec<EndpointAddress>, Vec<EndpointAddress>)> = BTreeMap::new();
    for pod in pods.iter().filter(|p| service_pods::is_endpoint(p, publish_not_ready)) {
        let Some(ip) = service_pods::address(service, pod) else { continue };
        let address = EndpointAddress {
            ip,
            hostname: service_pods::hostname(service, pod),
            node_name: Some(crate::pods::node_name(pod).to_string()).filter(|n| !n.is_empty()),
            target_ref: Some(service_pods::pod_reference(pod)),
        };
        let service_ports = service_pods::ports(service);
        let ports: Vec<PortKey> =
            service_ports.iter().filter_map(|p| Some(PortKey::of(p, service_pods::target_port(pod, p)?))).collect();
        if ports.is_empty() && !(service_ports.is_empty() && service_pods::is_headless(service)) {
            continue;
        }
        let (ready, not_ready) = groups.entry(ports).or_default();
        if publish_not_ready || crate::pods::is_ready(pod) { ready.push(address) } else { not_ready.push(address) }
    }
    let total: usize = groups.values().map(|(r, n)| r.len() + n.len()).sum();
    let mut room = MAX_ADDRESSES;
    let mut take = |addresses: &mut Vec<EndpointAddress>| {
        addresses.sort_by(|a, b| (&a.ip, uid(a)).cmp(&(&b.ip, uid(b))));
        addresses.truncate(room);
        room -= addresses.len();
    };
    for (ready, _) in groups.values_mut() {
        take(ready);
    }
    for (_, not_ready) in groups.values_mut() {
        take(not_ready);
    }
    let subsets = groups
        .into_iter()
        .filter(|(_, (r, n))| !r.is_empty() || !n.is_empty())
        .map(|(ports, (ready, not_ready))| EndpointSubset {
            addresses: Some(ready).filter(|a| !a.is_empty()),
            not_ready_addresses: Some(not_ready).filter(|a| !a.is_empty()),
            ports: Some(ports.into_iter().map(PortKey::into_port).collect()).filter(|p: &Vec<_>| !p.is_empty()),
        })
        .collect();
    (subsets, total > MAX_ADDRESSES)
}

fn uid(address: &EndpointAddress) -> Option<&str> {
    address.target_ref.as_ref().and_then(|r| r.uid.as_deref())
}

/// An endpoint port, ordered so that equal port lists group together.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PortKey {
    name: String,
    port: i32,
    protocol: String,
    app_protocol: Option<String>,
}

impl PortKey {
    fn of(service_port: &k8s_openapi::api::core::v1::ServicePort, port: i32) -> PortKey {
        PortKey {
            name: service_port.name.clone().unwrap_or_default(),
            port,
            protocol: service_port.protocol.clone().unwrap_or_else(|| "TCP".into()),
            app_protocol: service_port.app_protocol.clone(),
        }
    }

    fn into_port(self) -> EndpointPort {
        EndpointPort {
            name: Some(self.name).filter(|n| !n.is_empty()),
            port: self.port,
            protocol: Some(self.protocol),
            app_protocol: self.app_protocol,
        }
    }
}

/// Deletes the Endpoints of Services that are gone: those left when the controllers were
/// down, at start, then each as its Service is deleted.
async fn delete_leftovers(ctx: Arc<Context>) {
    let informers = &ctx.informers;
    informers.services.ready().await;
    informers.endpoints.ready().await;
    for endpoints in informers.endpoints.store().state() {
        delete_if_left_over(&ctx, &endpoints).await;
    }
    let mut deletions = informers.services.subscribe().filter(|c| std::future::ready(c.deleted));
    while let Some(change) = deletions.next().await {
        let meta = &change.object.metadata;
        let (namespace, name) =
            (meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default());
        if let Some(endpoints) = informers.endpoints.get(namespace, name) {
            delete_if_left_over(&ctx, &endpoints).await;
        }
    }
}

async fn delete_if_left_over(ctx: &Context, endpoints: &Endpoints) {
    let meta = &endpoints.metadata;
    let (namespace, name) = (meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default());
    let leader = meta.annotations.as_ref().is_some_and(|a| a.contains_key(LEADER_ANNOTATION));
    if leader || ctx.informers.services.get(namespace, name).is_some() {
        return;
    }
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), namespace);
    let params = DeleteParams {
        preconditions: Some(Preconditions { uid: meta.uid.clone(), resource_version: None }),
        ..Default::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
        Err(e) => tracing::warn!(namespace, name, error = %e, "could not delete the Endpoints of a deleted Service"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ip: &str, ready: bool, ports: serde_json::Value) -> Arc<Pod> {
        let ready = if ready { "True" } else { "False" };
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default", "uid": name, "labels": {"app": "web"}},
                "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "nginx", "ports": ports}]},
                "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": ready}]},
            }))
            .unwrap(),
        )
    }

    fn service(spec: serde_json::Value) -> Service {
        let mut spec = spec;
        spec["selector"] = json!({"app": "web"});
        serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})).unwrap()
    }

    fn ips(addresses: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
        addresses.iter().flatten().map(|a| a.ip.as_str()).collect()
    }

    #[test]
    fn pods_group_by_the_ports_they_serve() {
        let svc = service(json!({"ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}));
        let pods = [
            pod("a", "10.0.0.2", true, json!([{"name": "http", "containerPort": 8080}])),
            pod("b", "10.0.0.1", false, json!([{"name": "http", "containerPort": 8080}])),
            pod("c", "10.0.0.3", true, json!([{"name": "http", "containerPort": 9090}])),
            pod("d", "10.0.0.4", true, json!([])),
        ];
        let (subsets, truncated) = subsets(&svc, &pods);
        assert!(!truncated);
        assert_eq!(subsets.len(), 2);
        assert_eq!(ips(&subsets[0].addresses), ["10.0.0.2"]);
        assert_eq!(ips(&subsets[0].not_ready_addresses), ["10.0.0.1"]);
        assert_eq!(subsets[0].ports.as_ref().unwrap()[0].port, 8080);
        assert_eq!(ips(&subsets[1].addresses), ["10.0.0.3"]);
    }

    #[test]
    fn publishing_not_ready_addresses_makes_them_ready() {
        let svc = service(json!({"publishNotReadyAddresses": true, "ports": [{"port": 80, "targetPort": 80}]}));
        let (subsets, _) = subsets(&svc, &[pod("b", "10.0.0.1", false, json!([]))]);
        assert_eq!(ips(&subsets[0].addresses), ["10.0.0.1"]);
        assert!(subsets[0].not_ready_addresses.is_none());
    }

    #[test]
    fn headless_services_without_ports_list_addresses() {
        let (headless, _) = subsets(&service(json!({"clusterIP": "None"})), &[pod("a", "10.0.0.1", true, json!([]))]);
        assert_eq!(ips(&headless[0].addresses), ["10.0.0.1"]);
        assert!(headless[0].ports.is_none());
        let (portless, _) = subsets(&service(json!({})), &[pod("a", "10.0.0.1", true, json!([]))]);
        assert!(portless.is_empty());
    }

    #[test]
    fn addresses_beyond_capacity_are_truncated_ready_first() {
        let svc = service(json!({"ports": [{"port": 80, "targetPort": 80}]}));
        let pods: Vec<_> = (0..1200)
            .map(|i| pod(&format!("p{i}"), &format!("10.0.{}.{}", i / 250, i % 250), i >= 300, json!([])))
            .collect();
        let (subsets, truncated) = subsets(&svc, &pods);
        assert!(truncated);
        assert_eq!(subsets[0].addresses.as_ref().unwrap().len(), 900);
        assert_eq!(subsets[0].not_ready_addresses.as_ref().unwrap().len(), 100);
    }
}
