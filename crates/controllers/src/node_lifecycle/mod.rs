//! The node lifecycle controller. Every `--node-monitor-period` it judges each node's health
//! from its Lease and Ready condition ([`health`]): a node silent for longer than
//! `--node-monitor-grace-period` gets its conditions set to Unknown, its pods marked not
//! Ready, and, through its zone's rate-limited queue ([`zones`], [`rate_limit`]), the
//! NoExecute `unreachable` (or, for Ready False, `not-ready`) taint, from which the taint
//! eviction controller evicts its pods. The taints come off when the node is Ready again.
//! NoSchedule taints follow the node's conditions as they change ([`taints`]).
//!
//! What was last heard from each node is kept in memory, on this controller's clock: after a
//! restart every node gets a fresh grace period, and the NoExecute taints are taken off the
//! nodes until they are judged again, as kube-controller-manager does.

mod health;
mod rate_limit;
mod taints;
mod zones;

use crate::pods_by_node::PodsByNode;
use crate::{Error, Informers, drive, status, triggers};
use futures::StreamExt;
use health::{Grace, Health};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use taints::{NOT_READY, UNREACHABLE, taint};
use zones::{Transition, Zones};

pub use health::ready_status;

const COMPONENT: &str = "node-controller";
/// Where the kubelets keep their Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// How often the taint queues are drained.
const TAINTING_PERIOD: Duration = Duration::from_millis(100);
/// Nodes whose health is judged at once.
const CONCURRENCY: usize = 8;
/// Nodes labelled so are left out of their zone's disruption count.
const EXCLUDE_DISRUPTION: &str = "node.kubernetes.io/exclude-disruption";

/// kube-controller-manager's node lifecycle flags.
#[derive(Clone, Debug)]
pub struct Settings {
    pub monitor_period: Duration,
    pub monitor_grace_period: Duration,
    pub startup_grace_period: Duration,
    /// Nodes tainted per second in a healthy zone.
    pub eviction_rate: f64,
    /// Nodes tainted per second in a partly disrupted zone larger than
    /// `large_cluster_size_threshold`.
    pub secondary_eviction_rate: f64,
    /// The share of not-Ready nodes from which a zone is partly disrupted.
    pub unhealthy_zone_threshold: f64,
    pub large_cluster_size_threshold: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            monitor_period: Duration::from_secs(5),
            monitor_grace_period: Duration::from_secs(40),
            startup_grace_period: Duration::from_secs(60),
            eviction_rate: 0.1,
            secondary_eviction_rate: 0.01,
            unhealthy_zone_threshold: 0.55,
            large_cluster_size_threshold: 50,
        }
    }
}

struct NodeLifecycle {
    client: kube::Client,
    nodes: Api<Node>,
    informers: Arc<Informers>,
    pods: Arc<PodsByNode>,
    settings: Settings,
    health: Mutex<Health>,
    zones: Mutex<Zones>,
    /// The nodes seen by the last pass.
    known: Mutex<HashMap<String, Arc<Node>>>,
    /// Nodes whose pods could not all be marked not Ready.
    retry_pods: Mutex<HashSet<String>>,
}

pub async fn run(client: kube::Client, informers: Arc<Informers>, pods: Arc<PodsByNode>, settings: Settings) {
    informers.nodes.ready().await;
    informers.leases.ready().await;
    informers.pods.ready().await;
    let ctx = Arc::new(NodeLifecycle {
        nodes: Api::all(client.clone()),
        client,
        informers: informers.clone(),
        pods,
        settings,
        health: Mutex::default(),
        zones: Mutex::default(),
        known: Mutex::default(),
        retry_pods: Mutex::default(),
    });
    let no_schedule = Controller::for_shared_stream(triggers(informers.nodes.subscribe()), informers.nodes.store());
    let monitor = ctx.clone();
    let tainter = ctx.clone();
    tokio::join!(
        drive(COMPONENT, no_schedule, reconcile_no_schedule, ctx),
        every(monitor.settings.monitor_period, || monitor.monitor()),
        every(TAINTING_PERIOD, || tainter.taint_due()),
    );
}

