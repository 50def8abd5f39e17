//! The EndpointSlice controller: the endpoints of every Service with a selector, as
//! discovery.k8s.io/v1 EndpointSlices of at most 100 endpoints, owned by the Service and
//! labelled with its name and this controller's. Each pod with an address that has not
//! finished is an endpoint, with the conditions kube-controller-manager gives it: serving
//! when Ready, terminating while being deleted, ready when serving and not terminating
//! (always ready when the Service publishes not-ready addresses); with its node,
//! the node's zone, its hostname under the Service, and the routing [`hints`] its Service's
//! trafficDistribution asks for. The slices each sync writes carry its [`trigger_time`].
//! Pods on nodes that do not exist are left out. While there
//! are no endpoints, one empty placeholder slice remains. Slices of a Service that loses its
//! selector are deleted (the Service's endpoints become the user's).

mod hints;
pub mod reconciler;

use crate::service_pods::{self, ServicesOfPods};
use crate::trigger_time::{self, TriggerTimes};
use crate::{Error, Informers, drive, triggers};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use reconciler::{Group, MANAGED_BY_LABEL, SERVICE_NAME_LABEL, Template, Writer};
use std::sync::Arc;
use std::time::Duration;

pub const MANAGER: &str = "endpointslice-controller.k8s.io";
/// The most endpoints in one slice (kube-controller-manager's --max-endpoints-per-slice).
const MAX_ENDPOINTS_PER_SLICE: usize = 100;
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

struct Context {
    informers: Arc<Informers>,
    writer: Writer,
    pods_of_services: Arc<ServicesOfPods>,
    trigger_times: Arc<TriggerTimes>,
}

pub async fn run(client: kube::Client, informers: Arc<Informers>) {
    let services = &informers.services;
    let pods = informers.pods.subscribe().map(|c| c.object);
    let pods_of_services = Arc::new(ServicesOfPods::default());
    let slices = informers.endpoint_slices.subscribe().map(|c| c.object);
    let trigger_times = Arc::new(TriggerTimes::default());
    let controller =
        Controller::for_shared_stream(triggers(trigger_times.forgetting(services.subscribe())), services.store())
            .watches_shared_stream(pods, pods_of_services.mapper(informers.pods.store(), services.store()))
            .watches_shared_stream(slices, service_of);
    let writer = Writer::new(client, informers.endpoint_slices.clone());
    let ctx = Context { informers: informers.clone(), writer, pods_of_services, trigger_times };
    drive("endpointslice-controller", controller, reconcile, Arc::new(ctx)).await;
}

/// The Service a slice this controller manages belongs to.
fn service_of(slice: Arc<EndpointSlice>) -> Option<ObjectRef<Service>> {
    let labels = slice.metadata.labels.as_ref()?;
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGER) {
        return None;
    }
    Some(ObjectRef::new(labels.get(SERVICE_NAME_LABEL)?).within(slice.metadata.namespace.as_deref()?))
}

async fn reconcile(service: Arc<Service>, ctx: Arc<Context>) -> Result<Action, Error> {
    let informers = &ctx.informers;
    informers.pods.ready().await;
    informers.nodes.ready().await;
    informers.endpoint_slices.ready().await;
    if service.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let uid = service.metadata.uid.as_deref().unwrap_or_default();
    let Some(existing) = ctx.writer.existing(uid, MANAGER) else {
        return Ok(Action::requeue(Duration::from_millis(200)));
    };
    let (template, Grouped { groups, nodes_missing }, trigger_time) = match service_pods::selector(&service) {
        Some(_) => {
            let pods = service_pods::selected(&service, &informers.pods);
            ctx.pods_of_services.remember(&service, &pods);
            let trigger_time = ctx.trigger_times.sync(&service, &pods);
            (template(&service), groups(&service, &pods, informers), trigger_time)
        }
        None => (Template { placeholder: None, ..template(&service) }, Grouped::default(), None),
    };
    let mut plan = reconciler::plan(&template, existing, groups);
    // The slices written carry the trigger time; the others keep theirs.
    for slice in plan.create.iter_mut().chain(&mut plan.update) {
        trigger_time::annotate(&mut slice.metadata.annotations, trigger_time);
    }
    ctx.writer.write(&template.namespace, plan).await?;
    // A pod left out because its node is not known yet is looked at again: nodes do not
    // trigger this controller.
    Ok(if nodes_missing { Action::requeue(MISSING_NODE_RETRY) } else { Action::await_change() })
}

