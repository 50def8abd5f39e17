//! The ResourceQuota controller: each quota's `status.hard` is its `spec.hard`, and its
//! `status.used` is recounted from what exists in its namespace (through the API, so that
//! the count is current), with the same evaluation the API server's quota admission charges
//! new objects by. A quota is recounted when its limits change, when something it counts
//! goes away (a deletion, a pod that finished), and every few minutes, which also corrects
//! charges for creates that admission allowed but that failed to be stored.

use crate::{Error, Informers, drive, status};
use futures::{Stream, StreamExt, stream};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota, Secret, Service,
};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use quota::quantity::Amount;
use quota::resource_list::{self, ResourceList};
use quota::{scopes, usage};
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

/// How often every quota is recounted (kube-controller-manager's
/// `--resource-quota-sync-period`).
const RESYNC: Duration = Duration::from_secs(300);

pub async fn run(client: kube::Client, informers: Arc<Informers>) {
    let quotas = informers.resource_quotas.clone();
    // Changes to status.used are this controller's and admission's own: only a quota whose
    // status does not yet reflect its spec is recounted for a change to it.
    let changed =
        quotas.subscribe().filter_map(|c| std::future::ready((!c.deleted && !in_sync(&c.object)).then_some(c.object)));
    let released = released_in(&client, &informers).flat_map({
        let store = quotas.store();
        move |namespace| stream::iter(quotas_in(&store, &namespace))
    });
    let ready = quotas.clone();
    let resync = stream::once(async move { ready.ready().await }).chain(stream::unfold((), |()| async {
        tokio::time::sleep(RESYNC).await;
        Some(((), ()))
    }));
    let controller =
        Controller::for_shared_stream(changed, quotas.store()).reconcile_on(released).reconcile_all_on(resync);
    drive("resourcequota-controller", controller, reconcile, Arc::new(client)).await;
}

/// Whether the quota's status already shows its limits, with a usage for each.
fn in_sync(quota: &ResourceQuota) -> bool {
    let hard = quota.spec.as_ref().and_then(|s| s.hard.clone()).unwrap_or_default();
    let status = quota.status.clone().unwrap_or_default();
    let used = status.used.unwrap_or_default();
    status.hard.unwrap_or_default() == hard && hard.keys().all(|k| used.contains_key(k))
}

fn quotas_in(store: &Store<ResourceQuota>, namespace: &str) -> Vec<ObjectRef<ResourceQuota>> {
    let quotas = store.state().into_iter().filter(|q| q.namespace().as_deref() == Some(namespace));
    quotas.map(|q| ObjectRef::from_obj(&*q)).collect()
}

/// The namespaces of the objects of one kind as they are deleted.
fn deletions<K>(client: &kube::Client) -> impl Stream<Item = String> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    watch_all(Api::<K>::all(client.clone())).filter_map(|event| {
        std::future::ready(match event {
            Ok(Event::Delete(object)) => object.namespace(),
            _ => None,
        })
    })
}

fn watch_all<K>(api: Api<K>) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    watcher::watcher(api, watcher::Config::default()).default_backoff()
}

/// Namespaces where something a quota counts went away: a deleted object of a kind quotas
/// count, or a pod that finished (it no longer charges its compute resources).
fn released_in(client: &kube::Client, informers: &Informers) -> impl Stream<Item = String> + Send + 'static {
    let pods = informers.pods.subscribe().filter_map(|c| {
        let done = c.deleted || crate::pods::is_terminal(&c.object) || c.object.metadata.deletion_timestamp.is_some();
        std::future::ready(done.then(|| c.object.namespace()).flatten())
    });
    stream::select_all([
        pods.boxed(),
        deletions::<Service>(client).boxed(),
        deletions::<ConfigMap>(client).boxed(),
        deletions::<Secret>(client).boxed(),
        deletions::<PersistentVolumeClaim>(client).boxed(),
        deletions::<ReplicationController>(client).boxed(),
        deletions::<ResourceQuota>(client).boxed(),
    ])
}

/// The API resource of (group, plural): core kinds are v1; other groups are asked for their
/// preferred version.
async fn api_resource(client: &kube::Client, group: &str, plural: &str) -> Result<Option<ApiResource>, Error> {
    if group.is_empty() {
        return Ok(Some(ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: String::new(),
            plural: plural.into(),
        }));
    }
    let group = match kube::discovery::group(client, group).await {
        Ok(group) => group,
        // A group the cluster does not serve has nothing to count.
        Err(kube::Error::Discovery(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(group.recommended_resources().into_iter().map(|(ar, _)| ar).find(|ar| ar.plural == plural))
}

/// What the objects of one kind in the namespace charge to this quota.
async fn usage_of_kind(
    client: &kube::Client,
    quota: &ResourceQuota,
    namespace: &str,
    group: &str,
    plural: &str,
) -> Result<ResourceList, Error> {
    let spec = quota.spec.clone().unwrap_or_default();
    let mut total = ResourceList::new();
    let now = chrono::Utc::now();
    let list = ListParams::default();
    if (group, plural) == ("", "pods") {
        for pod in Api::<Pod>::namespaced(client.clone(), namespace).list(&list).await? {
            if scopes::counts_pod(&spec, &pod) {
                resource_list::add(&mut total, &usage::pod_usage(&pod, now));
            }
        }
        return Ok(total);
    }
    // Scoped quotas count pods only.
    if scopes::is_scoped(&spec) {
        return Ok(total);
    }
    match (group, plural) {
        ("", "services") => {
            for service in Api::<Service>::namespaced(client.clone(), namespace).list(&list).await? {
                resource_list::add(&mut total, &usage::service_usage(&service));
            }
        }
        ("", "persistentvolumeclaims") => {
            for claim in Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace).list(&list).await? {
                resource_list::add(&mut total, &usage::claim_usage(&claim));
            }
        }
        _ => {
            let Some(resource) = api_resource(client, group, plural).await? else { return Ok(total) };
            let objects =
                Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource).list(&list).await?;
            for _ in objects {
                resource_list::add(&mut total, &usage::object_count(group, plural));
            }
        }
    }
    Ok(total)
}

async fn reconcile(quota: Arc<ResourceQuota>, client: Arc<kube::Client>) -> Result<Action, Error> {
    if quota.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = quota.namespace().unwrap_or_default();
    let hard = quota.spec.as_ref().and_then(|s| s.hard.as_ref()).map(resource_list::from_api).unwrap_or_default();
    let kinds: BTreeSet<(String, String)> = hard.keys().filter_map(|r| usage::counted_kind(r)).collect();
    let mut used = ResourceList::new();
    for (group, plural) in &kinds {
        resource_list::add(&mut used, &usage_of_kind(&client, &quota, &namespace, group, plural).await?);
    }
    let mut used = resource_list::mask(&used, &hard);
    for name in hard.keys() {
        used.entry(name.clone()).or_insert_with(Amount::default);
    }
    let desired = serde_json::json!({"hard": resource_list::to_api(&hard), "used": resource_list::to_api(&used)});
    status::write(&Api::<ResourceQuota>::namespaced((*client).clone(), &namespace), &quota, desired).await?;
    Ok(Action::await_change())
}
