//! The controller manager: each controller is a level-triggered reconcile on
//! `kube::runtime`, an API client like any other, reading from informers (one watch per
//! kind, shared by the controllers that read it). All run while this process holds the
//! controller manager's Lease; they converge from whatever the API says when they start.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> anyhow::Result<()> {
//! let settings = controllers::Settings {
//!     root_ca: std::fs::read_to_string("ca.crt")?,
//!     node_lifecycle: controllers::node_lifecycle::Settings::default(),
//!     terminated_pod_gc_threshold: 12500,
//!     cluster_cidr: "10.42.0.0/16".parse().unwrap(),
//! };
//! controllers::run(client, std::sync::Arc::new(settings)).await
//! # }
//! ```

pub mod controller_revision;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoint_slice;
pub mod endpoint_slice_mirroring;
pub mod endpoints;
pub mod expectations;
pub mod garbage_collector;
pub mod informer;
pub mod int_or_percent;
pub mod job;
pub mod namespace;
pub mod node_ipam;
pub mod node_lifecycle;
pub mod owner;
pub mod persistent_volume_binder;
pub mod pod_control;
pub mod pod_gc;
pub mod pod_ranking;
pub mod pods;
pub mod pods_by_node;
pub mod replicaset;
pub mod resource_quota;
pub mod service_accounts;
pub mod service_pods;
pub mod statefulset;
mod status;
pub mod taint_eviction;
pub mod trigger_time;
pub mod ttl_after_finished;

use futures::StreamExt;
use informer::{Change, Informer};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    Endpoints, Node, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota, Service,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Resource;
use kube::api::Api;
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::watcher;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Why a reconcile stopped; it is retried.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct Error(anyhow::Error);

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Error {
        Error(e.into())
    }
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Error {
        Error(e)
    }
}

/// How many objects of one kind are reconciled at once.
const CONCURRENCY: u16 = 32;

/// The informers the controllers share.
pub struct Informers {
    pub pods: Arc<Informer<Pod>>,
    pub replicasets: Arc<Informer<ReplicaSet>>,
    pub replication_controllers: Arc<Informer<ReplicationController>>,
    pub deployments: Arc<Informer<Deployment>>,
    pub jobs: Arc<Informer<Job>>,
    pub cronjobs: Arc<Informer<CronJob>>,
    pub statefulsets: Arc<Informer<StatefulSet>>,
    pub daemonsets: Arc<Informer<DaemonSet>>,
    pub controller_revisions: Arc<Informer<ControllerRevision>>,
    pub nodes: Arc<Informer<Node>>,
    pub services: Arc<Informer<Service>>,
    pub endpoints: Arc<Informer<Endpoints>>,
    pub endpoint_slices: Arc<Informer<EndpointSlice>>,
    pub persistent_volume_claims: Arc<Informer<PersistentVolumeClaim>>,
    pub resource_quotas: Arc<Informer<ResourceQuota>>,
    /// The nodes' Leases (in kube-node-lease).
    pub leases: Arc<Informer<Lease>>,
    pub pod_disruption_budgets: Arc<Informer<PodDisruptionBudget>>,
}

fn start<K>(client: &kube::Client, tasks: &mut JoinSet<()>) -> Arc<Informer<K>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    Informer::start(Api::all(client.clone()), watcher::Config::default(), tasks)
}

/// What the controllers need to know about the cluster beyond its API.
pub struct Settings {
    /// The cluster CA certificate (PEM), published in every namespace as kube-root-ca.crt.
    pub root_ca: String,
    pub node_lifecycle: node_lifecycle::Settings,
    /// Finished pods kept before PodGC deletes the oldest (0 keeps them all).
    pub terminated_pod_gc_threshold: usize,
    /// The range node podCIDRs are allocated from.
    pub cluster_cidr: node_ipam::Range,
}

