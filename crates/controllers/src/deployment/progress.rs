//! A Deployment's status: replica counts summed over its ReplicaSets; Available while at
//! most maxUnavailable pods are unavailable; Progressing while the rollout moves (and
//! False with ProgressDeadlineExceeded when it has not moved for progressDeadlineSeconds);
//! ReplicaFailure copied from a ReplicaSet that cannot create or delete pods; and the
//! paused and resumed reasons. `kubectl rollout status` reads exactly these.

use super::{Rollout, max_unavailable, paused, replicas};
use crate::Error;
use crate::status::{self, condition, count, set_condition};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const PROGRESSING: &str = "Progressing";

fn deadline(d: &Deployment) -> Option<i64> {
    let seconds = d.spec.progress_deadline_seconds.unwrap_or(600);
    // math.MaxInt32 means no deadline, as in Kubernetes.
    (seconds != i32::MAX).then_some(seconds as i64)
}

fn field(status: &Value, name: &str) -> i64 {
    status[name].as_i64().unwrap_or(0)
}

/// Sets Progressing=Unknown with DeploymentPaused or DeploymentResumed when the Deployment
/// was paused or resumed; true if the status was written (the write triggers a new pass).
pub async fn paused_condition_changed(d: &Deployment, api: &Api<Deployment>) -> Result<bool, Error> {
    if deadline(d).is_none() {
        return Ok(false);
    }
    let mut conditions = status::conditions(d);
    let reason = condition(&conditions, PROGRESSING).and_then(|c| c["reason"].as_str().map(String::from));
    let (reason, message) = match (paused(d), reason.as_deref()) {
        (true, r) if r != Some("DeploymentPaused") => ("DeploymentPaused", "Deployment is paused"),
        (false, Some("DeploymentPaused")) => ("DeploymentResumed", "Deployment is resumed"),
        _ => return Ok(false),
    };
    set_condition(&mut conditions, PROGRESSING, "Unknown", reason, message, true);
    status::write(api, d, json!({"conditions": conditions})).await?;
    Ok(true)
}

