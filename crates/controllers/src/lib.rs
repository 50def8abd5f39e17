//! The controller manager: each controller is a level-triggered reconcile on
//! `kube::runtime`, an API client like any other, reading from informers (one watch per
//! kind, shared by the controllers that read it). All run while this process holds the
//! controller manager's Lease; they converge from whatever the API says when they start.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> anyhow::Result<()> {
//! let settings = controllers::Settings { root_ca: std::fs::read_to_string("ca.crt")? };
//! controllers::run(client, std::sync::Arc::new(settings)).await
//! # }
//! ```

pub mod deployment;
pub mod expectations;
pub mod garbage_collector;
pub mod informer;
pub mod job;
pub mod namespace;
pub mod owner;
pub mod pod_ranking;
pub mod pods;
pub mod replicaset;
pub mod service_accounts;
mod status;
pub mod ttl_after_finished;

use futures::StreamExt;
use informer::{Change, Informer};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::Api;
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::watcher;
use kube::Resource;
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
}

fn start<K>(client: &kube::Client, tasks: &mut JoinSet<()>) -> Arc<Informer<K>>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    Informer::start(Api::all(client.clone()), watcher::Config::default(), tasks)
}

/// What the controllers need to know about the cluster beyond its API.
pub struct Settings {
    /// The cluster CA certificate (PEM), published in every namespace as kube-root-ca.crt.
    pub root_ca: String,
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
    });
    tasks.spawn(replicaset::run(client.clone(), informers.clone(), informers.replicasets.clone()));
    tasks.spawn(replicaset::run(client.clone(), informers.clone(), informers.replication_controllers.clone()));
    tasks.spawn(deployment::run(client.clone(), informers.clone()));
    tasks.spawn(job::run(client.clone(), informers.clone()));
    tasks.spawn(ttl_after_finished::run(client.clone(), informers.clone()));
    tasks.spawn(namespace::run(client.clone()));
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
fn triggers<K: Clone + Send + 'static>(
    changes: impl futures::Stream<Item = Change<K>> + Send + 'static,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static {
    changes.filter_map(|c| std::future::ready((!c.deleted).then_some(Ok(c.object))))
}

/// Runs a controller's reconciles until its triggers end; a failed reconcile is retried
/// after a short wait (conflicts, the usual failure, resolve at once on a fresh read).
async fn drive<K, Ctx, Fut>(name: &'static str, controller: Controller<K>, reconcile: fn(Arc<K>, Arc<Ctx>) -> Fut, ctx: Arc<Ctx>)
where
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