/// Runs every controller until one stops (which is an error).
pub async fn run(client: kube::Client, settings: Arc<Settings>) -> anyhow::Result<()> {
    let mut tasks = JoinSet::new();
    let informers = Arc::new(Informers {
        pods: start(&client, &mut tasks),
        replicasets: start(&client, &mut tasks),
        replication_controllers: start(&client, &mut tasks),
        deployments: start(&client, &mut tasks),
        jobs: start(&client, &mut tasks),
        cronjobs: start(&client, &mut tasks),
        statefulsets: start(&client, &mut tasks),
        daemonsets: start(&client, &mut tasks),
        controller_revisions: start(&client, &mut tasks),
        nodes: start(&client, &mut tasks),
        services: start(&client, &mut tasks),
        endpoints: start(&client, &mut tasks),
        endpoint_slices: start(&client, &mut tasks),
        persistent_volume_claims: start(&client, &mut tasks),
        resource_quotas: start(&client, &mut tasks),
        leases: Informer::start(
            Api::namespaced(client.clone(), node_lifecycle::LEASE_NAMESPACE),
            watcher::Config::default(),
            &mut tasks,
        ),
        pod_disruption_budgets: start(&client, &mut tasks),
    });
    let pods_by_node = pods_by_node::PodsByNode::start(informers.pods.clone(), &mut tasks);
    tasks.spawn(replicaset::run(client.clone(), informers.clone(), informers.replicasets.clone()));
    tasks.spawn(replicaset::run(client.clone(), informers.clone(), informers.replication_controllers.clone()));
    tasks.spawn(deployment::run(client.clone(), informers.clone()));
    tasks.spawn(daemonset::run(client.clone(), informers.clone()));
    tasks.spawn(job::run(client.clone(), informers.clone()));
    tasks.spawn(statefulset::run(client.clone(), informers.clone()));
    tasks.spawn(cronjob::run(client.clone(), informers.clone()));
    tasks.spawn(ttl_after_finished::run(client.clone(), informers.clone()));
    tasks.spawn(resource_quota::run(client.clone(), informers.clone()));
    tasks.spawn(disruption::run(client.clone(), informers.clone()));
    tasks.spawn(disruption::stale_condition::run(client.clone(), informers.clone()));
    tasks.spawn(endpoints::run(client.clone(), informers.clone()));
    tasks.spawn(endpoint_slice::run(client.clone(), informers.clone()));
    tasks.spawn(endpoint_slice_mirroring::run(client.clone(), informers.clone()));
    tasks.spawn(namespace::run(client.clone()));
    tasks.spawn(persistent_volume_binder::run(client.clone()));
    tasks.spawn(node_lifecycle::run(
        client.clone(),
        informers.clone(),
        pods_by_node.clone(),
        settings.node_lifecycle.clone(),
    ));
    tasks.spawn(node_ipam::run(client.clone(), informers.clone(), settings.cluster_cidr));
    tasks.spawn(taint_eviction::run(client.clone(), informers.clone(), pods_by_node));
    tasks.spawn(pod_gc::run(client.clone(), informers.clone(), settings.terminated_pod_gc_threshold));
    tasks.spawn(service_accounts::run(client.clone(), settings.root_ca.clone()));
    let collector = client.clone();
    tasks.spawn(async move {
        if let Err(e) = garbage_collector::run(collector).await {
            tracing::error!(error = %e, "the garbage collector stopped");
        }
    });
    tasks.join_next().await;
    anyhow::bail!("a controller stopped")
}

/// The objects of an informer as a controller's trigger: every change but deletions.
fn triggers<K: Send + Sync + 'static>(
    changes: impl futures::Stream<Item = Change<K>> + Send + 'static,
) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
    changes.filter_map(|c| std::future::ready((!c.deleted).then_some(c.object)))
}

/// Runs a controller's reconciles until its triggers end; a failed reconcile is retried
/// after a short wait (conflicts, the usual failure, resolve at once on a fresh read).
async fn drive<K, Ctx, Fut>(
    name: &'static str,
    controller: Controller<K>,
    reconcile: fn(Arc<K>, Arc<Ctx>) -> Fut,
    ctx: Arc<Ctx>,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    Ctx: Send + Sync + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let retry = move |object: Arc<K>, error: &Error, _: Arc<Ctx>| {
        let conflict = matches!(error.0.downcast_ref::<kube::Error>(), Some(kube::Error::Api(e)) if e.code == 409);
        if !conflict {
            tracing::warn!(controller = name, object = object.meta().name.as_deref().unwrap_or(""), error = %error, "reconcile failed; retrying");
        }
        Action::requeue(if conflict { Duration::from_millis(100) } else { Duration::from_secs(2) })
    };
    controller
        .with_config(Config::default().concurrency(CONCURRENCY))
        .run(reconcile, retry, ctx)
        .for_each(|_| std::future::ready(()))
        .await;
}