impl Rollout<'_> {
    /// The status counts and Available, with the current conditions otherwise kept.
    pub(super) fn computed_status(&self, new: Option<&Arc<ReplicaSet>>) -> (Value, Vec<Value>) {
        let d = self.d;
        let sum = |f: &dyn Fn(&ReplicaSet) -> i32| self.all.iter().map(|rs| f(rs) as i64).sum::<i64>();
        let status_of = |rs: &ReplicaSet| rs.status.clone().unwrap_or_default();
        let total = sum(&|rs| status_of(rs).replicas);
        let available = sum(&|rs| status_of(rs).available_replicas.unwrap_or(0));
        let ready = sum(&|rs| status_of(rs).ready_replicas.unwrap_or(0));
        let terminating = sum(&|rs| status_of(rs).terminating_replicas.unwrap_or(0));
        let updated = new.map_or(0, |rs| status_of(rs).replicas) as i64;
        let unavailable = (replicas(d) as i64 - available).max(0);
        let mut conditions = status::conditions(d);
        if available >= (replicas(d) - max_unavailable(d)) as i64 {
            set_condition(
                &mut conditions,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                true,
            );
        } else {
            set_condition(
                &mut conditions,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                true,
            );
        }
        let status = json!({
            "observedGeneration": d.metadata.generation,
            "replicas": count(total as usize),
            "updatedReplicas": count(updated as usize),
            "readyReplicas": count(ready as usize),
            "availableReplicas": count(available as usize),
            "unavailableReplicas": count(unavailable as usize),
            "terminatingReplicas": terminating,
            "collisionCount": d.status.as_ref().and_then(|s| s.collision_count),
        });
        (status, conditions)
    }

    fn api(&self) -> Api<Deployment> {
        Api::namespaced(self.ctx.client.clone(), &self.d.namespace().unwrap_or_default())
    }

    /// Writes the status without judging progress: for scaling, pauses and deletions.
    pub async fn sync_status(&self, api: &Api<Deployment>) -> Result<Action, Error> {
        let new = self.new_rs();
        let (mut status, conditions) = self.computed_status(new.as_ref());
        status["conditions"] = status::conditions_value(conditions);
        status::write(api, self.d, status).await?;
        Ok(Action::await_change())
    }

    /// Writes the status with the Progressing and ReplicaFailure conditions, and asks to be
    /// run again when the progress deadline would pass.
    pub async fn sync_rollout_status(&self, new: Option<&Arc<ReplicaSet>>) -> Result<Action, Error> {
        let d = self.d;
        let (mut status, mut conditions) = self.computed_status(new);
        let old_status = serde_json::to_value(d.status.clone().unwrap_or_default()).unwrap_or_default();
        let complete = complete(d, &status);
        let mut requeue = None;
        if let Some(deadline) = deadline(d).filter(|_| !paused(d)) {
            let progressing = condition(&conditions, PROGRESSING).cloned();
            let name = new.map(|rs| rs.name_any()).unwrap_or_default();
            // A finished rollout stays finished while pods come and go (a scale, a restart).
            let finished = progressing.as_ref().is_some_and(|p| p["reason"] == "NewReplicaSetAvailable")
                && field(&status, "replicas") == field(&status, "updatedReplicas");
            if complete {
                set_condition(
                    &mut conditions,
                    PROGRESSING,
                    "True",
                    "NewReplicaSetAvailable",
                    &format!("ReplicaSet \"{name}\" has successfully progressed."),
                    true,
                );
            } else if !finished && moved(&old_status, &status) {
                let message = format!("ReplicaSet \"{name}\" is progressing.");
                // Refreshed on every move, so that the deadline counts from the last one.
                crate::status::remove_condition(&mut conditions, PROGRESSING);
                set_condition(&mut conditions, PROGRESSING, "True", "ReplicaSetUpdated", &message, true);
                if let Some(previous) = progressing.filter(|p| p["status"] == "True")
                    && let Some(c) = conditions.iter_mut().find(|c| c["type"] == PROGRESSING)
                {
                    c["lastTransitionTime"] = previous["lastTransitionTime"].clone();
                }
                requeue = Some(Duration::from_secs(deadline as u64));
            } else if !finished && let Some(updated) = progressing.as_ref().and_then(last_update) {
                let left = updated + chrono::Duration::seconds(deadline) - chrono::Utc::now();
                let reason = progressing.as_ref().and_then(|p| p["reason"].as_str()).unwrap_or("");
                if reason != "NewReplicaSetAvailable" && left <= chrono::Duration::zero() {
                    set_condition(
                        &mut conditions,
                        PROGRESSING,
                        "False",
                        "ProgressDeadlineExceeded",
                        &format!("ReplicaSet \"{name}\" has timed out progressing."),
                        true,
                    );
                } else if reason != "NewReplicaSetAvailable" && reason != "ProgressDeadlineExceeded" {
                    requeue = Some(left.to_std().unwrap_or_default() + Duration::from_secs(1));
                }
            }
        }
        let failure = self.all.iter().find_map(|rs| {
            let c = crate::status::conditions(rs.as_ref());
            condition(&c, "ReplicaFailure").filter(|c| c["status"] == "True").cloned()
        });
        match failure {
            Some(f) => set_condition(
                &mut conditions,
                "ReplicaFailure",
                "True",
                f["reason"].as_str().unwrap_or(""),
                f["message"].as_str().unwrap_or(""),
                true,
            ),
            None => crate::status::remove_condition(&mut conditions, "ReplicaFailure"),
        }
        status["conditions"] = status::conditions_value(conditions);
        status::write(&self.api(), d, status).await?;
        Ok(requeue.map_or(Action::await_change(), Action::requeue))
    }

    pub async fn progressing_on_creation(&self, name: &str) -> Result<(), Error> {
        self.set_progressing("True", "NewReplicaSetCreated", &format!("Created new replica set \"{name}\"")).await
    }

    pub async fn progressing_failed_creation(&self, name: &str, e: &kube::Error) -> Result<(), Error> {
        let message = format!("Failed to create new replica set \"{name}\": {e}");
        self.set_progressing("False", "FailedRSCreate", &message).await
    }

    async fn set_progressing(&self, status: &str, reason: &str, message: &str) -> Result<(), Error> {
        if deadline(self.d).is_none() {
            return Ok(());
        }
        let mut conditions = status::conditions(self.d);
        set_condition(&mut conditions, PROGRESSING, status, reason, message, true);
        status::write(&self.api(), self.d, json!({"conditions": conditions})).await?;
        Ok(())
    }
}

fn last_update(c: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    let t = c["lastUpdateTime"].as_str()?;
    chrono::DateTime::parse_from_rfc3339(t).ok().map(|t| t.with_timezone(&chrono::Utc))
}

/// Every replica updated and available, and none of an old template left.
pub fn complete(d: &Deployment, status: &Value) -> bool {
    let want = replicas(d) as i64;
    field(status, "updatedReplicas") == want
        && field(status, "replicas") == want
        && field(status, "availableReplicas") == want
        && status["observedGeneration"].as_i64() >= d.metadata.generation
}

/// More pods updated, ready or available, or fewer old ones, than the last status said.
fn moved(old: &Value, new: &Value) -> bool {
    let old_pods = field(old, "replicas") - field(old, "updatedReplicas");
    let new_pods = field(new, "replicas") - field(new, "updatedReplicas");
    field(new, "updatedReplicas") > field(old, "updatedReplicas")
        || new_pods < old_pods
        || field(new, "readyReplicas") > field(old, "readyReplicas")
        || field(new, "availableReplicas") > field(old, "availableReplicas")
}
