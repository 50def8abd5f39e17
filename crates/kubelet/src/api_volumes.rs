//! Volumes whose files come from the API: configMap, secret and downwardAPI (fieldRef
//! items). They are written with the atomic writer when the pod starts and rewritten when
//! their source changes, so a container sees an edit within the refresh interval.

use crate::atomic_writer::{self, File};
use k8s_openapi::api::core::v1::{ConfigMap, KeyToPath, Pod, Secret, Volume};
use kube::api::Api;
use std::collections::BTreeMap;
use std::path::Path;

/// The files' mode when the volume does not say, as Kubernetes defaults defaultMode.
const DEFAULT_MODE: i32 = 0o644;

/// The files of a volume: each key (or each listed item) with its mode. A listed key the
/// source lacks is an error unless the volume is optional.
fn payload(
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: Option<i32>,
    optional: bool,
    what: &str,
) -> Result<BTreeMap<String, File>, String> {
    let mode = |m: Option<i32>| (m.or(default_mode).unwrap_or(DEFAULT_MODE) & 0o7777) as u32;
    match items {
        None => Ok(data.into_iter().map(|(k, content)| (k, File { content, mode: mode(None) })).collect()),
        Some(items) => {
            let mut files = BTreeMap::new();
            for item in items {
                match data.get(&item.key) {
                    Some(content) => {
                        files.insert(item.path.clone(), File { content: content.clone(), mode: mode(item.mode) });
                    }
                    None if optional => {}
                    None => {
                        return Err(format!("configmap references non-existent config key: {}", item.key)
                            .replace("configmap", what));
                    }
                }
            }
            Ok(files)
        }
    }
}

/// Writes (or refreshes) the pod's configMap, secret and downwardAPI volumes. The error is
/// the kubelet's MountVolume.SetUp message.
pub async fn write(client: &kube::Client, pod_dir: &Path, pod: &Pod) -> Result<(), String> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let failed = |why: String| format!("MountVolume.SetUp failed for volume {:?} : {why}", volume.name);
        let Some(files) = files_of(client, namespace, pod, volume).await.map_err(failed)? else { continue };
        let dir = crate::volumes::host_path(pod_dir, volume);
        atomic_writer::write(&dir, &files).map_err(|e| failed(format!("{e:#}")))?;
    }
    Ok(())
}

/// The files a volume should hold, or `None` for a volume of another kind.
async fn files_of(
    client: &kube::Client,
    namespace: &str,
    pod: &Pod,
    volume: &Volume,
) -> Result<Option<BTreeMap<String, File>>, String> {
    if let Some(source) = &volume.config_map {
        let optional = source.optional.unwrap_or(false);
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let data = match api.get_opt(&source.name).await.map_err(|e| e.to_string())? {
            Some(cm) => {
                let mut data: BTreeMap<String, Vec<u8>> =
                    cm.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
                data.extend(cm.binary_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)));
                data
            }
            None if optional => BTreeMap::new(),
            None => return Err(format!("configmap {:?} not found", source.name)),
        };
        return payload(data, source.items.as_ref(), source.default_mode, optional, "configmap").map(Some);
    }
    if let Some(source) = &volume.secret {
        let name = source.secret_name.clone().unwrap_or_default();
        let optional = source.optional.unwrap_or(false);
        let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let data = match api.get_opt(&name).await.map_err(|e| e.to_string())? {
            Some(secret) => secret.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect(),
            None if optional => BTreeMap::new(),
            None => return Err(format!("secret {name:?} not found")),
        };
        return payload(data, source.items.as_ref(), source.default_mode, optional, "secret").map(Some);
    }
    if let Some(source) = &volume.downward_api {
        let mut files = BTreeMap::new();
        for item in source.items.iter().flatten() {
            let Some(field) = &item.field_ref else {
                return Err("only fieldRef items of downwardAPI volumes are supported by this node yet".into());
            };
            let content = crate::env::field_value(pod, field)?.into_bytes();
            let mode = (item.mode.or(source.default_mode).unwrap_or(DEFAULT_MODE) & 0o7777) as u32;
            files.insert(item.path.clone(), File { content, mode });
        }
        return Ok(Some(files));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_pick_and_rename_keys_with_their_modes() {
        let data: BTreeMap<String, Vec<u8>> =
            [("a".to_string(), b"1".to_vec()), ("b".to_string(), b"2".to_vec())].into();
        let items = vec![KeyToPath { key: "a".into(), path: "dir/x".into(), mode: Some(0o600), ..Default::default() }];
        let files = payload(data.clone(), Some(&items), Some(0o640), false, "configmap").unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files["dir/x"], File { content: b"1".to_vec(), mode: 0o600 });
        let all = payload(data.clone(), None, Some(0o640), false, "configmap").unwrap();
        assert_eq!(all["b"].mode, 0o640);
        let missing = vec![KeyToPath { key: "zz".into(), path: "zz".into(), mode: None, ..Default::default() }];
        assert_eq!(
            payload(data.clone(), Some(&missing), None, false, "configmap").unwrap_err(),
            "configmap references non-existent config key: zz"
        );
        assert!(payload(data, Some(&missing), None, true, "configmap").unwrap().is_empty());
    }
}
