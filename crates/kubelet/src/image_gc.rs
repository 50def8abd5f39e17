//! Image garbage collection, as the kubelet's image manager does it: when the disk that
//! holds the images is fuller than the high threshold, images that no container on the node
//! uses (running or ended, as long as its pod is there) are removed, oldest first, until
//! usage is down to the low threshold. Images younger than the minimum age stay, so that one
//! just pulled for a pod is not taken from under it.
//!
//! What is in use is read from the containers' runs on disk, so a restarted agent judges as
//! the last one did. (The kubelet orders by last use, which it keeps in memory only; here
//! an image unused by every pod on the node was last used no later than its pods, and is
//! ordered by when it was stored.)

use runtime::container::{ContainerSpec, SPEC_FILE};
use runtime::image::{Image, ImageStore};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// When to collect, as the kubelet's --image-gc-high-threshold, --image-gc-low-threshold
/// and --minimum-image-ttl-duration.
#[derive(Clone, Debug)]
pub struct Policy {
    pub high_percent: u8,
    pub low_percent: u8,
    pub minimum_age: Duration,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy { high_percent: 85, low_percent: 80, minimum_age: Duration::from_secs(120) }
    }
}

/// How often the disk is looked at: a statvfs, cheap enough to do often.
const CHECK_EVERY: Duration = Duration::from_secs(30);

/// Collects whenever the disk is over the threshold, for as long as the agent runs.
pub async fn run(images: ImageStore, pods_root: PathBuf, policy: Policy) {
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let (images, pods_root, policy) = (images.clone(), pods_root.clone(), policy.clone());
        match tokio::task::spawn_blocking(move || collect(&images, &pods_root, &policy)).await {
            Ok(Ok(removed)) => {
                for image in removed {
                    tracing::info!(image = image.id, names = ?image.names, size = image.size, "image garbage collected");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = format!("{e:#}"), "image garbage collection failed"),
            Err(e) => tracing::warn!(error = %e, "image garbage collection failed"),
        }
    }
}

/// One pass: the images removed (none while the disk is under the high threshold).
pub fn collect(images: &ImageStore, pods_root: &Path, policy: &Policy) -> anyhow::Result<Vec<Image>> {
    let disk = nix::sys::statvfs::statvfs(images.root())?;
    let capacity = disk.blocks() * disk.fragment_size();
    let used = capacity.saturating_sub(disk.blocks_available() * disk.fragment_size());
    if capacity == 0 || used * 100 < capacity * u64::from(policy.high_percent) {
        return Ok(Vec::new());
    }
    let mut to_free = used.saturating_sub(capacity * u64::from(policy.low_percent) / 100);
    tracing::info!(used, capacity, to_free, "the image disk is over its high threshold; collecting images");
    let in_use = layers_in_use(pods_root);
    let now = SystemTime::now();
    let mut candidates: Vec<(SystemTime, Image)> = Vec::new();
    for image in images.list()? {
        let stored = images.stored_at(&image).unwrap_or(now);
        let young = now.duration_since(stored).unwrap_or_default() < policy.minimum_age;
        if !young && !in_use.contains(&images.layer_dirs(&image)) {
            candidates.push((stored, image));
        }
    }
    candidates.sort_by_key(|(stored, _)| *stored);
    let mut removed = Vec::new();
    for (_, image) in candidates {
        if to_free == 0 {
            break;
        }
        let gone = images.remove(&image.id)?;
        to_free = to_free.saturating_sub(gone.size);
        removed.push(image);
    }
    Ok(removed)
}

/// The layers (bottom first, as an image's) of every container run on the node.
fn layers_in_use(pods_root: &Path) -> HashSet<Vec<PathBuf>> {
    let runs = std::fs::read_dir(pods_root)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|pod| std::fs::read_dir(pod.path().join("containers")).into_iter().flatten().flatten())
        .flat_map(|container| std::fs::read_dir(container.path()).into_iter().flatten().flatten());
    runs.filter_map(|run| std::fs::read(run.path().join(SPEC_FILE)).ok())
        .filter_map(|bytes| serde_json::from_slice::<ContainerSpec>(&bytes).ok())
        .map(|spec| spec.layers)
        .collect()
}
