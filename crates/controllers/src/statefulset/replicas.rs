//! Scaling a StatefulSet, in kube-controller-manager's order. The pods in the ordinal range
//! are processed from the lowest ordinal up: a finished pod (Succeeded or Failed) is deleted
//! to be recreated under its name, a missing one is created (at the current revision below
//! the partition, else at the update revision), a pending one gets back any claim it lost,
//! and one that lost its identity or storage is repaired. Then the pods beyond the range are
//! condemned: their claims get the retention policy's owners, and they are deleted from the
//! highest ordinal down. Under OrderedReady each step waits for every earlier pod to be
//! Running, Ready and available, and scaling down stops at an unhealthy pod (unless it is
//! the first unhealthy one: deleting it is progress); under Parallel every pod is handled at
//! once, in batches that double (1, 2, 4, ...) while they succeed.

use super::Pass;
use super::health::{is_created, is_pending, is_terminating, is_unavailable, running_and_available, running_and_ready};
use super::identity::{self, new_pod};
use super::status::SetStatus;
use crate::Error;
use crate::pods::is_terminal;
use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use std::future::Future;
use std::sync::Arc;

/// Runs `step` for each index: in order, stopping at the first that asks to (`Ok(true)`),
/// when `monotonic`; else in batches that double while no step fails. True if it stopped.
async fn for_all<F, Fut>(count: usize, monotonic: bool, step: F) -> Result<bool, Error>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<bool, Error>>,
{
    if monotonic {
        for i in 0..count {
            if step(i).await? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    let (mut done, mut batch) = (0, 1);
    while done < count {
        let end = (done + batch).min(count);
        if let Some(error) = join_all((done..end).map(&step)).await.into_iter().find_map(Result::err) {
            return Err(error);
        }
        done = end;
        batch *= 2;
    }
    Ok(false)
}

impl Pass<'_> {
    /// One pass over the set's pods: scaling, then (but for OnDelete) rolling out. `act` is
    /// false while earlier creations and deletions have not been seen yet: the status is all
    /// this pass does then. Returns the status, and what failed.
    pub async fn sync(&self, pods: &[Arc<Pod>], act: bool) -> (SetStatus, Result<(), Error>) {
        let mut status = SetStatus {
            observed_generation: self.set.metadata.generation,
            current_revision: self.current_revision.clone(),
            update_revision: self.update_revision.clone(),
            ..Default::default()
        };
        status.count(pods, self.min_ready, self.now);
        if !act || self.set.metadata.deletion_timestamp.is_some() {
            return (status, Ok(()));
        }
        let (replicas, condemned) = self.partition(pods);
        let outcome = self.converge(&replicas, &condemned, &mut status).await;
        (status, outcome)
    }

    /// The pods in the ordinal range, by ordinal, with the missing ones made (not yet
    /// created); and the others, highest ordinal first.
    fn partition(&self, pods: &[Arc<Pod>]) -> (Vec<Arc<Pod>>, Vec<Arc<Pod>>) {
        let start = identity::start_ordinal(self.set);
        let mut replicas: Vec<Option<Arc<Pod>>> = vec![None; identity::replicas(self.set).max(0) as usize];
        let mut condemned = Vec::new();
        for pod in pods {
            match identity::ordinal(pod) {
                Some(ordinal) if identity::in_range(self.set, ordinal) => {
                    replicas[(ordinal - start) as usize] = Some(pod.clone())
                }
                Some(_) => condemned.push(pod.clone()),
                None => {}
            }
        }
        let replicas = replicas
            .into_iter()
            .zip(start..)
            .map(|(pod, ordinal)| pod.unwrap_or_else(|| Arc::new(self.new_replica(ordinal))));
        condemned.sort_by_key(|p| std::cmp::Reverse(identity::ordinal(p)));
        (replicas.collect(), condemned)
    }

    /// The pod to create for `ordinal`: at the current revision below the partition (or,
    /// without one, below the count of current replicas), else at the update revision.
    fn new_replica(&self, ordinal: i32) -> Pod {
        let strategy = self.current_set.spec.update_strategy.as_ref();
        let rolling = strategy.and_then(|s| s.type_.as_deref()).unwrap_or("RollingUpdate") == "RollingUpdate";
        let partition = strategy.and_then(|s| s.rolling_update.as_ref()).map(|r| r.partition.unwrap_or(0));
        let current_replicas = self.set.status.as_ref().and_then(|s| s.current_replicas).unwrap_or(0);
        let start = identity::start_ordinal(self.set);
        let at_current = match partition {
            Some(partition) => ordinal < start + partition,
            None => rolling && ordinal < start + current_replicas,
        };
        if at_current {
            new_pod(&self.current_set, ordinal, &self.current_revision)
        } else {
            new_pod(&self.update_set, ordinal, &self.update_revision)
        }
    }

    async fn converge(
        &self,
        replicas: &[Arc<Pod>],
        condemned: &[Arc<Pod>],
        status: &mut SetStatus,
    ) -> Result<(), Error> {
        let all = || replicas.iter().chain(condemned);
        // Deleting the first unavailable pod is progress; any other waits for it.
        let first_unavailable =
            replicas.iter().chain(condemned.iter().rev()).find(|p| is_unavailable(p, self.min_ready, self.now));
        let first_unavailable = first_unavailable.map(|p| p.name_any());
        let monotonic = self.monotonic;
        let stopped = async {
            Ok::<_, Error>(
                for_all(replicas.len(), monotonic, |i| self.process_replica(&replicas[i])).await?
                    || for_all(condemned.len(), monotonic, |i| self.fix_claims(&condemned[i])).await?
                    || for_all(condemned.len(), monotonic, |i| {
                        self.process_condemned(&condemned[i], first_unavailable.as_deref())
                    })
                    .await?,
            )
        }
        .await;
        status.count(all(), self.min_ready, self.now);
        if stopped? || self.set.spec.update_strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("OnDelete") {
            return Ok(());
        }
        self.roll(replicas, status).await
    }

    /// Brings one pod in the range towards what it should be; true to stop the pass here.
    async fn process_replica(&self, pod: &Arc<Pod>) -> Result<bool, Error> {
        if is_terminal(pod) {
            if pod.metadata.deletion_timestamp.is_none() {
                self.delete_pod(pod).await?;
            }
            // Recreated once it is gone.
            return Ok(true);
        }
        if !is_created(pod) {
            if self.claims_stale(pod) {
                return Ok(true);
            }
            self.create_pod(pod).await?;
            return Ok(self.monotonic);
        }
        if is_pending(pod) {
            self.create_claims(pod).await?;
        }
        let waiting =
            is_terminating(pod) || !running_and_ready(pod) || !running_and_available(pod, self.min_ready, self.now);
        if self.monotonic && waiting {
            return Ok(true);
        }
        if self.needs_update(pod) {
            self.update_pod(pod).await?;
        }
        Ok(false)
    }

    /// Gives a condemned pod's claims the owners the retention policy wants before the pod
    /// goes (whenScaled=Delete: the pod, so that they go with it).
    async fn fix_claims(&self, pod: &Arc<Pod>) -> Result<bool, Error> {
        if !self.claims_match_policy(pod) {
            self.apply_policy(pod).await?;
        }
        Ok(false)
    }

    /// Deletes a condemned pod, under OrderedReady only if it is healthy or the first
    /// unhealthy pod, and only once the pods above it are gone.
    async fn process_condemned(&self, pod: &Arc<Pod>, first_unavailable: Option<&str>) -> Result<bool, Error> {
        if is_terminating(pod) {
            return Ok(self.monotonic);
        }
        let first = first_unavailable == Some(pod.name_any().as_str());
        let healthy = running_and_ready(pod) && running_and_available(pod, self.min_ready, self.now);
        if self.monotonic && !healthy && !first {
            return Ok(true);
        }
        self.delete_pod(pod).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn ordered_steps_stop_where_asked_and_parallel_ones_do_not() {
        let seen = Mutex::new(Vec::new());
        let step = |i: usize| {
            seen.lock().unwrap().push(i);
            std::future::ready(Ok(i == 2))
        };
        assert!(for_all(5, true, step).await.unwrap());
        assert_eq!(*seen.lock().unwrap(), [0, 1, 2]);
        seen.lock().unwrap().clear();
        assert!(!for_all(5, false, step).await.unwrap());
        assert_eq!(seen.lock().unwrap().len(), 5);
        let failing = |i: usize| std::future::ready(if i == 0 { Err(Error(anyhow::anyhow!("no"))) } else { Ok(false) });
        assert!(for_all(5, false, failing).await.is_err());
    }
}
