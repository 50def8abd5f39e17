//! The volume filters for claims. VolumeBinding: every PersistentVolumeClaim the pod uses
//! exists and is bound, and the node satisfies the node affinity of each bound volume.
//! VolumeRestrictions: a ReadWriteOncePod claim serves one pod at a time.

use super::node_affinity::selector_matches;
use crate::cache::{Cache, NodeInfo};
use crate::framework::{Applies, Filter, PodInfo, Reject};

pub struct VolumeBinding;
pub struct VolumeRestrictions;

/// The claims the pod's volumes name.
fn claims(pod: &PodInfo) -> impl Iterator<Item = &str> {
    let volumes = pod.spec().volumes.iter().flatten();
    volumes.filter_map(|v| v.persistent_volume_claim.as_ref().map(|c| c.claim_name.as_str()))
}

impl Filter for VolumeBinding {
    fn name(&self) -> &'static str {
        "VolumeBinding"
    }

    fn pre_filter(&self, pod: &mut PodInfo, cache: &Cache) -> Result<Applies, Reject> {
        let mut selectors = Vec::new();
        for name in claims(pod) {
            let Some(claim) = cache.claims.get(&(pod.namespace.clone(), name.to_string())) else {
                return Err(Reject::unresolvable(format!("persistentvolumeclaim \"{name}\" not found")));
            };
            if claim.metadata.deletion_timestamp.is_some() {
                return Err(Reject::unresolvable(format!("persistentvolumeclaim \"{name}\" is being deleted")));
            }
            let volume = claim.spec.as_ref().and_then(|s| s.volume_name.as_deref()).filter(|v| !v.is_empty());
            let Some(volume) = volume else {
                return Err(Reject::unresolvable("pod has unbound immediate PersistentVolumeClaims"));
            };
            let Some(pv) = cache.volumes.get(volume) else {
                return Err(Reject::unresolvable(format!("persistentvolume \"{volume}\" not found")));
            };
            if let Some(required) =
                pv.spec.as_ref().and_then(|s| s.node_affinity.as_ref()).and_then(|a| a.required.clone())
            {
                selectors.push(required);
            }
        }
        let applies = Applies::when(!selectors.is_empty());
        pod.state.volume_node_affinity = selectors;
        Ok(applies)
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Reject> {
        if pod.state.volume_node_affinity.iter().all(|s| selector_matches(s, node)) {
            Ok(())
        } else {
            Err(Reject::unresolvable("node(s) had volume node affinity conflict"))
        }
    }
}

impl Filter for VolumeRestrictions {
    fn name(&self) -> &'static str {
        "VolumeRestrictions"
    }

    fn pre_filter(&self, pod: &mut PodInfo, cache: &Cache) -> Result<Applies, Reject> {
        for name in claims(pod) {
            let Some(claim) = cache.claims.get(&(pod.namespace.clone(), name.to_string())) else { continue };
            let modes = claim.spec.as_ref().and_then(|s| s.access_modes.as_deref()).unwrap_or_default();
            if !modes.iter().any(|m| m == "ReadWriteOncePod") {
                continue;
            }
            let in_use = cache.nodes.iter().flat_map(|n| n.pods.iter()).any(|p| {
                p.uid != pod.uid
                    && p.namespace == pod.namespace
                    && p.pod
                        .spec
                        .iter()
                        .flat_map(|s| s.volumes.iter().flatten())
                        .any(|v| v.persistent_volume_claim.as_ref().is_some_and(|c| c.claim_name == name))
            });
            if in_use {
                return Err(Reject::resolvable(
                    "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode",
                ));
            }
        }
        // Decided for the whole cluster at once: nothing to check per node.
        Ok(Applies::Skip)
    }

    fn filter(&self, _pod: &PodInfo, _node: &NodeInfo) -> Result<(), Reject> {
        Ok(())
    }
}
