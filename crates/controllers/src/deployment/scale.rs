//! Sizing ReplicaSets. `scale` sets one ReplicaSet's replicas (and the annotations that
//! record the Deployment's size at the time). `sync` handles a Deployment that was scaled
//! or is paused: with one active ReplicaSet it takes the whole change; mid-rollout the
//! change is spread over the active ReplicaSets in proportion to their sizes, as
//! kube-controller-manager's proportional scaling does, the remainder going to the largest.

use super::revision::{MAX_REPLICAS, replica_annotations};
use super::{COMPONENT, Rollout, max_surge, paused, replicas, rs_available, rs_replicas};
use crate::Error;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use serde_json::json;
use std::sync::Arc;

impl Rollout<'_> {
    /// Sets the ReplicaSet's replicas to `size`, with the Deployment's current size in its
    /// annotations; records ScalingReplicaSet when the size changes.
    pub async fn scale(&self, rs: &ReplicaSet, size: i32) -> Result<(), Error> {
        let from = rs_replicas(rs);
        let annotations = replica_annotations(self.d);
        let stale = annotations.iter().any(|(k, v)| rs.annotations().get(*k) != Some(v));
        if from == size && !stale {
            return Ok(());
        }
        let annotations: serde_json::Map<_, _> =
            annotations.into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        let patch = json!({"metadata": {"annotations": annotations, "resourceVersion": rs.resource_version()},
                           "spec": {"replicas": size}});
        self.rs_api().patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        if from != size {
            let direction = if size > from { "up" } else { "down" };
            let message = format!("Scaled {direction} replica set {} from {from} to {size}", rs.name_any());
            events::record(&self.ctx.client, COMPONENT, self.d, "Normal", "ScalingReplicaSet", &message).await;
        }
        Ok(())
    }

    /// A scaled or paused Deployment: resize without rolling out.
    pub async fn sync(&self, api: &Api<Deployment>) -> Result<Action, Error> {
        let new = self.new_rs_synced(false, |_| 0).await?;
        self.scale_proportionally(new.as_ref()).await?;
        if paused(self.d) {
            self.clean_up(new.as_ref()).await?;
        }
        self.sync_status(api).await
    }

    async fn scale_proportionally(&self, new: Option<&Arc<ReplicaSet>>) -> Result<(), Error> {
        let d = self.d;
        let want = replicas(d);
        let active: Vec<&Arc<ReplicaSet>> = self.active().collect();
        let single = match active.as_slice() {
            [] => new.or(self.all.last()),
            [one] => Some(*one),
            _ => None,
        };
        if let Some(rs) = single {
            return self.scale(rs, want).await;
        }
        if let Some(new) = new
            && rs_replicas(new) == want
            && rs_available(new) == want
            && new.annotations().get(super::revision::DESIRED_REPLICAS) == Some(&want.to_string())
        {
            for rs in self.old_rss(Some(new)).iter().filter(|rs| rs_replicas(rs) > 0) {
                self.scale(rs, 0).await?;
            }
            return Ok(());
        }
        if !super::rolling(d) {
            return Ok(());
        }
        let allowed = if want > 0 { want + max_surge(d) } else { 0 };
        let current: i32 = active.iter().map(|rs| rs_replicas(rs)).sum();
        let to_add = allowed - current;
        let mut order = active.clone();
        // Growing favours the largest (and newest); shrinking the largest (and oldest).
        if to_add > 0 {
            order.sort_by(|a, b| {
                rs_replicas(b)
                    .cmp(&rs_replicas(a))
                    .then(b.metadata.creation_timestamp.cmp(&a.metadata.creation_timestamp))
            });
        } else {
            order.sort_by(|a, b| {
                rs_replicas(b)
                    .cmp(&rs_replicas(a))
                    .then(a.metadata.creation_timestamp.cmp(&b.metadata.creation_timestamp))
            });
        }
        let mut sizes: Vec<i32> = order.iter().map(|rs| rs_replicas(rs)).collect();
        let mut added = 0;
        if to_add != 0 {
            for (rs, size) in order.iter().zip(sizes.iter_mut()) {
                let share = proportion(rs, d, to_add, added);
                *size += share;
                added += share;
            }
            if let Some(first) = sizes.first_mut() {
                *first = (*first + to_add - added).max(0);
            }
        }
        for (rs, size) in order.iter().zip(sizes) {
            self.scale(rs, size.max(0)).await?;
        }
        Ok(())
    }
}

/// This ReplicaSet's share of `to_add` more (or fewer) replicas: its size scaled by the
/// Deployment's new allowed size over the one it was last sized for, limited to what is
/// left to add.
fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = if replicas(d) == 0 {
        -rs_replicas(rs)
    } else {
        let allowed = (replicas(d) + max_surge(d)) as f64;
        let annotated = rs.annotations().get(MAX_REPLICAS).and_then(|v| v.parse::<f64>().ok());
        let before = annotated.unwrap_or_else(|| d.status.as_ref().map_or(0, |s| s.replicas.unwrap_or(0)) as f64);
        if before == 0.0 { 0 } else { ((rs_replicas(rs) as f64 * allowed / before).round() as i32) - rs_replicas(rs) }
    };
    let left = to_add - added;
    if to_add > 0 { fraction.min(left) } else { fraction.max(left) }
}
