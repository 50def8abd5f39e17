//! Which pods back a Service, and at which ports: what the Endpoints and EndpointSlice
//! controllers both read. A Service's pods are those of its namespace its selector
//! matches; a Service without a selector, or of type ExternalName, has none the controllers
//! manage (its endpoints are the user's).

use crate::informer::Informer;
use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The selector the controllers build endpoints from, if any.
pub fn selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref().filter(|s| !s.is_empty())
}

fn selects(service: &Service, pod: &Pod) -> bool {
    let Some(selector) = selector(service) else { return false };
    let labels = crate::owner::labels_of(pod);
    service.metadata.namespace == pod.metadata.namespace && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The pods `service` selects, whatever their state.
pub fn selected(service: &Service, pods: &Informer<Pod>) -> Vec<Arc<Pod>> {
    pods.store().state().into_iter().filter(|p| selects(service, p)).collect()
}

/// Whether the pod is an endpoint at all: it has an address and has not finished; one being
/// deleted counts only when `include_terminating`.
pub fn is_endpoint(pod: &Pod, include_terminating: bool) -> bool {
    let has_ip = pod.status.as_ref().is_some_and(|s| {
        s.pod_ip.as_deref().is_some_and(|ip| !ip.is_empty()) || s.pod_ips.as_ref().is_some_and(|ips| !ips.is_empty())
    });
    has_ip && !crate::pods::is_terminal(pod) && (include_terminating || pod.metadata.deletion_timestamp.is_none())
}

pub fn is_headless(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

pub fn publishes_not_ready(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.publish_not_ready_addresses).unwrap_or(false)
}

pub fn ports(service: &Service) -> &[ServicePort] {
    service.spec.as_ref().and_then(|s| s.ports.as_deref()).unwrap_or_default()
}

/// The pod's address of the family the Service serves (IPv4 unless its first family is
/// IPv6).
pub fn address(service: &Service, pod: &Pod) -> Option<String> {
    let v6 = address_type(service) == "IPv6";
    let status = pod.status.as_ref()?;
    let all = status.pod_ips.iter().flatten().map(|a| a.ip.as_str()).chain(status.pod_ip.as_deref());
    all.into_iter().find(|ip| ip.contains(':') == v6).map(str::to_string)
}

/// The EndpointSlice address type of the Service's primary IP family.
pub fn address_type(service: &Service) -> &'static str {
    let families = service.spec.as_ref().and_then(|s| s.ip_families.as_ref());
    match families.and_then(|f| f.first()).map(String::as_str) {
        Some("IPv6") => "IPv6",
        _ => "IPv4",
    }
}

/// The pod's port for a Service port: a numeric targetPort as it is, a named one looked
/// up among the pod's container ports of the same protocol (None if the pod has none by
/// that name).
pub fn target_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) if *n > 0 => Some(*n),
        Some(IntOrString::Int(_)) => Some(port.port),
        Some(IntOrString::String(name)) => {
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let spec = pod.spec.as_ref()?;
            let sidecars =
                spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
            let containers = spec.containers.iter().chain(sidecars);
            let mut declared = containers.flat_map(|c| c.ports.iter().flatten());
            declared
                .find(|p| p.name.as_deref() == Some(name) && p.protocol.as_deref().unwrap_or("TCP") == protocol)
                .map(|p| p.container_port)
        }
    }
}

/// The hostname the pod publishes under the Service: its `hostname` when its `subdomain`
/// names the Service.
pub fn hostname(service: &Service, pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    let named = spec.subdomain.as_deref() == service.metadata.name.as_deref()
        && pod.metadata.namespace == service.metadata.namespace;
    named.then(|| hostname.to_string())
}

pub fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

type PodKey = (String, String);

/// Maps a pod's changes to the Services they concern: those selecting it now and those it
/// was last known to belong to (a relabelled pod leaves a Service's endpoints). A pod is
/// known to belong to a Service from its changes and from the Service's reconciles (its
/// first changes may come before the Service itself).
#[derive(Default)]
pub struct ServicesOfPods {
    last: Mutex<HashMap<PodKey, Vec<ObjectRef<Service>>>>,
}

fn key_of(pod: &Pod) -> PodKey {
    (pod.metadata.namespace.clone().unwrap_or_default(), pod.metadata.name.clone().unwrap_or_default())
}