async fn every<F, Fut>(period: Duration, pass: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        pass().await;
    }
}

/// Keeps the condition-driven NoSchedule taints in step with the node.
async fn reconcile_no_schedule(node: Arc<Node>, ctx: Arc<NodeLifecycle>) -> Result<Action, Error> {
    let wanted = taints::wanted_no_schedule(&node);
    let present = taints::managed_no_schedule(&node);
    let same = |a: &k8s_openapi::api::core::v1::Taint, b: &k8s_openapi::api::core::v1::Taint| {
        a.key == b.key && a.effect == b.effect
    };
    let add: Vec<_> = wanted.iter().filter(|w| !present.iter().any(|p| same(p, w))).cloned().collect();
    let remove: Vec<_> = present.iter().filter(|p| !wanted.iter().any(|w| same(p, w))).cloned().collect();
    if !add.is_empty() || !remove.is_empty() {
        taints::swap(&ctx.nodes, &node, &add, &remove).await?;
    }
    Ok(Action::await_change())
}

fn name_of(node: &Node) -> &str {
    node.metadata.name.as_deref().unwrap_or_default()
}

impl NodeLifecycle {
    async fn node_event(&self, node: &Node, type_: &str, reason: &str, message: &str) {
        events::record(&self.client, COMPONENT, node, type_, reason, message).await;
    }

    /// One pass over every node: health, taints, pods' readiness, zones.
    async fn monitor(self: &Arc<Self>) {
        let nodes = self.informers.nodes.store().state();
        let (added, removed) = {
            let mut known = self.known.lock().unwrap();
            let added: Vec<Arc<Node>> = nodes.iter().filter(|n| !known.contains_key(name_of(n))).cloned().collect();
            let current: HashSet<&str> = nodes.iter().map(|n| name_of(n)).collect();
            let removed: Vec<Arc<Node>> = known.values().filter(|n| !current.contains(name_of(n))).cloned().collect();
            known.retain(|name, _| current.contains(name.as_str()));
            known.extend(added.iter().map(|n| (name_of(n).to_string(), n.clone())));
            (added, removed)
        };
        for node in &added {
            let name = name_of(node);
            self.node_event(
                node,
                "Normal",
                "RegisteredNode",
                &format!("Node {name} event: Registered Node {name} in Controller"),
            )
            .await;
            if let Err(e) = self.mark_reachable(node).await {
                tracing::warn!(node = name, error = %e, "could not remove the NoExecute taints");
            }
        }
        for node in &removed {
            let name = name_of(node);
            self.health.lock().unwrap().forget(name);
            self.retry_pods.lock().unwrap().remove(name);
            self.node_event(
                node,
                "Normal",
                "RemovingNode",
                &format!("Node {name} event: Removing Node {name} from Controller"),
            )
            .await;
        }

        let judged: Vec<Option<(String, bool)>> = futures::stream::iter(nodes.iter().cloned())
            .map(|node| self.judge(node))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut ready_by_zone: HashMap<String, Vec<bool>> = HashMap::new();
        for (zone, ready) in judged.into_iter().flatten() {
            ready_by_zone.entry(zone).or_default().push(ready);
        }
        let transition = self.zones.lock().unwrap().update(&ready_by_zone, &self.settings, Instant::now());
        match transition {
            Transition::EnterFullDisruption => {
                tracing::info!("no node is Ready: evictions stop until one is");
                for node in &nodes {
                    if let Err(e) = self.mark_reachable(node).await {
                        tracing::warn!(node = name_of(node), error = %e, "could not remove the NoExecute taints");
                    }
                }
            }
            Transition::ExitFullDisruption => {
                tracing::info!("some nodes are Ready again: evictions resume");
                self.health.lock().unwrap().refresh(chrono::Utc::now());
            }
            Transition::None => {}
        }
    }

