//! Defaulting and validation of a PodSpec, shared by Pods and every kind with a pod template.

use crate::field_error::{FieldError, Path};
use crate::labels::Selector;
use crate::names::{NameRule, validate_annotations, validate_labels};
use crate::set_default;
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::HashSet;

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];

/// `Always` for `:latest` or untagged images, else `IfNotPresent`, as Kubernetes defaults it.
fn default_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

fn default_probe(probe: &mut Option<Probe>) {
    let Some(p) = probe else { return };
    set_default(&mut p.timeout_seconds, 1);
    set_default(&mut p.period_seconds, 10);
    set_default(&mut p.success_threshold, 1);
    set_default(&mut p.failure_threshold, 3);
    if let Some(get) = &mut p.http_get {
        set_default(&mut get.scheme, "HTTP".to_string());
    }
}

fn default_container(c: &mut Container) {
    if let Some(image) = &c.image {
        set_default(&mut c.image_pull_policy, default_pull_policy(image).to_string());
    }
    set_default(&mut c.termination_message_path, "/dev/termination-log".to_string());
    set_default(&mut c.termination_message_policy, "File".to_string());
    set_default(&mut c.resources, Default::default());
    for port in c.ports.iter_mut().flatten() {
        set_default(&mut port.protocol, "TCP".to_string());
    }
    for env in c.env.iter_mut().flatten() {
        if let Some(field_ref) = env.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            set_default(&mut field_ref.api_version, "v1".to_string());
        }
    }
    default_probe(&mut c.liveness_probe);
    default_probe(&mut c.readiness_probe);
    default_probe(&mut c.startup_probe);
}

/// A container's limit is also its request for each resource it requests nothing of: the
/// defaulting of pods (not of templates) that precedes admission in Kubernetes.
pub fn default_requests_from_limits(spec: &mut PodSpec) {
    for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
        let Some(resources) = c.resources.as_mut() else { continue };
        let Some(limits) = resources.limits.as_ref() else { continue };
        let requests = resources.requests.get_or_insert_with(Default::default);
        for (name, limit) in limits {
            requests.entry(name.clone()).or_insert_with(|| limit.clone());
        }
    }
}

pub fn default_pod_spec(spec: &mut PodSpec) {
    set_default(&mut spec.restart_policy, "Always".to_string());
    set_default(&mut spec.dns_policy, "ClusterFirst".to_string());
    set_default(&mut spec.termination_grace_period_seconds, 30);
    set_default(&mut spec.scheduler_name, "default-scheduler".to_string());
    set_default(&mut spec.security_context, Default::default());
    spec.containers.iter_mut().for_each(default_container);
    spec.init_containers.iter_mut().flatten().for_each(default_container);
    for volume in spec.volumes.iter_mut().flatten() {
        if let Some(cm) = &mut volume.config_map {
            set_default(&mut cm.default_mode, 0o644);
        }
        if let Some(secret) = &mut volume.secret {
            set_default(&mut secret.default_mode, 0o644);
        }
        if let Some(host_path) = &mut volume.host_path {
            set_default(&mut host_path.type_, String::new());
        }
    }
}

pub fn default_template(template: &mut PodTemplateSpec) {
    if let Some(spec) = &mut template.spec {
        default_pod_spec(spec);
    }
}

fn check_enum(value: Option<&String>, path: Path, allowed: &[&str], errs: &mut Vec<FieldError>) {
    if let Some(v) = value
        && !allowed.contains(&v.as_str())
    {
        errs.push(FieldError::not_supported(&path, v, allowed));
    }
}

fn port_in_range(port: i32, path: Path, errs: &mut Vec<FieldError>) {
    if !(1..=65535).contains(&port) {
        errs.push(FieldError::invalid(&path, port, "must be between 1 and 65535, inclusive"));
    }
}

