//! Volumes whose files come from the API: configMap, secret, downwardAPI and projected. They
//! are written with the atomic writer when the pod starts and rewritten when their source
//! changes, so a container sees an edit within the refresh interval. With a pod fsGroup their
//! files get the group on every write, as the kubelet sets up these volumes each time.

use crate::atomic_writer;
use crate::projection::{self, Kind, Objects};
use crate::volume_ownership;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::Api;
use std::collections::BTreeMap;
use std::path::Path;

/// Writes (or refreshes) the pod's API volumes. The error is the kubelet's MountVolume.SetUp
/// message.
pub async fn write(
    client: &kube::Client,
    pod_dir: &Path,
    pod: &Pod,
    allocatable: &BTreeMap<String, String>,
) -> Result<(), String> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let group = volume_ownership::fs_group(pod);
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let Some(projection) = projection::of(volume) else { continue };
        let failed = |why: String| format!("MountVolume.SetUp failed for volume {:?} : {why}", volume.name);
        let objects = fetch(client, namespace, projection::reads(&projection)).await.map_err(failed)?;
        let mut files = projection::files(&projection, pod, &objects, allocatable).map_err(failed)?;
        if group.is_some() {
            // The modes the ownership pass gives, so that an unchanged payload stays unchanged.
            for file in files.values_mut() {
                file.mode = volume_ownership::mode_with_group(file.mode, true, false);
            }
        }
        let dir = crate::volumes::host_path(pod_dir, volume);
        tokio::task::block_in_place(|| -> anyhow::Result<()> {
            atomic_writer::write(&dir, &files)?;
            if let Some(group) = group {
                volume_ownership::apply(&dir, group, true, false)?;
            }
            Ok(())
        })
        .map_err(|e| failed(format!("{e:#}")))?;
    }
    Ok(())
}

/// The data of the configMaps and secrets a volume reads.
async fn fetch(client: &kube::Client, namespace: &str, reads: Vec<(Kind, String)>) -> Result<Objects, String> {
    let mut objects = Objects::new();
    for (kind, name) in reads {
        let data = match kind {
            Kind::ConfigMap => {
                let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
                api.get_opt(&name).await.map_err(|e| e.to_string())?.map(|cm| {
                    let mut data: BTreeMap<String, Vec<u8>> =
                        cm.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
                    data.extend(cm.binary_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)));
                    data
                })
            }
            Kind::Secret => {
                let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
                let secret = api.get_opt(&name).await.map_err(|e| e.to_string())?;
                secret.map(|s| s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect())
            }
        };
        objects.insert((kind, name), data);
    }
    Ok(objects)
}