/// How soon a Service with pods on unknown nodes is reconciled again.
const MISSING_NODE_RETRY: Duration = Duration::from_secs(1);

fn template(service: &Service) -> Template {
    let name = service.metadata.name.clone().unwrap_or_default();
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    labels.remove(crate::endpoints::HEADLESS_LABEL);
    if service_pods::is_headless(service) {
        labels.insert(crate::endpoints::HEADLESS_LABEL.into(), String::new());
    }
    labels.insert(SERVICE_NAME_LABEL.into(), name);
    labels.insert(MANAGED_BY_LABEL.into(), MANAGER.into());
    Template {
        owner: crate::owner::reference(service),
        namespace: service.metadata.namespace.clone().unwrap_or_default(),
        labels,
        annotations: Default::default(),
        capacity: MAX_ENDPOINTS_PER_SLICE,
        placeholder: Some(service_pods::address_type(service)),
    }
}

#[derive(Default)]
struct Grouped {
    groups: Vec<Group>,
    /// Some pod was left out because its node is not known.
    nodes_missing: bool,
}

/// The Service's endpoints, grouped by the ports their pods serve. A pod on a node not (or
/// not yet) known is left out, as Kubernetes leaves it out, unless the Service publishes
/// addresses that are not ready: its user asked for every address.
fn groups(service: &Service, pods: &[Arc<Pod>], informers: &Informers) -> Grouped {
    let address_type = service_pods::address_type(service);
    let traffic_distribution = service.spec.as_ref().and_then(|s| s.traffic_distribution.as_deref());
    let mut groups = Vec::new();
    let mut nodes_missing = false;
    for pod in pods.iter().filter(|p| service_pods::is_endpoint(p, true)) {
        let node_name = crate::pods::node_name(pod);
        let node = informers.nodes.get("", node_name);
        if !node_name.is_empty() && node.is_none() && !service_pods::publishes_not_ready(service) {
            nodes_missing = true;
            continue;
        }
        let Some(address) = service_pods::address(service, pod) else { continue };
        let ports = service_pods::ports(service)
            .iter()
            .filter_map(|p| {
                Some(EndpointPort {
                    name: Some(p.name.clone().unwrap_or_default()),
                    port: Some(service_pods::target_port(pod, p)?),
                    protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: p.app_protocol.clone(),
                })
            })
            .collect();
        let mut endpoint = Endpoint {
            addresses: vec![address],
            conditions: Some(conditions(service, pod)),
            hostname: service_pods::hostname(service, pod),
            node_name: Some(node_name.to_string()).filter(|n| !n.is_empty()),
            zone: node.and_then(|n| n.metadata.labels.as_ref()?.get(ZONE_LABEL).cloned()),
            target_ref: Some(service_pods::pod_reference(pod)),
            ..Default::default()
        };
        endpoint.hints = hints::of(traffic_distribution, &endpoint);
        reconciler::add(&mut groups, address_type, ports, endpoint);
    }
    for group in &mut groups {
        group.endpoints.sort_by(|a, b| a.addresses.cmp(&b.addresses));
    }
    Grouped { groups, nodes_missing }
}

fn conditions(service: &Service, pod: &Pod) -> EndpointConditions {
    let publish_not_ready = service_pods::publishes_not_ready(service);
    let serving = crate::pods::is_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    EndpointConditions {
        ready: Some(publish_not_ready || (serving && !terminating)),
        serving: Some(serving),
        terminating: Some(terminating),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ready: bool, terminating: bool) -> Pod {
        let mut meta = json!({"name": "a", "namespace": "default"});
        if terminating {
            meta["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        let ready = if ready { "True" } else { "False" };
        serde_json::from_value(json!({"metadata": meta, "status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": ready}]}})).unwrap()
    }

    fn service(publish_not_ready: bool) -> Service {
        serde_json::from_value(
            json!({"metadata": {"name": "web"}, "spec": {"publishNotReadyAddresses": publish_not_ready}}),
        )
        .unwrap()
    }

    fn flags(c: EndpointConditions) -> (bool, bool, bool) {
        (c.ready.unwrap(), c.serving.unwrap(), c.terminating.unwrap())
    }

    #[test]
    fn conditions_follow_readiness_and_termination() {
        assert_eq!(flags(conditions(&service(false), &pod(true, false))), (true, true, false));
        assert_eq!(flags(conditions(&service(false), &pod(false, false))), (false, false, false));
        assert_eq!(flags(conditions(&service(false), &pod(true, true))), (false, true, true));
        assert_eq!(flags(conditions(&service(true), &pod(false, true))), (true, false, true));
    }
}