impl ServicesOfPods {
    /// A controller's mapping from pod changes to Services. A pod no longer in `pods` (which
    /// is updated before its changes are passed on) was deleted.
    pub fn mapper(
        self: &Arc<Self>,
        pods: Store<Pod>,
        services: Store<Service>,
    ) -> impl Fn(Arc<Pod>) -> Vec<ObjectRef<Service>> + Send + Sync + 'static {
        let map = self.clone();
        move |pod: Arc<Pod>| {
            let deleted = pods.get(&ObjectRef::from_obj(&pod)).is_none_or(|p| p.metadata.uid != pod.metadata.uid);
            map.concerned(&pod, deleted, &services)
        }
    }

    /// The pods a reconcile of `service` found it selects.
    pub fn remember(&self, service: &Service, pods: &[Arc<Pod>]) {
        let service = ObjectRef::from_obj(service);
        let mut last = self.last.lock().unwrap();
        for pod in pods {
            let services = last.entry(key_of(pod)).or_default();
            if !services.contains(&service) {
                services.push(service.clone());
            }
        }
    }

    fn concerned(&self, pod: &Pod, deleted: bool, services: &Store<Service>) -> Vec<ObjectRef<Service>> {
        let key = key_of(pod);
        let now: Vec<ObjectRef<Service>> = if deleted {
            Vec::new()
        } else {
            services.state().iter().filter(|s| selects(s, pod)).map(|s| ObjectRef::from_obj(s.as_ref())).collect()
        };
        let mut last = self.last.lock().unwrap();
        let mut concerned = if deleted || now.is_empty() { last.remove(&key) } else { last.insert(key, now.clone()) }
            .unwrap_or_default();
        concerned.retain(|s| !now.contains(s));
        concerned.extend(now);
        concerned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(labels: serde_json::Value, ports: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-0", "namespace": "default", "labels": labels},
            "spec": {"containers": [{"name": "web", "image": "nginx", "ports": ports}]},
            "status": {"phase": "Running", "podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}, {"ip": "fd00::5"}]},
        }))
        .unwrap()
    }

    fn service(spec: serde_json::Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})).unwrap()
    }

    fn port(target: serde_json::Value, protocol: &str) -> ServicePort {
        serde_json::from_value(json!({"port": 80, "targetPort": target, "protocol": protocol})).unwrap()
    }

    #[test]
    fn named_target_ports_are_looked_up_by_name_and_protocol() {
        let p = pod(
            json!({}),
            json!([{"name": "http", "containerPort": 8080}, {"name": "dns", "containerPort": 53, "protocol": "UDP"}]),
        );
        assert_eq!(target_port(&p, &port(json!("http"), "TCP")), Some(8080));
        assert_eq!(target_port(&p, &port(json!("dns"), "TCP")), None);
        assert_eq!(target_port(&p, &port(json!("dns"), "UDP")), Some(53));
        assert_eq!(target_port(&p, &port(json!(9000), "TCP")), Some(9000));
    }

    #[test]
    fn services_without_selectors_or_external_select_nothing() {
        let p = pod(json!({"app": "web"}), json!([]));
        assert!(selects(&service(json!({"selector": {"app": "web"}})), &p));
        assert!(!selects(&service(json!({"selector": {"app": "db"}})), &p));
        assert!(!selects(&service(json!({"selector": {}})), &p));
        assert!(!selects(
            &service(json!({"type": "ExternalName", "externalName": "x.example", "selector": {"app": "web"}})),
            &p
        ));
    }

    #[test]
    fn the_address_is_of_the_service_family() {
        let p = pod(json!({}), json!([]));
        assert_eq!(address(&service(json!({})), &p).as_deref(), Some("10.1.0.5"));
        assert_eq!(address(&service(json!({"ipFamilies": ["IPv6"]})), &p).as_deref(), Some("fd00::5"));
    }

    #[test]
    fn a_relabelled_pod_concerns_the_service_it_left() {
        let (writer_store, mut writer) = {
            let w = kube::runtime::reflector::store::Writer::<Service>::default();
            (w.as_reader(), w)
        };
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(service(json!({"selector": {"app": "web"}}))));
        let map = ServicesOfPods::default();
        let web = ObjectRef::<Service>::new("web").within("default");
        assert_eq!(map.concerned(&pod(json!({"app": "web"}), json!([])), false, &writer_store), vec![web.clone()]);
        assert_eq!(map.concerned(&pod(json!({"app": "db"}), json!([])), false, &writer_store), vec![web]);
        assert!(map.concerned(&pod(json!({"app": "db"}), json!([])), false, &writer_store).is_empty());
        // Known from the Service's reconcile before any change of the pod was mapped to it.
        map.remember(&service(json!({"selector": {"app": "db"}})), &[Arc::new(pod(json!({"app": "db"}), json!([])))]);
        assert_eq!(
            map.concerned(&pod(json!({"app": "x"}), json!([])), false, &writer_store),
            vec![ObjectRef::new("web").within("default")]
        );
    }
}
