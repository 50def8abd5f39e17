//! The garbage collector: objects whose owners are all gone are deleted; an owner deleted
//! with propagationPolicy Orphan (the `orphan` finalizer) first has its dependents'
//! references to it removed, and one deleted with Foreground (the `foregroundDeletion`
//! finalizer) stays until its dependents that block owner deletion are gone. It watches
//! every kind the API serves (events aside, as Kubernetes does), and before deleting
//! anything for a missing owner it asks the API whether that owner is really gone. A
//! namespaced owner counts only in its dependent's namespace, and a cluster-scoped
//! dependent can only have cluster-scoped owners; other references are treated as absent.

mod graph;

use futures::StreamExt;
use graph::{FOREGROUND, Graph, ORPHAN, Object};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::core::PartialObjectMeta;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope, verbs};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Kinds that are never owners or dependents worth tracking.
const IGNORED: [(&str, &str); 2] = [("", "events"), ("events.k8s.io", "events")];

/// How many objects are handled at once.
const CONCURRENCY: usize = 16;

struct Collector {
    client: kube::Client,
    graph: Mutex<Graph>,
    /// Resources by (apiVersion, kind), to look owners up.
    kinds: HashMap<(String, String), (Arc<ApiResource>, bool)>,
    queue: mpsc::UnboundedSender<String>,
    queued: Mutex<HashSet<String>>,
}

pub async fn run(client: kube::Client) -> anyhow::Result<()> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut resources: Vec<(Arc<ApiResource>, ApiCapabilities)> = Vec::new();
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            let usable = [verbs::LIST, verbs::WATCH, verbs::DELETE].iter().all(|v| caps.supports_operation(v));
            if usable && !IGNORED.contains(&(resource.group.as_str(), resource.plural.as_str())) {
                resources.push((Arc::new(resource), caps));
            }
        }
    }
    let kinds = resources
        .iter()
        .map(|(r, caps)| ((r.api_version.clone(), r.kind.clone()), (r.clone(), caps.scope == Scope::Namespaced)))
        .collect();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let collector = Arc::new(Collector { client, graph: Mutex::default(), kinds, queue: tx, queued: Mutex::default() });

    let mut tasks = JoinSet::new();
    let (synced_tx, mut synced_rx) = mpsc::unbounded_channel::<()>();
    for (resource, _) in &resources {
        tasks.spawn(collector.clone().follow(resource.clone(), synced_tx.clone()));
    }
    // Orphaning and foreground deletion act on an owner's dependents, so they wait until
    // every kind has been listed once.
    for _ in 0..resources.len() {
        synced_rx.recv().await;
    }
    tracing::debug!(kinds = resources.len(), "the garbage collector has listed every kind");
    let work = async {
        let uids = futures::stream::poll_fn(|cx| rx.poll_recv(cx));
        uids.for_each_concurrent(CONCURRENCY, |uid| {
            let collector = collector.clone();
            async move {
                collector.queued.lock().unwrap().remove(&uid);
                if let Err(e) = collector.attempt(&uid).await {
                    tracing::debug!(uid, error = %e, "garbage collection failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    collector.enqueue([uid]);
                }
            }
        })
        .await
    };
    tokio::select! {
        () = work => {}
        _ = tasks.join_next() => {}
    }
    anyhow::bail!("the garbage collector stopped")
}

fn object_of(resource: &Arc<ApiResource>, o: &PartialObjectMeta<DynamicObject>) -> Option<Object> {
    let meta = &o.metadata;
    Some(Object {
        resource: resource.clone(),
        namespace: meta.namespace.clone(),
        name: meta.name.clone()?,
        uid: meta.uid.clone()?,
        resource_version: meta.resource_version.clone().unwrap_or_default(),
        owners: meta.owner_references.clone().unwrap_or_default(),
        deleting: meta.deletion_timestamp.is_some(),
        finalizers: meta.finalizers.clone().unwrap_or_default(),
    })
}

