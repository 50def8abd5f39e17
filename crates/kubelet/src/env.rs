//! A container's environment as the kubelet builds it: the image's variables, then envFrom,
//! then env (later ones win), with `$(NAME)` references expanded and values taken from the
//! pod's fields, its resources, ConfigMaps and Secrets.

use k8s_openapi::api::core::v1::{Container, ObjectFieldSelector, Pod, ResourceFieldSelector};
use std::collections::BTreeMap;

/// The ConfigMaps and Secrets a container's environment reads, fetched beforehand; a name
/// that is absent here does not exist.
#[derive(Default)]
pub struct Sources {
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
}

/// The ConfigMap and Secret names a container's environment refers to.
pub fn referenced(container: &Container) -> (Vec<String>, Vec<String>) {
    let (mut maps, mut secrets) = (Vec::new(), Vec::new());
    for from in container.env_from.iter().flatten() {
        maps.extend(from.config_map_ref.as_ref().map(|r| r.name.clone()));
        secrets.extend(from.secret_ref.as_ref().map(|r| r.name.clone()));
    }
    for var in container.env.iter().flatten() {
        let from = var.value_from.as_ref();
        maps.extend(from.and_then(|f| f.config_map_key_ref.as_ref()).map(|r| r.name.clone()));
        secrets.extend(from.and_then(|f| f.secret_key_ref.as_ref()).map(|r| r.name.clone()));
    }
    maps.sort();
    maps.dedup();
    secrets.sort();
    secrets.dedup();
    (maps, secrets)
}