fn validate_container(
    c: &Container,
    path: &Path,
    names: &mut HashSet<String>,
    volumes: &HashSet<&str>,
    errs: &mut Vec<FieldError>,
) {
    if c.name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    } else {
        for msg in NameRule::Label.check(&c.name) {
            errs.push(FieldError::invalid(path.child("name"), &c.name, msg));
        }
        if !names.insert(c.name.clone()) {
            errs.push(FieldError::duplicate(path.child("name"), &c.name));
        }
    }
    if c.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
        errs.push(FieldError::required(path.child("image"), ""));
    }
    check_enum(c.image_pull_policy.as_ref(), path.child("imagePullPolicy"), PULL_POLICIES, errs);
    for (i, port) in c.ports.iter().flatten().enumerate() {
        let p = path.child("ports").index(i);
        port_in_range(port.container_port, p.child("containerPort"), errs);
        if let Some(host_port) = port.host_port
            && host_port != 0
        {
            port_in_range(host_port, p.child("hostPort"), errs);
        }
        check_enum(port.protocol.as_ref(), p.child("protocol"), PROTOCOLS, errs);
    }
    for (i, mount) in c.volume_mounts.iter().flatten().enumerate() {
        if !volumes.contains(mount.name.as_str()) {
            errs.push(FieldError {
                kind: crate::field_error::FieldErrorType::Invalid,
                field: String::from(&path.child("volumeMounts").index(i).child("name")),
                value: Some(mount.name.clone()),
                detail: "not found".into(),
            });
        }
        if mount.mount_path.is_empty() {
            errs.push(FieldError::required(path.child("volumeMounts").index(i).child("mountPath"), ""));
        }
    }
}

pub fn validate_pod_spec(spec: &PodSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut volumes = HashSet::new();
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        let p = path.child("volumes").index(i).child("name");
        for msg in NameRule::Label.check(&v.name) {
            errs.push(FieldError::invalid(&p, &v.name, msg));
        }
        if !volumes.insert(v.name.as_str()) {
            errs.push(FieldError::duplicate(&p, &v.name));
        }
    }
    if spec.containers.is_empty() {
        errs.push(FieldError::required(path.child("containers"), ""));
    }
    let mut names = HashSet::new();
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        validate_container(c, &path.child("initContainers").index(i), &mut names, &volumes, &mut errs);
    }
    for (i, c) in spec.containers.iter().enumerate() {
        validate_container(c, &path.child("containers").index(i), &mut names, &volumes, &mut errs);
    }
    check_enum(spec.restart_policy.as_ref(), path.child("restartPolicy"), RESTART_POLICIES, &mut errs);
    check_enum(spec.dns_policy.as_ref(), path.child("dnsPolicy"), DNS_POLICIES, &mut errs);
    if let Some(grace) = spec.termination_grace_period_seconds
        && grace < 0
    {
        errs.push(FieldError::invalid(
            path.child("terminationGracePeriodSeconds"),
            grace,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(deadline) = spec.active_deadline_seconds
        && deadline <= 0
    {
        errs.push(FieldError::invalid(
            path.child("activeDeadlineSeconds"),
            deadline,
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    errs
}

/// Validates a workload's pod template against its selector and allowed restart policies.
pub fn validate_template(
    template: &PodTemplateSpec,
    selector: Option<&LabelSelector>,
    restart_policies: &[&str],
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let meta_path = path.child("metadata");
    let labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    validate_labels(&labels, &meta_path.child("labels"), &mut errs);
    if let Some(annotations) = template.metadata.as_ref().and_then(|m| m.annotations.as_ref()) {
        validate_annotations(annotations, &meta_path.child("annotations"), &mut errs);
    }
    if let Some(selector) = selector {
        match Selector::from_label_selector(selector) {
            Ok(sel) if !sel.is_empty() && !sel.matches(&labels) => errs.push(FieldError::invalid(
                meta_path.child("labels"),
                format!("{labels:?}"),
                "`selector` does not match template `labels`",
            )),
            Ok(_) => {}
            Err(e) => errs.push(FieldError::invalid(Path::new("spec").child("selector"), "", e)),
        }
    }
    match &template.spec {
        None => errs.push(FieldError::required(path.child("spec"), "")),
        Some(spec) => {
            let spec_path = path.child("spec");
            errs.extend(validate_pod_spec(spec, &spec_path));
            if let Some(policy) = &spec.restart_policy
                && !restart_policies.contains(&policy.as_str())
            {
                errs.push(FieldError::not_supported(spec_path.child("restartPolicy"), policy, restart_policies));
            }
        }
    }
    errs
}

/// A workload selector must be present and non-empty.
pub fn validate_selector(selector: Option<&LabelSelector>, path: &Path) -> Vec<FieldError> {
    let empty = selector.is_none_or(|s| {
        s.match_labels.as_ref().is_none_or(|m| m.is_empty())
            && s.match_expressions.as_ref().is_none_or(|m| m.is_empty())
    });
    if empty { vec![FieldError::required(path, "")] } else { Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_tag() {
        assert_eq!(default_pull_policy("busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:latest"), "Always");
        assert_eq!(default_pull_policy("busybox:1.36"), "IfNotPresent");
        assert_eq!(default_pull_policy("localhost:5000/busybox"), "Always");
        assert_eq!(default_pull_policy("busybox@sha256:abc"), "IfNotPresent");
    }
}
