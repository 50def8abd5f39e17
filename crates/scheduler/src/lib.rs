//! The scheduler: an API client that watches nodes and pods, takes the pods that name it
//! (`default-scheduler`) and no node, and binds each to the best node that passes every
//! filter, as kube-scheduler does. A pod that fits nowhere gets a FailedScheduling event and
//! a PodScheduled=False condition saying why, node by node, and waits for the cluster to
//! change.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> anyhow::Result<()> {
//! scheduler::Scheduler::new(client).run().await
//! # }
//! ```

mod cache;
mod framework;
pub mod plugins;
mod queue;
mod report;
mod resources;

use cache::Cache;
use framework::{Filter, PodInfo, Score};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use plugins::*;
use queue::Queue;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

pub const DEFAULT_SCHEDULER: &str = "default-scheduler";

/// How often pods set aside as unschedulable are tried again even if nothing changed.
const RETRY_UNSCHEDULABLE_EVERY: Duration = Duration::from_secs(30);

pub struct Scheduler {
    client: kube::Client,
    filters: Vec<Box<dyn Filter>>,
    scores: Vec<Box<dyn Score>>,
    state: Mutex<State>,
    wake: Notify,
}

#[derive(Default)]
struct State {
    cache: Cache,
    queue: Queue,
    /// Where the next search for nodes starts, so that sampling visits every node in turn.
    next_start: usize,
}

impl Scheduler {
    pub fn new(client: kube::Client) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            client,
            filters: vec![
                Box::new(node_unschedulable::NodeUnschedulable),
                Box::new(taint_toleration::TaintToleration),
                Box::new(node_affinity::NodeAffinity),
                Box::new(node_ports::NodePorts),
                Box::new(node_resources_fit::NodeResourcesFit),
            ],
            scores: vec![
                Box::new(node_resources_fit::NodeResourcesFit),
                Box::new(node_affinity::NodeAffinity),
                Box::new(taint_toleration::TaintToleration),
            ],
            state: Mutex::default(),
            wake: Notify::new(),
        })
    }

    /// Watches and schedules until an error stops it.
    pub async fn run(self: Arc<Self>) -> anyhow::Result<()> {
        let nodes = tokio::spawn(self.clone().watch_nodes());
        let pods = tokio::spawn(self.clone().watch_pods());
        let retry = tokio::spawn(self.clone().retry_periodically());
        let result = self.schedule_loop().await;
        for task in [nodes, pods, retry] {
            task.abort();
        }
        result
    }

    async fn watch_nodes(self: Arc<Self>) {
        let api: Api<Node> = Api::all(self.client.clone());
        let mut events = watcher(api, watcher::Config::default()).default_backoff().boxed();
        while let Some(event) = events.next().await {
            let mut state = self.state.lock().unwrap();
            match event {
                Ok(watcher::Event::Apply(node) | watcher::Event::InitApply(node)) => state.cache.set_node(node),
                Ok(watcher::Event::Delete(node)) => state.cache.remove_node(node.metadata.name.as_deref().unwrap_or("")),
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "watching nodes");
                    continue;
                }
            }
            state.queue.retry_unschedulable();
            drop(state);
            self.wake.notify_one();
        }
    }

    async fn watch_pods(self: Arc<Self>) {
        let api: Api<Pod> = Api::all(self.client.clone());
        let mut events = watcher(api, watcher::Config::default()).default_backoff().boxed();
        while let Some(event) = events.next().await {
            let mut state = self.state.lock().unwrap();
            match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => observe(&mut state, pod),
                Ok(watcher::Event::Delete(pod)) => {
                    let uid = pod.metadata.uid.as_deref().unwrap_or("");
                    state.cache.forget(uid);
                    state.queue.remove(uid);
                    state.queue.retry_unschedulable();
                }
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "watching pods");
                    continue;
                }
            }
            drop(state);
            self.wake.notify_one();
        }
    }

    async fn retry_periodically(self: Arc<Self>) {
        let mut tick = tokio::time::interval(RETRY_UNSCHEDULABLE_EVERY);
        loop {
            tick.tick().await;
            let mut state = self.state.lock().unwrap();
            if state.queue.has_unschedulable() {
                state.queue.retry_unschedulable();
                drop(state);
                self.wake.notify_one();
            }
        }
    }

    async fn schedule_loop(self: &Arc<Self>) -> anyhow::Result<()> {
        loop {
            let next = self.state.lock().unwrap().queue.pop();
            match next {
                Some(pod) => self.schedule_one(pod),
                None => self.wake.notified().await,
            }
        }
    }

    /// Chooses a node for one pod and binds it there (in the background), or reports why
    /// it fits nowhere.
    fn schedule_one(self: &Arc<Self>, pod: Arc<Pod>) {
        let info = PodInfo::new(pod.clone());
        let mut state = self.state.lock().unwrap();
        let total = state.cache.nodes.len();
        let wanted = feasible_nodes_to_find(total);
        let start = state.next_start % total.max(1);
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut best: Option<(i64, String)> = None;
        let mut found = 0;
        let mut visited = 0;
        for name in state.cache.order.iter().cycle().skip(start).take(total) {
            visited += 1;
            let node = &state.cache.nodes[name];
            match self.filters.iter().try_for_each(|f| f.filter(&info, node)) {
                Err(reason) => *reasons.entry(reason).or_default() += 1,
                Ok(()) => {
                    found += 1;
                    let score: i64 = self.scores.iter().map(|s| s.score(&info, node) * s.weight()).sum();
                    if best.as_ref().is_none_or(|(b, _)| score > *b) {
                        best = Some((score, name.to_string()));
                    }
                    if found >= wanted {
                        break;
                    }
                }
            }
        }
        state.next_start = start + visited;
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        match best {
            Some((_, node)) => {
                state.cache.place(&uid, &pod, &node);
                drop(state);
                let scheduler = self.clone();
                tokio::spawn(async move { scheduler.bind(pod, uid, node).await });
            }
            None => {
                state.queue.set_aside(pod.clone());
                drop(state);
                let message = report::unschedulable_message(total, &reasons);
                let client = self.client.clone();
                tokio::spawn(async move { report::failed_scheduling(client, &pod, &message).await });
            }
        }
    }

    async fn bind(self: Arc<Self>, pod: Arc<Pod>, uid: String, node: String) {
        let (namespace, name) = (pod.metadata.namespace.clone().unwrap_or_default(), pod.metadata.name.clone().unwrap_or_default());
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": namespace, "uid": uid},
                             "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
        match api.create_subresource::<_, serde_json::Value>("binding", &name, &PostParams::default(), &binding).await {
            Ok(_) => {}
            // Gone, or bound by someone else: the pod watch settles it.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {
                self.state.lock().unwrap().cache.forget(&uid);
            }
            Err(e) => {
                tracing::warn!(pod = name, node, error = %e, "binding failed; retrying");
                let mut state = self.state.lock().unwrap();
                state.cache.forget(&uid);
                state.queue.set_aside(pod);
            }
        }
    }
}