impl Collector {
    fn enqueue(&self, uids: impl IntoIterator<Item = String>) {
        let mut queued = self.queued.lock().unwrap();
        for uid in uids {
            if queued.insert(uid.clone()) {
                let _ = self.queue.send(uid);
            }
        }
    }

    /// Keeps the graph current with one kind.
    async fn follow(self: Arc<Self>, resource: Arc<ApiResource>, synced: mpsc::UnboundedSender<()>) {
        // Metadata is all the graph needs, as Kubernetes' collector watches it.
        let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(self.client.clone(), resource.as_ref());
        let mut events = watcher::watcher(api, watcher::Config::default()).default_backoff().boxed();
        let mut relisted: HashSet<String> = HashSet::new();
        let mut first = true;
        while let Some(event) = events.next().await {
            let Ok(event) = event else { continue };
            let listed = matches!(event, Event::InitDone);
            let todo = {
                let mut graph = self.graph.lock().unwrap();
                match event {
                    Event::Apply(o) => object_of(&resource, &o).map(|o| graph.upsert(o)).unwrap_or_default(),
                    Event::Delete(o) => o.metadata.uid.as_deref().map(|uid| graph.remove(uid)).unwrap_or_default(),
                    Event::Init => {
                        relisted.clear();
                        Vec::new()
                    }
                    Event::InitApply(o) => match object_of(&resource, &o) {
                        Some(o) => {
                            relisted.insert(o.uid.clone());
                            graph.upsert(o)
                        }
                        None => Vec::new(),
                    },
                    Event::InitDone => {
                        // Whatever went while the watch was down is gone.
                        let gone: Vec<String> =
                            graph.uids_of(&resource).into_iter().filter(|u| !relisted.contains(u)).collect();
                        gone.iter().flat_map(|uid| graph.remove(uid)).collect()
                    }
                }
            };
            self.enqueue(todo);
            if listed && first {
                first = false;
                let _ = synced.send(());
            }
        }
    }