    /// Judges one node's health and acts on it; returns its zone and whether it is Ready
    /// (None for a node left out of the zone counts, or one that could not be updated).
    async fn judge(&self, node: Arc<Node>) -> Option<(String, bool)> {
        let name = name_of(&node).to_string();
        let observed = health::ready_status(&node).unwrap_or("Unknown").to_string();
        let mut node = (*node).clone();
        let mut attempts = 0;
        let current = loop {
            match self.update_health(&node).await {
                Ok(current) => break current,
                Err(e) if attempts < 5 => {
                    attempts += 1;
                    tracing::debug!(node = name, error = %e, "updating node health; reading it again");
                    node = self.nodes.get_opt(&name).await.ok()??;
                }
                Err(e) => {
                    tracing::warn!(node = name, error = %e, "could not update node health; no pods will be evicted");
                    return None;
                }
            }
        };
        let excluded = node.metadata.labels.as_ref().is_some_and(|l| l.contains_key(EXCLUDE_DISRUPTION));
        let zone = (!excluded).then(|| (zones::zone_of(&node), current.as_deref() == Some("True")));
        let Some(current) = current else { return zone };

        if let Err(e) = self.evict_by_taint(&node, &observed).await {
            tracing::warn!(node = name, error = %e, "could not update the NoExecute taints; retrying next pass");
        }
        let retry = self.retry_pods.lock().unwrap().contains(&name);
        let became_not_ready = current != "True" && observed == "True";
        if became_not_ready {
            self.node_event(&node, "Normal", "NodeNotReady", &format!("Node {name} status is now: NodeNotReady")).await;
        }
        if became_not_ready || retry && observed != "True" {
            if let Err(e) = self.mark_pods_not_ready(&name).await {
                tracing::warn!(node = name, error = %e, "could not mark all pods not Ready; retrying next pass");
                self.retry_pods.lock().unwrap().insert(name);
                return zone;
            }
        }
        self.retry_pods.lock().unwrap().remove(&name);
        zone
    }

    /// Notes the node's signals and, if it has been silent too long, writes its conditions
    /// Unknown. Returns its Ready status now (None if it has none).
    async fn update_health(&self, node: &Node) -> kube::Result<Option<String>> {
        let name = name_of(node);
        let lease = self.informers.leases.get(LEASE_NAMESPACE, name);
        let now = chrono::Utc::now();
        let grace = Grace { monitor: self.settings.monitor_grace_period, startup: self.settings.startup_grace_period };
        let silent = self.health.lock().unwrap().silent(node, lease.as_deref(), now, &grace);
        let current = health::ready_status(node).map(String::from);
        if !silent {
            return Ok(current);
        }
        let mut conditions = status::conditions(node);
        let created = json!(node.metadata.creation_timestamp);
        if !health::mark_unknown(&mut conditions, &created, &status::now()) {
            return Ok(current);
        }
        tracing::info!(node = name, "node stopped posting its status; its conditions are now Unknown");
        status::write(&self.nodes, node, json!({"conditions": conditions})).await?;
        let mut written = node.clone();
        written.status.get_or_insert_default().conditions = serde_json::from_value(json!(conditions)).ok();
        self.health.lock().unwrap().wrote(&written);
        Ok(Some("Unknown".into()))
    }

    /// Acts on the Ready status the node had before this pass: a not-ready or unreachable
    /// node is queued for its NoExecute taint (or has the other one swapped for it at once),
    /// a Ready one has them removed.
    async fn evict_by_taint(&self, node: &Node, observed: &str) -> kube::Result<()> {
        let (wanted, opposite) = match observed {
            "False" => (taint(NOT_READY, "NoExecute"), taint(UNREACHABLE, "NoExecute")),
            "Unknown" => (taint(UNREACHABLE, "NoExecute"), taint(NOT_READY, "NoExecute")),
            _ => return self.mark_reachable(node).await,
        };
        if taints::has(node, &opposite) {
            taints::swap(&self.nodes, node, &[wanted], &[opposite]).await?;
            return Ok(());
        }
        let now = Instant::now();
        let mut zones = self.zones.lock().unwrap();
        let queue = zones.queue(&zones::zone_of(node), &self.settings, now);
        // A node not tainted yet goes to the back of its zone's queue.
        if !taints::has(node, &wanted) {
            queue.remove(name_of(node));
        }
        queue.add(name_of(node), now);
        Ok(())
    }

