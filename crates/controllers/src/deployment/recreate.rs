//! Recreate: every old pod goes before any new one starts. Old ReplicaSets are scaled to
//! zero; once none of their pods is left running, the new ReplicaSet is created or scaled
//! to the full replica count.

use super::{Rollout, replicas, rs_replicas};
use crate::Error;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use kube::runtime::controller::Action;

impl Rollout<'_> {
    pub async fn recreate(&self, _api: &Api<Deployment>) -> Result<Action, Error> {
        let d = self.d;
        let new = self.new_rs_synced(false, |_| 0).await?;
        let mut scaled_down = false;
        for rs in self.old_rss(new.as_ref()).iter().filter(|rs| rs_replicas(rs) > 0) {
            self.scale(rs, 0).await?;
            scaled_down = true;
        }
        if scaled_down || self.old_pods_running(new.as_ref()) {
            return self.sync_rollout_status(new.as_ref()).await;
        }
        let new = match new {
            Some(rs) => rs,
            None => match self.new_rs_synced(true, |_| replicas(d)).await? {
                Some(rs) => rs,
                None => return Ok(Action::requeue(std::time::Duration::from_millis(100))),
            },
        };
        if rs_replicas(&new) != replicas(d) {
            self.scale(&new, replicas(d)).await?;
        } else if super::progress::complete(d, &self.computed_status(Some(&new)).0) {
            self.clean_up(Some(&new)).await?;
        }
        self.sync_rollout_status(Some(&new)).await
    }
}
