//! PodGC: every 20 s it force-deletes the pods nothing else will clean up: finished pods
//! beyond `--terminated-pod-gc-threshold` (evicted ones first, then the oldest), pods bound
//! to a node that no longer exists (after a 40 s quarantine and a read of the node from the
//! API, in case the informer is only late), terminating pods on a node that is not Ready and
//! tainted `node.kubernetes.io/out-of-service`, and terminating pods never bound to a node.
//! A pod not yet finished is first marked Failed, an orphaned one with the DisruptionTarget
//! condition (reason DeletionByPodGC), since no kubelet is left to do it.

use crate::Informers;
use crate::pods::{is_terminal, node_name};
use crate::status;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Preconditions};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PERIOD: Duration = Duration::from_secs(20);
/// How long a missing node may take to show up in the informer before it is looked up.
const QUARANTINE: Duration = Duration::from_secs(40);
const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";
/// Deletions in flight at once.
const CONCURRENCY: usize = 16;

/// Why a pod is deleted: the DisruptionTarget reason and message, if the pod gets one.
type Disruption = Option<(&'static str, &'static str)>;

struct PodGc {
    client: kube::Client,
    informers: Arc<Informers>,
    threshold: usize,
    /// Nodes that pods are bound to but the informer does not have, since when.
    quarantined: HashMap<String, Instant>,
}

pub async fn run(client: kube::Client, informers: Arc<Informers>, terminated_pod_gc_threshold: usize) {
    informers.pods.ready().await;
    informers.nodes.ready().await;
    let mut gc = PodGc { client, informers, threshold: terminated_pod_gc_threshold, quarantined: HashMap::new() };
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        gc.pass().await;
    }
}

/// Evicted pods first (their owners have replaced them already), then the oldest.
fn collection_order(pods: &mut [Arc<Pod>]) {
    pods.sort_by_cached_key(|p| {
        let evicted = p.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("Evicted");
        let created = p.metadata.creation_timestamp.as_ref().map(crate::pods::timestamp);
        (!evicted, created, p.metadata.name.clone())
    });
}

/// The finished pods beyond the threshold, in the order they go.
fn excess_terminated(pods: &[Arc<Pod>], threshold: usize) -> Vec<Arc<Pod>> {
    let mut terminated: Vec<Arc<Pod>> = pods.iter().filter(|p| is_terminal(p)).cloned().collect();
    if threshold == 0 || terminated.len() <= threshold {
        return Vec::new();
    }
    collection_order(&mut terminated);
    terminated.truncate(terminated.len() - threshold);
    terminated
}

fn is_ready(node: &Node) -> bool {
    crate::node_lifecycle::ready_status(node) == Some("True")
}

fn out_of_service(node: &Node) -> bool {
    node.spec.as_ref().and_then(|s| s.taints.as_ref()).is_some_and(|t| t.iter().any(|t| t.key == OUT_OF_SERVICE))
}

impl PodGc {
    async fn pass(&mut self) {
        let pods = self.informers.pods.store().state();
        let nodes = self.informers.nodes.store().state();
        let existing: HashSet<&str> = nodes.iter().filter_map(|n| n.metadata.name.as_deref()).collect();

        let terminated = excess_terminated(&pods, self.threshold);
        if !terminated.is_empty() {
            tracing::info!(pods = terminated.len(), "deleting finished pods beyond the threshold");
        }
        self.delete_all(terminated, None).await;

        let terminating_out_of_service = pods.iter().filter(|p| {
            p.metadata.deletion_timestamp.is_some()
                && self.informers.nodes.get("", node_name(p)).is_some_and(|n| !is_ready(&n) && out_of_service(&n))
        });
        self.delete_all(terminating_out_of_service.cloned().collect(), None).await;

        let gone = self.deleted_nodes(&pods, &existing).await;
        let orphaned = pods.iter().filter(|p| gone.contains(node_name(p))).cloned().collect();
        self.delete_all(orphaned, Some(("DeletionByPodGC", "PodGC: node no longer exists"))).await;

        let unscheduled_terminating =
            pods.iter().filter(|p| p.metadata.deletion_timestamp.is_some() && node_name(p).is_empty());
        self.delete_all(unscheduled_terminating.cloned().collect(), None).await;
    }