/// The environment as `NAME=value` pairs, or the CreateContainerConfigError message.
pub fn build(
    pod: &Pod,
    container: &Container,
    image_env: &[String],
    sources: &Sources,
    node_allocatable: &BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut vars: Vec<(String, String)> = image_env
        .iter()
        .map(|kv| kv.split_once('=').map_or((kv.clone(), String::new()), |(k, v)| (k.into(), v.into())))
        .collect();
    let set =
        |vars: &mut Vec<(String, String)>, name: String, value: String| match vars.iter_mut().find(|(n, _)| *n == name)
        {
            Some(existing) => existing.1 = value,
            None => vars.push((name, value)),
        };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        let (data, kind, name, optional) = if let Some(r) = &from.config_map_ref {
            (sources.config_maps.get(&r.name), "configmap", &r.name, r.optional.unwrap_or(false))
        } else if let Some(r) = &from.secret_ref {
            (sources.secrets.get(&r.name), "secret", &r.name, r.optional.unwrap_or(false))
        } else {
            continue;
        };
        match data {
            Some(data) => {
                for (k, v) in data {
                    set(&mut vars, format!("{prefix}{k}"), v.clone());
                }
            }
            None if optional => {}
            None => return Err(format!("{kind} \"{name}\" not found")),
        }
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => expand(var.value.as_deref().unwrap_or(""), &vars),
            Some(from) => {
                if let Some(field) = &from.field_ref {
                    field_value(pod, field)?
                } else if let Some(resource) = &from.resource_field_ref {
                    resource_value(container, resource, node_allocatable)?
                } else if let Some(r) = &from.config_map_key_ref {
                    match key_of(
                        sources.config_maps.get(&r.name),
                        &r.key,
                        r.optional.unwrap_or(false),
                        "configmap",
                        namespace,
                        &r.name,
                    )? {
                        Some(v) => v,
                        None => continue,
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    match key_of(
                        sources.secrets.get(&r.name),
                        &r.key,
                        r.optional.unwrap_or(false),
                        "secret",
                        namespace,
                        &r.name,
                    )? {
                        Some(v) => v,
                        None => continue,
                    }
                } else {
                    continue;
                }
            }
        };
        set(&mut vars, var.name.clone(), value);
    }
    Ok(vars.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

/// One key of a ConfigMap or Secret; `None` when an optional reference finds nothing.
fn key_of(
    data: Option<&BTreeMap<String, String>>,
    key: &str,
    optional: bool,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<String>, String> {
    match data.map(|d| d.get(key)) {
        Some(Some(v)) => Ok(Some(v.clone())),
        _ if optional => Ok(None),
        None => Err(format!("{kind} \"{name}\" not found")),
        Some(None) => Err(format!(
            "couldn't find key {key} in {} {namespace}/{name}",
            if kind == "configmap" { "ConfigMap" } else { "Secret" }
        )),
    }
}

/// `$(NAME)` becomes the value of a variable defined before it; `$$` escapes a `$`; an
/// unknown reference stays as written, as Kubernetes expands them.
pub fn expand(text: &str, vars: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('(')
            && let Some(end) = body.find(')')
        {
            let name = &body[..end];
            match vars.iter().rev().find(|(n, _)| n == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&rest[at..at + 2 + end + 1]),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Expands `$(NAME)` in a command or its arguments with the container's environment.
pub fn expand_all(words: &[String], env: &[String]) -> Vec<String> {
    let vars: Vec<(String, String)> =
        env.iter().filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    words.iter().map(|w| expand(w, &vars)).collect()
}

pub fn field_value(pod: &Pod, field: &ObjectFieldSelector) -> Result<String, String> {
    let meta = &pod.metadata;
    let status = pod.status.as_ref();
    let path = field.field_path.as_str();
    let keyed = |prefix: &str, map: Option<&BTreeMap<String, String>>| {
        path.strip_prefix(prefix)
            .and_then(|k| k.strip_suffix("']"))
            .map(|k| map.and_then(|m| m.get(k)).cloned().unwrap_or_default())
    };
    if let Some(v) = keyed("metadata.labels['", meta.labels.as_ref()) {
        return Ok(v);
    }
    if let Some(v) = keyed("metadata.annotations['", meta.annotations.as_ref()) {
        return Ok(v);
    }
    let ips = |list: Option<Vec<String>>| list.unwrap_or_default().join(",");
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => pod.spec.as_ref().and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        "status.hostIP" => status.and_then(|s| s.host_ip.clone()).unwrap_or_default(),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()).unwrap_or_default(),
        "status.hostIPs" => {
            ips(status.and_then(|s| s.host_ips.as_ref()).map(|l| l.iter().map(|i| i.ip.clone()).collect()))
        }
        "status.podIPs" => {
            ips(status.and_then(|s| s.pod_ips.as_ref()).map(|l| l.iter().map(|i| i.ip.clone()).collect()))
        }
        other => return Err(format!("unsupported fieldPath: {other}")),
    })
}

/// A container's request or limit in units of the divisor, rounded up as the kubelet does;
/// a limit that is not set is the node's allocatable. Environment variables and downwardAPI
/// volume files both render resources with it.
pub fn resource_value(
    container: &Container,
    selector: &ResourceFieldSelector,
    node_allocatable: &BTreeMap<String, String>,
) -> Result<String, String> {
    let resources = container.resources.as_ref();
    let (kind, resource) = selector
        .resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource: {}", selector.resource))?;
    let set = match kind {
        "limits" => resources.and_then(|r| r.limits.as_ref()),
        "requests" => resources.and_then(|r| r.requests.as_ref()),
        _ => return Err(format!("unsupported container resource: {}", selector.resource)),
    };
    let value = set.and_then(|s| s.get(resource)).map(|q| q.0.clone());
    let value = match (value, kind) {
        (Some(v), _) => v,
        (None, "limits") => node_allocatable.get(resource).cloned().unwrap_or_else(|| "0".into()),
        (None, _) => "0".into(),
    };
    let amount = quota::quantity::milli(&value).ok_or_else(|| format!("invalid quantity {value:?}"))?;
    let divisor = selector.divisor.as_ref().map_or("1", |d| d.0.as_str());
    let divisor = quota::quantity::milli(divisor).filter(|d| *d > 0).unwrap_or(1000);
    Ok(((amount + divisor - 1) / divisor).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn references_expand_as_kubernetes_expands_them() {
        let v = vars(&[("A", "1"), ("B", "two")]);
        assert_eq!(expand("$(A)-$(B)", &v), "1-two");
        assert_eq!(expand("$$(A) $(C) $x $", &v), "$(A) $(C) $x $");
    }

    #[test]
    fn env_layers_image_envfrom_and_env() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{
                "name": "c",
                "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
                "env": [
                    {"name": "PATH", "value": "/bin"},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "GREETING", "value": "hi $(POD)"},
                    {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                    {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
                ],
                "resources": {"limits": {"memory": "64Mi"}},
            }]},
        }))
        .unwrap();
        let container = &pod.spec.as_ref().unwrap().containers[0];
        let mut sources = Sources::default();
        sources.config_maps.insert("cm".into(), [("k".to_string(), "v".to_string())].into());
        sources.secrets.insert("s".into(), [("password".to_string(), "hunter2".to_string())].into());
        let env =
            build(&pod, container, &["PATH=/usr/bin".into(), "HOME=/root".into()], &sources, &BTreeMap::new()).unwrap();
        assert_eq!(
            env,
            ["PATH=/bin", "HOME=/root", "CM_k=v", "POD=p", "APP=web", "GREETING=hi p", "MEM=64", "PASS=hunter2"]
        );
        sources.secrets.clear();
        assert_eq!(build(&pod, container, &[], &sources, &BTreeMap::new()).unwrap_err(), "secret \"s\" not found");
        assert_eq!(referenced(container), (vec!["cm".to_string()], vec!["s".to_string()]));
    }
}