    fn api(&self, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        }
    }

    /// Decides the fate of one object: carries out its own orphan or foreground deletion,
    /// or deletes it if all its owners are gone, or drops references to owners that are.
    async fn attempt(&self, uid: &str) -> anyhow::Result<()> {
        let Some(object) = self.graph.lock().unwrap().get(uid).cloned() else {
            return Ok(());
        };
        if object.deleting {
            if object.has_finalizer(ORPHAN) {
                return self.orphan_dependents(&object).await;
            }
            if object.has_finalizer(FOREGROUND) {
                return self.delete_dependents(&object).await;
            }
            return Ok(());
        }
        if object.owners.is_empty() {
            return Ok(());
        }
        let (mut solid, mut gone, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
        for owner in &object.owners {
            match self.owner_state(&object, owner).await? {
                OwnerState::Present => solid.push(owner.uid.clone()),
                OwnerState::DeletingDependents => waiting.push(owner.uid.clone()),
                OwnerState::Absent => gone.push(owner.uid.clone()),
            }
        }
        if !solid.is_empty() {
            if gone.is_empty() && waiting.is_empty() {
                return Ok(());
            }
            // Still owned: only the references to owners that are gone (or going) are dropped.
            let keep: Vec<&OwnerReference> = object.owners.iter().filter(|o| solid.contains(&o.uid)).collect();
            let patch = json!({"metadata": {"ownerReferences": keep, "resourceVersion": object.resource_version}});
            let api = self.api(&object.resource, object.namespace.as_deref());
            return ignore_gone(
                api.patch(&object.name, &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| ()),
            );
        }
        let has_dependents = !self.graph.lock().unwrap().dependents(uid).is_empty();
        let policy = if object.has_finalizer(ORPHAN) {
            PropagationPolicy::Orphan
        } else if object.has_finalizer(FOREGROUND) || (!waiting.is_empty() && has_dependents) {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        self.delete(&object, policy).await
    }

    async fn delete(&self, object: &Object, policy: PropagationPolicy) -> anyhow::Result<()> {
        let params = DeleteParams {
            // As last seen: an object that changed since (perhaps got a new owner) is looked
            // at again rather than deleted.
            preconditions: Some(Preconditions {
                uid: Some(object.uid.clone()),
                resource_version: Some(object.resource_version.clone()),
            }),
            propagation_policy: Some(policy),
            ..Default::default()
        };
        let api = self.api(&object.resource, object.namespace.as_deref());
        ignore_gone(api.delete(&object.name, &params).await.map(|_| ()))
    }

    /// Whether an owner exists: from the graph, or, when the graph does not know it, from
    /// the API, so that a lagging watch never gets a live owner's dependents deleted.
    async fn owner_state(&self, object: &Object, owner: &OwnerReference) -> anyhow::Result<OwnerState> {
        let Some((resource, namespaced)) = self.kinds.get(&(owner.api_version.clone(), owner.kind.clone())).cloned()
        else {
            // A kind not served (yet): leave the dependent alone rather than guess.
            return Ok(OwnerState::Present);
        };
        let namespace = match (namespaced, &object.namespace) {
            (false, _) => None,
            (true, Some(ns)) => Some(ns.clone()),
            // A cluster-scoped object cannot be owned by a namespaced one.
            (true, None) => return Ok(OwnerState::Absent),
        };
        if let Some(known) = self.graph.lock().unwrap().get(&owner.uid)
            && known.namespace == namespace
        {
            return Ok(if known.deleting_dependents() { OwnerState::DeletingDependents } else { OwnerState::Present });
        }
        match self.api(&resource, namespace.as_deref()).get_opt(&owner.name).await? {
            Some(live) if live.metadata.uid.as_deref() == Some(owner.uid.as_str()) => {
                let deleting = live.metadata.deletion_timestamp.is_some()
                    && live.metadata.finalizers.iter().flatten().any(|f| f == FOREGROUND);
                Ok(if deleting { OwnerState::DeletingDependents } else { OwnerState::Present })
            }
            _ => Ok(OwnerState::Absent),
        }
    }

    /// Propagation Orphan: the dependents lose their reference to the owner, then the
    /// owner loses its `orphan` finalizer.
    async fn orphan_dependents(&self, owner: &Object) -> anyhow::Result<()> {
        let dependents = self.graph.lock().unwrap().dependents(&owner.uid);
        for dependent in dependents {
            let keep: Vec<&OwnerReference> = dependent.owners.iter().filter(|o| o.uid != owner.uid).collect();
            let patch = json!({"metadata": {"ownerReferences": keep, "resourceVersion": dependent.resource_version}});
            let api = self.api(&dependent.resource, dependent.namespace.as_deref());
            ignore_gone(api.patch(&dependent.name, &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| ()))?;
        }
        self.remove_finalizer(owner, ORPHAN).await
    }

    /// Propagation Foreground: the dependents are deleted; once none that blocks owner
    /// deletion is left, the owner loses its `foregroundDeletion` finalizer and goes.
    async fn delete_dependents(&self, owner: &Object) -> anyhow::Result<()> {
        let dependents = self.graph.lock().unwrap().dependents(&owner.uid);
        let blocking: Vec<&Object> = dependents
            .iter()
            .filter(|d| d.owners.iter().any(|o| o.uid == owner.uid && o.block_owner_deletion == Some(true)))
            .collect();
        if blocking.is_empty() {
            return self.remove_finalizer(owner, FOREGROUND).await;
        }
        self.enqueue(dependents.iter().filter(|d| !d.deleting).map(|d| d.uid.clone()));
        Ok(())
    }

    async fn remove_finalizer(&self, object: &Object, finalizer: &str) -> anyhow::Result<()> {
        let rest: Vec<&String> = object.finalizers.iter().filter(|f| *f != finalizer).collect();
        let patch = json!({"metadata": {"finalizers": rest, "resourceVersion": object.resource_version}});
        let api = self.api(&object.resource, object.namespace.as_deref());
        ignore_gone(api.patch(&object.name, &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| ()))
    }
}

enum OwnerState {
    Present,
    DeletingDependents,
    Absent,
}

/// An object already gone needs nothing more; a conflict is retried with a fresh view.
fn ignore_gone(result: kube::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        other => Ok(other?),
    }
}