/// Takes in a pod seen by the watch: bound pods count on their node (finished ones no
/// longer do), and pending pods for this scheduler join the queue.
fn observe(state: &mut State, pod: Pod) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
    let spec = pod.spec.as_ref();
    match spec.and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty()) {
        Some(_) if matches!(phase, "Succeeded" | "Failed") => {
            state.cache.forget(&uid);
            state.queue.retry_unschedulable();
        }
        Some(node) => {
            let node = node.to_string();
            state.queue.remove(&uid);
            state.cache.place(&uid, &pod, &node);
        }
        None => {
            let ours = spec.and_then(|s| s.scheduler_name.as_deref()).unwrap_or(DEFAULT_SCHEDULER) == DEFAULT_SCHEDULER;
            if ours && pod.metadata.deletion_timestamp.is_none() {
                state.queue.add(Arc::new(pod));
            }
        }
    }
}

/// How many feasible nodes to find before choosing, as kube-scheduler's adaptive
/// percentageOfNodesToScore decides: all of a small cluster, a shrinking share of a large
/// one (50% less 1% per 125 nodes, at least 5%), and never fewer than 100.
fn feasible_nodes_to_find(nodes: usize) -> usize {
    if nodes < 100 {
        return nodes.max(1);
    }
    let percentage = (50 - nodes as i64 / 125).max(5) as usize;
    (nodes * percentage / 100).max(100)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sampling_follows_kube_scheduler() {
        assert_eq!(super::feasible_nodes_to_find(50), 50);
        assert_eq!(super::feasible_nodes_to_find(1000), 420);
        assert_eq!(super::feasible_nodes_to_find(5000), 500);
        assert_eq!(super::feasible_nodes_to_find(200), 100);
    }
}
