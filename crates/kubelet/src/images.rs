//! The images a pod's containers need: found in the node's image store according to their
//! pull policy, and listed in the node's status.

use runtime::image::{Image, ImageStore};
use serde_json::{Value, json};

/// Why a container's image is not there, as the kubelet says it: the waiting reason
/// (ErrImagePull, ErrImageNeverPull) and its message.
#[derive(Clone, Debug, PartialEq)]
pub struct Unavailable {
    pub reason: &'static str,
    pub message: String,
}

/// The image a container runs, by its pull policy.
///
/// Pulling from registries is not built yet: an image missing from the store is reported
/// as a failed pull that says how to bring the image in.
pub fn resolve(store: &ImageStore, image: &str, pull_policy: &str) -> Result<Image, Unavailable> {
    let found = store.find(image).map_err(|e| Unavailable { reason: "InvalidImageName", message: format!("{e:#}") })?;
    match (found, pull_policy) {
        (Some(image), _) => Ok(image),
        (None, "Never") => Err(Unavailable {
            reason: "ErrImageNeverPull",
            message: format!("Container image \"{image}\" is not present with pull policy of Never"),
        }),
        (None, _) => Err(Unavailable {
            reason: "ErrImagePull",
            message: format!(
                "failed to pull image \"{image}\": this node does not pull from registries yet; import it with `skiff image import`"
            ),
        }),
    }
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
