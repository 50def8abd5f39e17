//! RollingUpdate: the new ReplicaSet grows while the total stays within replicas +
//! maxSurge, and old ReplicaSets shrink while at least replicas - maxUnavailable pods stay
//! available, unavailable old pods going first. One step per pass; each step's writes
//! trigger the next.

use super::{Rollout, max_surge, max_unavailable, replicas, rs_available, rs_replicas};
use crate::Error;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::Api;
use kube::runtime::controller::Action;
use std::sync::Arc;

/// The new ReplicaSet's size for the next step: up to the surge limit, never past replicas.
pub fn next_new_size(d: &Deployment, all: &[Arc<ReplicaSet>], new_size: i32) -> i32 {
    let current: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
    let most = replicas(d) + max_surge(d);
    if current >= most {
        return new_size;
    }
    new_size + (most - current).min(replicas(d) - new_size).max(0)
}

impl Rollout<'_> {
    pub async fn rolling(&self, _api: &Api<Deployment>) -> Result<Action, Error> {
        let d = self.d;
        let Some(new) = self.new_rs_synced(true, |old| next_new_size(d, old, 0)).await? else {
            return Ok(Action::requeue(std::time::Duration::from_millis(100)));
        };
        let old: Vec<Arc<ReplicaSet>> = self.old_rss(Some(&new));
        let mut all = old.clone();
        all.push(new.clone());

        // Scale up the new ReplicaSet.
        let want = replicas(d);
        let new_size = rs_replicas(&new);
        let target = if new_size > want { want } else { next_new_size(d, &all, new_size) };
        if target != new_size {
            self.scale(&new, target).await?;
            return self.sync_rollout_status(Some(&new)).await;
        }

        // Scale down the old ones.
        if self.scale_down_old(&old, &new).await? {
            return self.sync_rollout_status(Some(&new)).await;
        }
        if super::progress::complete(d, &self.computed_status(Some(&new)).0) {
            self.clean_up(Some(&new)).await?;
        }
        self.sync_rollout_status(Some(&new)).await
    }

    /// Takes old pods away within maxUnavailable: first those not available (which cost
    /// nothing), then available ones, oldest ReplicaSet first. True if any were.
    async fn scale_down_old(&self, old: &[Arc<ReplicaSet>], new: &Arc<ReplicaSet>) -> Result<bool, Error> {
        let d = self.d;
        let old_total: i32 = old.iter().map(|rs| rs_replicas(rs)).sum();
        if old_total == 0 {
            return Ok(false);
        }
        let all_total: i32 = old_total + rs_replicas(new);
        let min_available = replicas(d) - max_unavailable(d);
        let new_unavailable = rs_replicas(new) - rs_available(new);
        let max_scaled_down = all_total - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }

        let mut sizes: Vec<i32> = old.iter().map(|rs| rs_replicas(rs)).collect();
        let mut cleaned = 0;
        for (rs, size) in old.iter().zip(sizes.iter_mut()) {
            if cleaned >= max_scaled_down {
                break;
            }
            let unhealthy = *size - rs_available(rs);
            if *size == 0 || unhealthy <= 0 {
                continue;
            }
            let down = (max_scaled_down - cleaned).min(unhealthy);
            *size -= down;
            cleaned += down;
        }

        let available: i32 = old.iter().map(|rs| rs_available(rs)).sum::<i32>() + rs_available(new);
        let mut budget = (available - min_available).max(0);
        for size in sizes.iter_mut() {
            if budget == 0 {
                break;
            }
            let down = (*size).min(budget);
            if down == 0 {
                continue;
            }
            *size -= down;
            budget -= down;
        }

        let mut scaled = false;
        for (rs, size) in old.iter().zip(sizes) {
            if size != rs_replicas(rs) {
                self.scale(rs, size).await?;
                scaled = true;
            }
        }
        Ok(scaled)
    }
}