    /// Removes the NoExecute taints and takes the node out of its zone's queue.
    async fn mark_reachable(&self, node: &Node) -> kube::Result<()> {
        let remove = [taint(UNREACHABLE, "NoExecute"), taint(NOT_READY, "NoExecute")];
        if remove.iter().any(|t| taints::has(node, t)) {
            taints::swap(&self.nodes, node, &[], &remove).await?;
            tracing::info!(node = name_of(node), "node is Ready again; its NoExecute taints are removed");
        }
        let mut zones = self.zones.lock().unwrap();
        zones.queue(&zones::zone_of(node), &self.settings, Instant::now()).remove(name_of(node));
        Ok(())
    }

    /// Taints the nodes whose turn has come in each zone's queue.
    async fn taint_due(&self) {
        let zone_names = self.zones.lock().unwrap().names();
        for zone in zone_names {
            loop {
                let next = self.zones.lock().unwrap().queue(&zone, &self.settings, Instant::now()).next(Instant::now());
                let Some(name) = next else { break };
                let Some(node) = self.informers.nodes.get("", &name) else { continue };
                let (wanted, opposite) = match health::ready_status(&node) {
                    Some("False") => (taint(NOT_READY, "NoExecute"), taint(UNREACHABLE, "NoExecute")),
                    Some("Unknown") => (taint(UNREACHABLE, "NoExecute"), taint(NOT_READY, "NoExecute")),
                    // Ready again while it waited: nothing to do.
                    Some(_) => continue,
                    None => {
                        self.retry_taint(&zone, &name, Duration::from_millis(50));
                        continue;
                    }
                };
                match taints::swap(&self.nodes, &node, &[wanted.clone()], &[opposite]).await {
                    Ok(_) => tracing::info!(node = name, taint = wanted.key, "node tainted NoExecute"),
                    Err(e) => {
                        tracing::warn!(node = name, error = %e, "could not taint the node; retrying");
                        self.retry_taint(&zone, &name, Duration::ZERO);
                    }
                }
            }
        }
    }

    fn retry_taint(&self, zone: &str, node: &str, wait: Duration) {
        let now = Instant::now();
        self.zones.lock().unwrap().queue(zone, &self.settings, now).retry(node, now, wait + Duration::from_nanos(1));
    }

    /// Sets the Ready condition of the node's pods to False: whatever their containers do,
    /// nobody can reach them.
    async fn mark_pods_not_ready(&self, node: &str) -> kube::Result<()> {
        let mut failed = None;
        for pod in self.pods.on(node) {
            let mut conditions = status::conditions(pod.as_ref());
            let Some(ready) = conditions.iter_mut().find(|c| c["type"] == "Ready") else { continue };
            if ready["status"] == "False" {
                continue;
            }
            ready["status"] = json!("False");
            ready["lastTransitionTime"] = json!(status::now());
            let api: Api<Pod> =
                Api::namespaced(self.client.clone(), pod.metadata.namespace.as_deref().unwrap_or_default());
            match status::write(&api, pod.as_ref(), json!({"conditions": conditions})).await {
                Ok(()) => {
                    events::record(
                        &self.client,
                        COMPONENT,
                        pod.as_ref(),
                        "Warning",
                        "NodeNotReady",
                        "Node is not ready",
                    )
                    .await
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => failed = Some(e),
            }
        }
        failed.map_or(Ok(()), Err)
    }
}
