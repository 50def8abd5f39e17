//! What every namespace holds from the start, as kube-controller-manager's serviceaccounts
//! and root-ca-cert-publisher controllers keep it: a `default` ServiceAccount, and a
//! `kube-root-ca.crt` ConfigMap with the cluster's CA certificate, put back when deleted
//! and corrected when changed.

use crate::{Error, drive};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use serde_json::json;
use std::sync::Arc;

const ACCOUNT: &str = "default";
const ROOT_CA: &str = "kube-root-ca.crt";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

struct Context {
    client: kube::Client,
    ca_pem: String,
}

pub async fn run(client: kube::Client, ca_pem: String) {
    let controller = Controller::new(Api::<Namespace>::all(client.clone()), watcher::Config::default())
        .watches(
            Api::<ServiceAccount>::all(client.clone()),
            watcher::Config::default().fields(&format!("metadata.name={ACCOUNT}")),
            |sa: ServiceAccount| sa.namespace().map(|ns| ObjectRef::<Namespace>::new(&ns)),
        )
        .watches(
            Api::<ConfigMap>::all(client.clone()),
            watcher::Config::default().fields(&format!("metadata.name={ROOT_CA}")),
            |cm: ConfigMap| cm.namespace().map(|ns| ObjectRef::<Namespace>::new(&ns)),
        );
    drive("serviceaccount-controller", controller, reconcile, Arc::new(Context { client, ca_pem })).await;
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    if ns.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &name);
    if accounts.get_opt(ACCOUNT).await?.is_none() {
        let account = ServiceAccount {
            metadata: kube::api::ObjectMeta { name: Some(ACCOUNT.into()), ..Default::default() },
            ..Default::default()
        };
        created(accounts.create(&PostParams::default(), &account).await)?;
    }
    let maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &name);
    let data = json!({"ca.crt": ctx.ca_pem});
    match maps.get_opt(ROOT_CA).await? {
        None => {
            let map: ConfigMap = serde_json::from_value(json!({
                "metadata": {"name": ROOT_CA, "annotations": {"kubernetes.io/description": DESCRIPTION}},
                "data": data,
            }))
            .map_err(anyhow::Error::from)?;
            created(maps.create(&PostParams::default(), &map).await)?;
        }
        Some(map) if map.data.as_ref().and_then(|d| d.get("ca.crt")) != Some(&ctx.ca_pem) => {
            let patch = json!({"metadata": {"resourceVersion": map.resource_version()}, "data": data});
            maps.patch(ROOT_CA, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
        Some(_) => {}
    }
    Ok(Action::await_change())
}

/// Created, or there already (another pass was first), or the namespace is going.
fn created<K>(result: kube::Result<K>) -> kube::Result<()> {
    match result {
        Err(kube::Error::Api(e)) if e.code == 409 || e.code == 403 => Ok(()),
        other => other.map(|_| ()),
    }
}
