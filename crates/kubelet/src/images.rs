//! The images a pod's containers need: found in the node's image store or pulled, according
//! to their pull policy, with the pod's pull secrets; and listed in the node's status.

use crate::Agent;
use crate::pod_events::{self, NORMAL, WARNING};
use k8s_openapi::api::core::v1::{Container, Pod, Secret};
use kube::api::Api;
use runtime::image::{Image, ImageStore};
use runtime::registry::Keyring;
use serde_json::{Value, json};

/// Why a container's image is not there, as the kubelet says it: the waiting reason
/// (ErrImagePull, ErrImageNeverPull) and its message.
#[derive(Clone, Debug, PartialEq)]
pub struct Unavailable {
    pub reason: &'static str,
    pub message: String,
}

/// The image a container runs, by its pull policy: `Never` takes the store's or fails;
/// `IfNotPresent` pulls only an image the store lacks; `Always` asks the registry every
/// time (layers the store has are not downloaded again). Pulls go one at a time, as the
/// kubelet serializes them by default.
pub async fn ensure(agent: &Agent, pod: &Pod, container: &Container) -> Result<Image, Unavailable> {
    let image = container.image.clone().unwrap_or_default();
    let policy = container.image_pull_policy.as_deref().unwrap_or("IfNotPresent");
    let event = |type_, reason, message| pod_events::record(&agent.client, pod, type_, reason, message);
    let invalid = |e: anyhow::Error| Unavailable { reason: "InvalidImageName", message: format!("{e:#}") };
    let found = agent.images.find(&image).map_err(invalid)?;
    match (found, policy) {
        (Some(found), "Never" | "IfNotPresent") => {
            event(NORMAL, "Pulled", format!("Container image \"{image}\" already present on machine"));
            return Ok(found);
        }
        (None, "Never") => {
            let message = format!("Container image \"{image}\" is not present with pull policy of Never");
            event(WARNING, "ErrImageNeverPull", message.clone());
            return Err(Unavailable { reason: "ErrImageNeverPull", message });
        }
        _ => {}
    }
    let keyring = pull_secrets(agent, pod).await;
    let asked = std::time::Instant::now();
    let _turn = agent.pulls.lock().await;
    let began = std::time::Instant::now();
    tracing::info!(image, pod = pod.metadata.name.as_deref().unwrap_or(""), "pulling image");
    event(NORMAL, "Pulling", format!("Pulling image \"{image}\""));
    match runtime::registry::pull(&agent.images, &image, &agent.registries, &keyring).await {
        Ok(pulled) => {
            let (took, waited) = (pod_events::duration(began.elapsed()), pod_events::duration(asked.elapsed()));
            let message = format!(
                "Successfully pulled image \"{image}\" in {took} ({waited} including waiting). Image size: {} bytes.",
                pulled.size
            );
            event(NORMAL, "Pulled", message);
            Ok(pulled)
        }
        Err(e) => {
            let message = format!("{e:#}");
            event(WARNING, "Failed", format!("Failed to pull image \"{image}\": {message}"));
            Err(Unavailable { reason: "ErrImagePull", message })
        }
    }
}

/// The registry credentials of the pod's imagePullSecrets. A secret that is missing or of
/// another type is passed over, as the kubelet passes it over (with a warning).
async fn pull_secrets(agent: &Agent, pod: &Pod) -> Keyring {
    let mut keyring = Keyring::default();
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let secrets: Api<Secret> = Api::namespaced(agent.client.clone(), namespace);
    let names = pod.spec.as_ref().and_then(|s| s.image_pull_secrets.clone()).unwrap_or_default();
    for name in names.into_iter().map(|r| r.name) {
        let secret = match secrets.get_opt(&name).await {
            Ok(Some(secret)) => secret,
            Ok(None) => {
                tracing::warn!(
                    secret = name,
                    namespace,
                    "the pod's image pull secret does not exist; pulling without it"
                );
                continue;
            }
            Err(e) => {
                tracing::warn!(secret = name, error = %e, "cannot read the pod's image pull secret; pulling without it");
                continue;
            }
        };
        let key = match secret.type_.as_deref() {
            Some("kubernetes.io/dockerconfigjson") => ".dockerconfigjson",
            Some("kubernetes.io/dockercfg") => ".dockercfg",
            _ => continue,
        };
        let Some(config) = secret.data.as_ref().and_then(|d| d.get(key)) else { continue };
        if let Err(e) = keyring.add_docker_config(&config.0) {
            tracing::warn!(
                secret = name,
                error = format!("{e:#}"),
                "the pod's image pull secret cannot be read; pulling without it"
            );
        }
    }
    keyring
}

/// The node status's `images`: every image's names (and digests) and size.
pub fn node_images(store: &ImageStore) -> Value {
    let images = store.list().unwrap_or_default();
    Value::Array(
        images
            .iter()
            .map(|i| {
                let names: Vec<&String> = i.repo_digests.iter().chain(&i.names).collect();
                json!({"names": names, "sizeBytes": i.size})
            })
            .collect(),
    )
}
