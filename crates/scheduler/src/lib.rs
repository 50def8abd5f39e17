//! The scheduler: an API client that watches nodes, pods and what affects placement, takes
//! the pods whose schedulerName one of its profiles has and that have no node, and binds
//! each to the best node that passes every filter, as kube-scheduler does. A pod that fits
//! nowhere may preempt pods of lower priority; otherwise it gets a FailedScheduling event
//! and a PodScheduled=False condition saying why, node by node, and waits for the cluster
//! to change.
//!
//! Decisions are made on a thread of their own, so that a busy scheduler never holds up
//! the async tasks of the process it runs in (the API server's, in `skiff server`).
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> anyhow::Result<()> {
//! scheduler::Scheduler::new(client, scheduler::config::default_profiles()).run().await
//! # }
//! ```

mod algorithm;
mod cache;
pub mod config;
mod framework;
pub mod plugins;
mod preemption;
mod queue;
mod report;
pub mod resources;
mod selector;
mod terms;
mod topology;

use cache::Cache;
use config::Profile;
use framework::PodInfo;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use queue::Queue;
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const DEFAULT_SCHEDULER: &str = "default-scheduler";

/// Bindings in flight at once: each takes a connection of the (HTTP/1.1) client.
const BINDINGS_IN_FLIGHT: usize = 32;
/// Reports (events, conditions, evictions) in flight at once; the rest wait their turn.
const REPORTS_IN_FLIGHT: usize = 8;
/// How often set-aside pods are checked for having waited too long.
const FLUSH_EVERY: Duration = Duration::from_secs(30);

pub struct Scheduler {
    client: kube::Client,
    profiles: Vec<Profile>,
    state: Mutex<State>,
    wake: Condvar,
    bindings: tokio::sync::Semaphore,
    reports: Arc<tokio::sync::Semaphore>,
    stop: AtomicBool,
}

#[derive(Default)]
struct State {
    cache: Cache,
    queue: Queue,
    /// Pods assumed on a node whose binding is in flight.
    binding: HashSet<String>,
    /// Where the next search for nodes starts, so that sampling visits every node in turn.
    next_start: usize,
    /// Watches that have not yet delivered their initial list: decisions wait for all of
    /// them, so that no pod is placed on a partial view of the cluster.
    unsynced: usize,
    rng: algorithm::Rng,
}

/// What a watch saw change, for deciding which set-aside pods may now fit.
#[derive(Clone, Copy, PartialEq)]
enum Change {
    /// Nothing that could let a pod fit.
    None,
    /// A pod was bound or assigned: pods waiting on affinity or spread may now fit.
    PodAssigned,
    /// Anything else that frees or adds room: every set-aside pod may now fit.
    Any,
}

/// Aborts the watch tasks and stops the decision thread when `run` ends or is dropped.
struct Running<'a>(&'a Scheduler, Vec<tokio::task::JoinHandle<()>>);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::SeqCst);
        self.0.wake.notify_all();
        for task in &self.1 {
            task.abort();
        }
    }
}

