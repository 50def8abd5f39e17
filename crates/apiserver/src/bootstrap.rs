//! What every cluster has from its first start: the default, kube-system, kube-public and
//! kube-node-lease namespaces, the `kubernetes` Service in default, at the first address
//! of the service CIDR, with its endpoints ([`crate::kubernetes_service`]), and the
//! system-node-critical and system-cluster-critical PriorityClasses.

use crate::api::Api;
use crate::objects;
use registry::object_meta;
use serde_json::{Value, json};
use std::net::SocketAddr;

/// Creates `desired` (in `namespace`), or, if it exists, gives it the parts of `desired` at
/// `owned` (JSON pointers) where they differ; what others changed elsewhere stays.
pub async fn put(
    api: &Api,
    (group, version, plural): (&str, &str, &str),
    namespace: Option<&str>,
    desired: Value,
    owned: &[&str],
) -> anyhow::Result<()> {
    let info =
        api.registry.get(group, version, plural).ok_or_else(|| anyhow::anyhow!("{plural} is not in the catalog"))?;
    let name = objects::name_of(&desired).to_string();
    let key = objects::key(info, namespace, &name);
    let failed = |e| anyhow::anyhow!("bootstrap {plural}/{name}: {e:?}");
    loop {
        let Some(kv) = api.store.get(&key).await? else {
            let mut obj = desired.clone();
            object_meta::prepare_create(info, &mut obj, namespace).map_err(failed)?;
            let mut obj = info.behaviour.admit(obj, None, None).map_err(failed)?;
            if plural == "services" {
                api.services.allocate(&mut obj).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            }
            match api.store.create(&key, objects::encode(info, &obj).map_err(|e| anyhow::anyhow!(e.message))?).await {
                Ok(_) => return Ok(()),
                Err(store::Error::AlreadyExists) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        if owned.is_empty() {
            return Ok(());
        }
        let current = objects::decode(info, &kv).map_err(|e| anyhow::anyhow!(e.message))?;
        let mut next = current.clone();
        for pointer in owned {
            let (parent, field) = pointer.rsplit_once('/').unwrap_or_default();
            let wanted = desired.pointer(pointer).cloned().unwrap_or(Value::Null);
            match next.pointer_mut(parent).and_then(Value::as_object_mut) {
                Some(parent) => parent.insert(field.to_string(), wanted),
                None => return Err(anyhow::anyhow!("{plural}/{name} has no {parent} to set {field} in")),
            };
        }
        let next = info.behaviour.admit(next, Some(&current), None).map_err(failed)?;
        if owned.iter().all(|p| next.pointer(p) == current.pointer(p)) {
            return Ok(());
        }
        let bytes = objects::encode(info, &next).map_err(|e| anyhow::anyhow!(e.message))?;
        match api.store.update(&key, bytes, kv.mod_revision).await {
            Ok(_) => return Ok(()),
            Err(store::Error::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Records the allocations of stored Services, then creates what is missing.
pub async fn run(api: &Api, advertise: SocketAddr) -> anyhow::Result<()> {
    let services = api.registry.get("", "v1", "services").expect("services are in the catalog");
    let stored =
        api.store.range(store::RangeRequest { prefix: objects::prefix(services, None), ..Default::default() }).await?;
    for kv in &stored.kvs {
        if let Ok(svc) = objects::parse_stored(kv) {
            api.services.record(&svc);
        }
    }
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        put(api, ("", "v1", "namespaces"), None, namespace, &[]).await?;
    }
    crate::kubernetes_service::reconcile(api, advertise).await?;
    for (name, value, description) in crate::priority::SYSTEM_CLASSES {
        let class = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
                           "value": value, "description": description, "preemptionPolicy": "PreemptLowerPriority"});
        put(api, ("scheduling.k8s.io", "v1", "priorityclasses"), None, class, &[]).await?;
    }
    Ok(())
}
