//! Namespace lifecycle: a namespace being deleted is emptied of every kind of object the API
//! serves in namespaces, its status conditions saying what is left and why, and once nothing
//! is left its `kubernetes` finalizer is removed (the `finalize` subresource), which lets the
//! API server remove it, as kube-controller-manager's namespace controller does.

use crate::status::{conditions_value, set_condition};
use crate::{Error, drive};
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{Discovery, Scope, verbs};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const FINALIZER: &str = "kubernetes";

pub async fn run(client: kube::Client) {
    let controller = Controller::new(Api::<Namespace>::all(client.clone()), watcher::Config::default());
    drive("namespace-controller", controller, reconcile, Arc::new(client)).await;
}

/// What is left in a namespace: objects per resource, and objects per finalizer.
#[derive(Default)]
struct Remaining {
    resources: BTreeMap<String, usize>,
    finalizers: BTreeMap<String, usize>,
}

async fn reconcile(ns: Arc<Namespace>, client: Arc<kube::Client>) -> Result<Action, Error> {
    let finalizers = ns.spec.as_ref().and_then(|s| s.finalizers.clone()).unwrap_or_default();
    if ns.metadata.deletion_timestamp.is_none() || !finalizers.iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    let (remaining, failures) = empty(&client, &name).await?;
    let mut conditions = crate::status::conditions(ns.as_ref());
    set_condition(
        &mut conditions,
        "NamespaceDeletionDiscoveryFailure",
        "False",
        "ResourcesDiscovered",
        "All resources successfully discovered",
        false,
    );
    set_condition(
        &mut conditions,
        "NamespaceDeletionGroupVersionParsingFailure",
        "False",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
        false,
    );
    if failures.is_empty() {
        set_condition(
            &mut conditions,
            "NamespaceDeletionContentFailure",
            "False",
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization",
            false,
        );
    } else {
        set_condition(
            &mut conditions,
            "NamespaceDeletionContentFailure",
            "True",
            "ContentDeletionFailed",
            &format!("Failed to delete all resource types, {} remaining: {}", failures.len(), failures.join(", ")),
            false,
        );
    }
    if remaining.resources.is_empty() {
        set_condition(
            &mut conditions,
            "NamespaceContentRemaining",
            "False",
            "ContentRemoved",
            "All content successfully removed",
            false,
        );
    } else {
        let what: Vec<String> =
            remaining.resources.iter().map(|(r, n)| format!("{r} has {n} resource instances")).collect();
        set_condition(
            &mut conditions,
            "NamespaceContentRemaining",
            "True",
            "SomeResourcesRemain",
            &format!("Some resources are remaining: {}", what.join(", ")),
            false,
        );
    }
    if remaining.finalizers.is_empty() {
        set_condition(
            &mut conditions,
            "NamespaceFinalizersRemaining",
            "False",
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished",
            false,
        );
    } else {
        let what: Vec<String> =
            remaining.finalizers.iter().map(|(f, n)| format!("{f} in {n} resource instances")).collect();
        set_condition(
            &mut conditions,
            "NamespaceFinalizersRemaining",
            "True",
            "SomeFinalizersRemain",
            &format!("Some content in the namespace has finalizers remaining: {}", what.join(", ")),
            false,
        );
    }
    let api: Api<Namespace> = Api::all((*client).clone());
    crate::status::write(
        &api,
        ns.as_ref(),
        serde_json::json!({"phase": "Terminating", "conditions": conditions_value(conditions)}),
    )
    .await?;
    if !remaining.resources.is_empty() || !failures.is_empty() {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    // Empty: the namespace's own finalizer goes, and with it the namespace.
    let mut done = (*ns).clone();
    done.spec.get_or_insert_default().finalizers = Some(finalizers.into_iter().filter(|f| f != FINALIZER).collect());
    match api.replace_subresource("finalize", &name, &PostParams::default(), &done).await {
        Ok(_) => Ok(Action::await_change()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes everything in the namespace, kind by kind; returns what is still there (being
/// finalized or gracefully deleted) and the resources that could not be deleted.
async fn empty(client: &kube::Client, namespace: &str) -> Result<(Remaining, Vec<String>), Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut remaining = Remaining::default();
    let mut failures = Vec::new();
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            let usable = [verbs::LIST, verbs::DELETE].iter().all(|v| caps.supports_operation(v));
            if caps.scope != Scope::Namespaced || !usable {
                continue;
            }
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
            let label = if resource.group.is_empty() {
                resource.plural.clone()
            } else {
                format!("{}.{}", resource.plural, resource.group)
            };
            let deleted = if caps.supports_operation(verbs::DELETE_COLLECTION) {
                api.delete_collection(&DeleteParams::background(), &ListParams::default()).await.map(|_| ())
            } else {
                delete_each(&api).await
            };
            if let Err(e) = deleted {
                tracing::debug!(namespace, resource = label, error = %e, "could not empty a namespace of a resource");
                failures.push(label.clone());
            }
            let left = match api.list(&ListParams::default()).await {
                Ok(list) => list.items,
                Err(_) => continue,
            };
            if !left.is_empty() {
                remaining.resources.insert(label, left.len());
            }
            for object in &left {
                for f in object.finalizers() {
                    *remaining.finalizers.entry(f.clone()).or_default() += 1;
                }
            }
        }
    }
    Ok((remaining, failures))
}

async fn delete_each(api: &Api<DynamicObject>) -> kube::Result<()> {
    for object in api.list(&ListParams::default()).await?.items {
        match api.delete(&object.name_any(), &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