impl Scheduler {
    pub fn new(client: kube::Client, profiles: Vec<Profile>) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            client,
            profiles,
            state: Mutex::default(),
            wake: Condvar::new(),
            bindings: tokio::sync::Semaphore::new(BINDINGS_IN_FLIGHT),
            reports: Arc::new(tokio::sync::Semaphore::new(REPORTS_IN_FLIGHT)),
            stop: AtomicBool::new(false),
        })
    }

    /// Watches and schedules until dropped.
    pub async fn run(self: Arc<Self>) -> anyhow::Result<()> {
        let watches = vec![
            self.clone().watch(observe_node).boxed(),
            self.clone().watch(observe_pod).boxed(),
            self.clone().watch(observe_namespace).boxed(),
            self.clone().watch(observe_claim).boxed(),
            self.clone().watch(observe_volume).boxed(),
            self.clone().watch(observe_budget).boxed(),
        ];
        self.state.lock().unwrap().unsynced = watches.len();
        let tasks = watches.into_iter().map(tokio::spawn).collect();
        let running = Running(&self, tasks);
        let (me, handle) = (self.clone(), tokio::runtime::Handle::current());
        let thread = std::thread::Builder::new().name("scheduler".into()).spawn(move || me.decide(handle))?;
        while !thread.is_finished() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        drop(running);
        anyhow::bail!("the scheduling thread stopped")
    }

    async fn watch<K>(self: Arc<Self>, observe: fn(&mut State, K, bool) -> Change)
    where
        K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    {
        let api: Api<K> = Api::all(self.client.clone());
        let mut events = watcher(api, watcher::Config::default()).default_backoff().boxed();
        let mut synced = false;
        while let Some(event) = events.next().await {
            let (object, deleted) = match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => (o, false),
                Ok(watcher::Event::Delete(o)) => (o, true),
                Ok(watcher::Event::InitDone) if !synced => {
                    synced = true;
                    self.state.lock().unwrap().unsynced -= 1;
                    self.wake.notify_one();
                    continue;
                }
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(kind = K::kind(&()).as_ref(), error = %e, "watching for the scheduler");
                    continue;
                }
            };
            let mut state = self.state.lock().unwrap();
            match observe(&mut state, object, deleted) {
                Change::None => {}
                Change::PodAssigned => state.queue.move_unschedulable(Instant::now(), None, true),
                Change::Any => state.queue.move_unschedulable(Instant::now(), None, false),
            }
            drop(state);
            self.wake.notify_one();
        }
    }

    /// The decision loop: takes the next pod, chooses, and hands the binding to the async
    /// runtime; sleeps when nothing is due. The state is locked for one decision at a time,
    /// so that watches and finished bindings get their turn in between.
    fn decide(self: Arc<Self>, runtime: tokio::runtime::Handle) {
        let mut flushed = Instant::now();
        while !self.stop.load(Ordering::SeqCst) {
            let mut state = self.state.lock().unwrap();
            let now = Instant::now();
            if now.duration_since(flushed) > FLUSH_EVERY {
                state.queue.move_unschedulable(now, Some(queue::MAX_UNSCHEDULABLE), false);
                flushed = now;
            }
            let next = if state.unsynced > 0 { None } else { state.queue.pop(now) };
            match next {
                Some(pod) => self.schedule_one(&mut state, pod, &runtime),
                None => {
                    let wait = state.queue.next_backoff_end().map_or(FLUSH_EVERY, |t| t.saturating_duration_since(now));
                    drop(self.wake.wait_timeout(state, wait.clamp(Duration::from_millis(1), FLUSH_EVERY)).unwrap());
                }
            }
        }
    }

    fn profile(&self, pod: &Pod) -> Option<&Profile> {
        let name = pod.spec.as_ref().and_then(|s| s.scheduler_name.as_deref()).unwrap_or(DEFAULT_SCHEDULER);
        self.profiles.iter().find(|p| p.scheduler_name == name)
    }

    /// Chooses a node for one pod and binds it there (in the background); or, if it fits
    /// nowhere, preempts lower-priority pods for it or reports why.
    fn schedule_one(self: &Arc<Self>, state: &mut State, pod: Arc<Pod>, runtime: &tokio::runtime::Handle) {
        let Some(profile) = self.profile(&pod) else { return };
        let mut info = PodInfo::new(pod.clone());
        // A node nominated in an earlier cycle is held no longer: the pod competes afresh.
        state.cache.forget(&info.uid);
        for key in info.topology_keys() {
            state.cache.track(&key);
        }
        let (chosen, next) = algorithm::choose(profile, &state.cache, &mut info, state.next_start, &mut state.rng);
        state.next_start = next;
        // What the plugins kept shares the cache's counts; let go of it before they change.
        info.state = Default::default();
        let now = Instant::now();
        match chosen {
            Ok(node) => {
                let uid = info.uid.clone();
                state.cache.place_facts(info.facts, &node);
                state.binding.insert(uid.clone());
                runtime.spawn(self.clone().bind(profile.scheduler_name.clone(), pod, uid, node));
            }
            Err(diagnosis) => {
                let mut message = report::unschedulable_message(diagnosis.nodes, &diagnosis.reasons());
                match preemption::preempt(profile, &mut state.cache, &mut info, &diagnosis) {
                    Ok(nomination) => {
                        // Counted on the node while its victims leave, so that no pod of
                        // lower priority takes the room.
                        state.cache.place(pod.clone(), &nomination.node);
                        let scheduler = profile.scheduler_name.clone();
                        self.report(
                            runtime,
                            preemption::carry_out(self.client.clone(), scheduler, pod.clone(), nomination),
                        );
                    }
                    Err(why) => message = format!("{message} preemption: {why}"),
                }
                state.queue.set_aside(pod.clone(), now, diagnosis.waits_for_pods());
                let scheduler = profile.scheduler_name.clone();
                self.report(runtime, report::failed_scheduling(self.client.clone(), scheduler, pod, message));
            }
        }
    }

    /// Writes a report in the background, a few at a time.
    fn report(&self, runtime: &tokio::runtime::Handle, write: impl std::future::Future<Output = ()> + Send + 'static) {
        let reports = self.reports.clone();
        runtime.spawn(async move {
            let _permit = reports.acquire().await;
            write.await
        });
    }

    async fn bind(self: Arc<Self>, scheduler: String, pod: Arc<Pod>, uid: String, node: String) {
        let permit = self.bindings.acquire().await;
        let (namespace, name) =
            (pod.metadata.namespace.clone().unwrap_or_default(), pod.metadata.name.clone().unwrap_or_default());
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": namespace, "uid": uid},
                             "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
        let result =
            api.create_subresource::<_, serde_json::Value>("binding", &name, &PostParams::default(), &binding).await;
        drop(permit);
        let mut state = self.state.lock().unwrap();
        state.binding.remove(&uid);
        match result {
            Ok(_) => self.report(
                &tokio::runtime::Handle::current(),
                report::scheduled(self.client.clone(), scheduler, pod, node),
            ),
            // Gone, or bound by someone else: the pod watch settles it.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => state.cache.forget(&uid),
            Err(e) => {
                tracing::warn!(pod = name, node, error = %e, "binding failed; retrying after a backoff");
                state.cache.forget(&uid);
                state.queue.back_off(pod, Instant::now());
            }
        }
        drop(state);
        self.wake.notify_one();
    }
}

