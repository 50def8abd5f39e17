//! What a downwardAPI volume file (or projected downwardAPI source's file) holds: one of the
//! pod's fields, or one of a container's resources, rendered as the kubelet renders them.

use k8s_openapi::api::core::v1::{DownwardAPIVolumeFile, Pod};
use std::collections::BTreeMap;

/// The content of one item. A resource's limit that the container does not set is the
/// node's allocatable, as for environment variables.
pub fn render(
    pod: &Pod,
    item: &DownwardAPIVolumeFile,
    allocatable: &BTreeMap<String, String>,
) -> Result<String, String> {
    if let Some(field) = &item.field_ref {
        return match field.field_path.as_str() {
            "metadata.labels" => Ok(lines(pod.metadata.labels.as_ref())),
            "metadata.annotations" => Ok(lines(pod.metadata.annotations.as_ref())),
            _ => crate::env::field_value(pod, field),
        };
    }
    if let Some(selector) = &item.resource_field_ref {
        let name = selector.container_name.as_deref().unwrap_or("");
        let container = crate::pod_worker::all_containers(pod)
            .find(|c| c.name == name)
            .ok_or_else(|| format!("container {name} not found"))?;
        return crate::env::resource_value(container, selector, allocatable);
    }
    Err(format!("downwardAPI item {:?} has neither fieldRef nor resourceFieldRef", item.path))
}

/// A whole map of labels or annotations: one `key="value"` line per key, in key order.
fn lines(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter().flatten().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(value: serde_json::Value) -> DownwardAPIVolumeFile {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn fields_and_resources_render_as_the_kubelet_writes_them() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "labels": {"tier": "web", "app": "shop"}, "annotations": {"note": "say \"hi\""}},
            "spec": {"containers": [{
                "name": "main",
                "resources": {"limits": {"memory": "96Mi", "cpu": "250m"}, "requests": {"memory": "32Mi"}},
            }]},
        }))
        .unwrap();
        let allocatable: BTreeMap<String, String> = [("cpu".to_string(), "4".to_string())].into();
        let render = |value| render(&pod, &item(value), &allocatable);
        assert_eq!(
            render(json!({"path": "l", "fieldRef": {"fieldPath": "metadata.labels"}})).unwrap(),
            "app=\"shop\"\ntier=\"web\""
        );
        assert_eq!(
            render(json!({"path": "a", "fieldRef": {"fieldPath": "metadata.annotations"}})).unwrap(),
            "note=\"say \\\"hi\\\"\""
        );
        assert_eq!(render(json!({"path": "n", "fieldRef": {"fieldPath": "metadata.name"}})).unwrap(), "p");
        let resource = |resource: &str, divisor: Option<&str>| {
            let mut selector = json!({"containerName": "main", "resource": resource});
            if let Some(d) = divisor {
                selector["divisor"] = d.into();
            }
            render(json!({"path": "r", "resourceFieldRef": selector}))
        };
        assert_eq!(resource("limits.memory", Some("1Mi")).unwrap(), "96");
        assert_eq!(resource("limits.memory", None).unwrap(), (96 * 1024 * 1024).to_string());
        assert_eq!(resource("requests.memory", Some("1Mi")).unwrap(), "32");
        assert_eq!(resource("limits.cpu", Some("1m")).unwrap(), "250");
        assert_eq!(resource("limits.cpu", None).unwrap(), "1", "cores are rounded up");
        let unset = json!({"path": "r", "resourceFieldRef": {"containerName": "main", "resource": "limits.cpu"}});
        let mut no_limits = pod.clone();
        no_limits.spec.as_mut().unwrap().containers[0].resources = None;
        assert_eq!(super::render(&no_limits, &item(unset), &allocatable).unwrap(), "4", "an unset limit is the node's");
        let other = json!({"path": "r", "resourceFieldRef": {"containerName": "nope", "resource": "limits.cpu"}});
        assert!(render(other).unwrap_err().contains("nope"));
    }
}
