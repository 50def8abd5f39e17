//! ImageLocality: prefers nodes that already hold the pod's images, counting each image by
//! its size and by how widely it is spread (an image on every node says little), between
//! kube-scheduler's thresholds of 23 MiB and 1000 MiB per container.

use crate::cache::{Cache, NodeInfo, normalize_image};
use crate::framework::{Applies, PodInfo, Score};

pub struct ImageLocality;

const MIN_THRESHOLD: f64 = 23.0 * 1024.0 * 1024.0;
const MAX_CONTAINER_THRESHOLD: f64 = 1000.0 * 1024.0 * 1024.0;

impl Score for ImageLocality {
    fn name(&self) -> &'static str {
        "ImageLocality"
    }

    fn pre_score(&self, pod: &mut PodInfo, cache: &Cache, _nodes: &[&NodeInfo]) -> Applies {
        let total = cache.nodes.len().max(1) as f64;
        let spec = pod.pod.spec.as_ref();
        let images = spec.into_iter().flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()));
        pod.state.images = images
            .filter_map(|c| c.image.as_deref())
            .map(normalize_image)
            .map(|image| {
                let spread = cache.image_spread(&image) as f64 / total;
                (image, spread)
            })
            .collect();
        Applies::when(pod.state.images.iter().any(|(_, spread)| *spread > 0.0))
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let images = &pod.state.images;
        if images.is_empty() {
            return 0;
        }
        let sum: f64 = images.iter().filter_map(|(image, spread)| Some(*node.images.get(image)? as f64 * spread)).sum();
        let max = MAX_CONTAINER_THRESHOLD * images.len() as f64;
        let clamped = sum.clamp(MIN_THRESHOLD, max);
        (100.0 * (clamped - MIN_THRESHOLD) / (max - MIN_THRESHOLD)) as i64
    }
}