fn observe_node(state: &mut State, node: Node, deleted: bool) -> Change {
    if deleted {
        state.cache.remove_node(node.metadata.name.as_deref().unwrap_or(""));
        return Change::None;
    }
    if state.cache.set_node(node) { Change::Any } else { Change::None }
}

/// Bound pods count on their node (finished ones no longer do); pending pods join the
/// queue, unless their binding is in flight.
fn observe_pod(state: &mut State, pod: Pod, deleted: bool) -> Change {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
    let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty());
    if deleted || (node.is_some() && matches!(phase, "Succeeded" | "Failed")) {
        state.cache.forget(&uid);
        state.queue.remove(&uid);
        return Change::Any;
    }
    if let Some(node) = node {
        let node = node.to_string();
        state.queue.remove(&uid);
        let known = state.cache.placed(&uid).is_some_and(|p| p.node == node);
        state.cache.place(Arc::new(pod), &node);
        return if known { Change::None } else { Change::PodAssigned };
    }
    if state.binding.contains(&uid) {
        return Change::None;
    }
    if pod.metadata.deletion_timestamp.is_some() {
        state.cache.forget(&uid);
        state.queue.remove(&uid);
        return Change::None;
    }
    state.queue.add(Arc::new(pod));
    Change::None
}

fn observe_namespace(state: &mut State, namespace: Namespace, deleted: bool) -> Change {
    let name = namespace.metadata.name.unwrap_or_default();
    let labels = namespace.metadata.labels.unwrap_or_default();
    if deleted {
        state.cache.namespaces.remove(&name);
        return Change::None;
    }
    match state.cache.namespaces.insert(name, labels.clone()) {
        Some(old) if old == labels => Change::None,
        _ => Change::PodAssigned,
    }
}

fn observe_claim(state: &mut State, claim: PersistentVolumeClaim, deleted: bool) -> Change {
    let key = (claim.metadata.namespace.clone().unwrap_or_default(), claim.metadata.name.clone().unwrap_or_default());
    if deleted {
        state.cache.claims.remove(&key);
    } else {
        state.cache.claims.insert(key, claim);
    }
    Change::Any
}

fn observe_volume(state: &mut State, volume: PersistentVolume, deleted: bool) -> Change {
    let name = volume.metadata.name.clone().unwrap_or_default();
    if deleted {
        state.cache.volumes.remove(&name);
    } else {
        state.cache.volumes.insert(name, volume);
    }
    Change::Any
}

fn observe_budget(state: &mut State, budget: PodDisruptionBudget, deleted: bool) -> Change {
    let key = (budget.metadata.namespace.clone().unwrap_or_default(), budget.metadata.name.clone().unwrap_or_default());
    if deleted {
        state.cache.budgets.remove(&key);
    } else {
        state.cache.budgets.insert(key, budget);
    }
    Change::None
}
