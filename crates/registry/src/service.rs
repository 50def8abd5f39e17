//! Services: defaults and validation. Cluster IPs and node ports are allocated by the API
//! server, which owns the allocation state; this file only checks what was asked for.

use crate::field_error::{FieldError, Path};
use crate::names::validate_labels;
use crate::set_default;
use crate::strategy::Strategy;
use k8s_openapi::api::core::v1::{LoadBalancerStatus, Service, ServiceStatus};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::HashSet;

pub struct ServiceStrategy;

const TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];
const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];
/// PreferClose is the older name of PreferSameZone.
const TRAFFIC_DISTRIBUTIONS: &[&str] = &["PreferClose", "PreferSameZone", "PreferSameNode"];
pub const NODE_PORT_RANGE: std::ops::RangeInclusive<i32> = 30000..=32767;

impl Strategy for ServiceStrategy {
    type Object = Service;

    fn apply_defaults(&self, svc: &mut Service) {
        let Some(spec) = &mut svc.spec else { return };
        set_default(&mut spec.type_, "ClusterIP".to_string());
        set_default(&mut spec.session_affinity, "None".to_string());
        let external = spec.type_.as_deref() == Some("ExternalName");
        if !external {
            set_default(&mut spec.internal_traffic_policy, "Cluster".to_string());
        }
        if matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer")) {
            set_default(&mut spec.external_traffic_policy, "Cluster".to_string());
        }
        if spec.type_.as_deref() == Some("LoadBalancer") {
            set_default(&mut spec.allocate_load_balancer_node_ports, true);
        }
        for port in spec.ports.iter_mut().flatten() {
            set_default(&mut port.protocol, "TCP".to_string());
            set_default(&mut port.target_port, IntOrString::Int(port.port));
        }
    }

    fn prepare_create(&self, svc: &mut Service) {
        svc.status = Some(ServiceStatus { load_balancer: Some(LoadBalancerStatus::default()), ..Default::default() });
    }

    fn validate(&self, svc: &Service) -> Vec<FieldError> {
        let Some(spec) = &svc.spec else { return vec![FieldError::required("spec", "")] };
        let path = Path::new("spec");
        let mut errs = Vec::new();
        let ty = spec.type_.as_deref().unwrap_or("ClusterIP");
        if !TYPES.contains(&ty) {
            errs.push(FieldError::not_supported(path.child("type"), ty, TYPES));
        }
        let headless = spec.cluster_ip.as_deref() == Some("None");
        let ports = spec.ports.as_deref().unwrap_or_default();
        if ports.is_empty() && !headless && ty != "ExternalName" {
            errs.push(FieldError::required(path.child("ports"), ""));
        }
        if ty == "ExternalName" && spec.external_name.as_deref().is_none_or(str::is_empty) {
            errs.push(FieldError::required(path.child("externalName"), ""));
        }
        let mut names = HashSet::new();
        for (i, port) in ports.iter().enumerate() {
            let p = path.child("ports").index(i);
            match &port.name {
                None if ports.len() > 1 => errs.push(FieldError::required(p.child("name"), "")),
                Some(name) if !names.insert(name.clone()) => errs.push(FieldError::duplicate(p.child("name"), name)),
                _ => {}
            }
            if !(1..=65535).contains(&port.port) {
                errs.push(FieldError::invalid(p.child("port"), port.port, "must be between 1 and 65535, inclusive"));
            }
            if let Some(proto) = &port.protocol
                && !PROTOCOLS.contains(&proto.as_str())
            {
                errs.push(FieldError::not_supported(p.child("protocol"), proto, PROTOCOLS));
            }
            if let Some(IntOrString::Int(target)) = port.target_port
                && !(1..=65535).contains(&target)
            {
                errs.push(FieldError::invalid(p.child("targetPort"), target, "must be between 1 and 65535, inclusive"));
            }
            if let Some(node_port) = port.node_port
                && node_port != 0
            {
                if ty == "ClusterIP" {
                    errs.push(FieldError::forbidden(p.child("nodePort"), "may not be used when `type` is 'ClusterIP'"));
                } else if !NODE_PORT_RANGE.contains(&node_port) {
                    errs.push(FieldError::invalid(
                        p.child("nodePort"),
                        node_port,
                        "provided port is not in the valid range. The range of valid ports is 30000-32767",
                    ));
                }
            }
        }
        if let Some(selector) = &spec.selector {
            validate_labels(selector, &path.child("selector"), &mut errs);
        }
        if let Some(distribution) = spec.traffic_distribution.as_deref()
            && !TRAFFIC_DISTRIBUTIONS.contains(&distribution)
        {
            errs.push(FieldError::not_supported(
                path.child("trafficDistribution"),
                distribution,
                TRAFFIC_DISTRIBUTIONS,
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Service, old: &Service) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        let (Some(n), Some(o)) = (&new.spec, &old.spec) else { return errs };
        let was_external = o.type_.as_deref() == Some("ExternalName");
        if !was_external && n.cluster_ip.is_some() && n.cluster_ip != o.cluster_ip {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                n.cluster_ip.clone().unwrap_or_default(),
                "may not change once set",
            ));
        }
        errs
    }
}
