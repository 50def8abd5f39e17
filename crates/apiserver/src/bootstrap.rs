//! What every cluster has from its first start: the default, kube-system, kube-public and
//! kube-node-lease namespaces, the `kubernetes` Service in default, at the first address
//! of the service CIDR, and the system-node-critical and system-cluster-critical
//! PriorityClasses.

use crate::api::Api;
use crate::objects;
use registry::object_meta;
use serde_json::{Value, json};

async fn ensure(
    api: &Api,
    group: &str,
    version: &str,
    plural: &str,
    namespace: Option<&str>,
    mut obj: Value,
) -> anyhow::Result<()> {
    let info =
        api.registry.get(group, version, plural).ok_or_else(|| anyhow::anyhow!("{plural} is not in the catalog"))?;
    let name = objects::name_of(&obj).to_string();
    let key = objects::key(info, namespace, &name);
    if api.store.get(&key).await?.is_some() {
        return Ok(());
    }
    object_meta::prepare_create(info, &mut obj, namespace).map_err(|e| anyhow::anyhow!("bootstrap {name}: {e:?}"))?;
    let mut obj = info.behaviour.admit(obj, None).map_err(|e| anyhow::anyhow!("bootstrap {name}: {e:?}"))?;
    if plural == "services" {
        api.services.allocate(&mut obj).map_err(|e| anyhow::anyhow!("bootstrap {name}: {e:?}"))?;
    }
    match api.store.create(&key, objects::encode(info, &obj).map_err(|e| anyhow::anyhow!(e.message))?).await {
        Ok(_) | Err(store::Error::AlreadyExists) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Records the allocations of stored Services, then creates what is missing.
pub async fn run(api: &Api) -> anyhow::Result<()> {
    let services = api.registry.get("", "v1", "services").expect("services are in the catalog");
    let stored =
        api.store.range(store::RangeRequest { prefix: objects::prefix(services, None), ..Default::default() }).await?;
    for kv in &stored.kvs {
        if let Ok(svc) = objects::parse_stored(kv) {
            api.services.record(&svc);
        }
    }
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        ensure(
            api,
            "",
            "v1",
            "namespaces",
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
    }
    let kubernetes = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": api.services.first_ip(), "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
    });
    ensure(api, "", "v1", "services", Some("default"), kubernetes).await?;
    for (name, value, description) in crate::priority::SYSTEM_CLASSES {
        let class = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
                           "value": value, "description": description, "preemptionPolicy": "PreemptLowerPriority"});
        ensure(api, "scheduling.k8s.io", "v1", "priorityclasses", None, class).await?;
    }
    Ok(())
}