    /// The nodes that pods are bound to and that, after their quarantine, the API says are
    /// gone.
    async fn deleted_nodes(&mut self, pods: &[Arc<Pod>], existing: &HashSet<&str>) -> HashSet<String> {
        let now = Instant::now();
        for pod in pods {
            let node = node_name(pod);
            if !node.is_empty() && !existing.contains(node) {
                self.quarantined.entry(node.to_string()).or_insert(now);
            }
        }
        let due: Vec<String> =
            self.quarantined.iter().filter(|(_, since)| now >= **since + QUARANTINE).map(|(n, _)| n.clone()).collect();
        let api: Api<Node> = Api::all(self.client.clone());
        let mut gone = HashSet::new();
        for node in due {
            self.quarantined.remove(&node);
            if existing.contains(node.as_str()) {
                continue;
            }
            match api.get_opt(&node).await {
                Ok(None) => {
                    gone.insert(node);
                }
                Ok(Some(_)) => {}
                Err(e) => tracing::warn!(node, error = %e, "could not read a node that pods are bound to"),
            }
        }
        gone
    }

    async fn delete_all(&self, pods: Vec<Arc<Pod>>, disruption: Disruption) {
        futures::stream::iter(pods)
            .for_each_concurrent(CONCURRENCY, |pod| async move {
                if let Err(e) = self.fail_and_delete(&pod, disruption).await {
                    tracing::warn!(pod = pod.metadata.name.as_deref().unwrap_or(""), error = %e, "could not collect the pod");
                }
            })
            .await;
    }

    /// Marks the pod Failed (with the disruption condition), unless it finished, and deletes
    /// it at once.
    async fn fail_and_delete(&self, pod: &Pod, disruption: Disruption) -> kube::Result<()> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        if !is_terminal(pod) {
            let Some(fresh) = api.get_opt(&name).await? else { return Ok(()) };
            if fresh.metadata.uid != pod.metadata.uid {
                return Ok(());
            }
            let mut conditions = status::conditions(&fresh);
            if let Some((reason, message)) = disruption {
                status::set_condition(&mut conditions, "DisruptionTarget", "True", reason, message, false);
            }
            status::write(&api, &fresh, json!({"phase": "Failed", "conditions": status::conditions_value(conditions)}))
                .await?;
        }
        tracing::info!(pod = name, namespace, "PodGC is force deleting the pod");
        let preconditions = Preconditions { uid: pod.metadata.uid.clone(), resource_version: None };
        let params =
            DeleteParams { grace_period_seconds: Some(0), preconditions: Some(preconditions), ..Default::default() };
        match api.delete(&name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, created: &str, phase: &str, reason: Option<&str>) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "creationTimestamp": created},
                "status": {"phase": phase, "reason": reason},
            }))
            .unwrap(),
        )
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<&str> {
        pods.iter().map(|p| p.metadata.name.as_deref().unwrap()).collect()
    }

    #[test]
    fn the_evicted_then_the_oldest_finished_pods_go_beyond_the_threshold() {
        let pods = vec![
            pod("new", "2026-01-03T00:00:00Z", "Succeeded", None),
            pod("running", "2026-01-01T00:00:00Z", "Running", None),
            pod("old", "2026-01-02T00:00:00Z", "Failed", None),
            pod("evicted", "2026-01-04T00:00:00Z", "Failed", Some("Evicted")),
            pod("b-same-time", "2026-01-02T00:00:00Z", "Succeeded", None),
        ];
        assert_eq!(names(&excess_terminated(&pods, 2)), ["evicted", "b-same-time"]);
        assert_eq!(names(&excess_terminated(&pods, 1)), ["evicted", "b-same-time", "old"]);
        assert!(excess_terminated(&pods, 4).is_empty());
        // 0 turns the collection of finished pods off.
        assert!(excess_terminated(&pods, 0).is_empty());
    }
}
