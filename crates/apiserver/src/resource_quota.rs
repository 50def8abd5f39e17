//! The ResourceQuota admission plugin: a new object is charged to every quota of its
//! namespace that limits something it uses (its object count, a pod's requests and limits,
//! a Service's node ports, a claim's storage, ...). An update of a Service or a claim is
//! charged for what it uses beyond the object it replaces (a ClusterIP Service turned
//! NodePort, a claim asking for more storage), as Kubernetes' evaluators for those kinds
//! are; other kinds' usage is fixed at creation. If the charge would take a quota past
//! its `status.hard`, the object is refused (403, kube-apiserver's "exceeded quota"
//! message); otherwise the quota's `status.used` is raised before the object is stored, by
//! a write guarded by the quota's resourceVersion and redone on a fresh read when another
//! write got there first, so that concurrent creates can never overshoot a limit. Quotas the
//! controller has not yet given a `status.hard` do not apply, as in Kubernetes; the quota
//! controller later recounts `status.used` from what exists.

use crate::error::{ApiError, ApiResult};
use crate::objects;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, ResourceQuota, Service};
use quota::resource_list::{self, ResourceList};
use quota::{scopes, usage};
use registry::ResourceInfo;
use serde_json::Value;
use store::KeyValue;

/// How many times one quota's charge is redone after losing a race before giving up (each
/// loss means another create was charged meanwhile).
const ATTEMPTS: usize = 64;

/// The object being created, as quota evaluation sees it.
struct Candidate<'a> {
    /// Set for pods, which scoped quotas may count.
    pod: Option<Pod>,
    usage: ResourceList,
    group: &'a str,
    plural: &'a str,
}

fn decode<T: serde::de::DeserializeOwned>(obj: &Value) -> ApiResult<T> {
    serde_json::from_value(obj.clone()).map_err(|e| ApiError::internal(format!("decoding the admitted object: {e}")))
}

/// What a Service or a claim uses; None for the kinds whose usage an update cannot change.
fn updatable_usage(info: &ResourceInfo, obj: &Value) -> ApiResult<Option<ResourceList>> {
    Ok(match (info.group, info.plural) {
        ("", "services") => Some(usage::service_usage(&decode::<Service>(obj)?)),
        ("", "persistentvolumeclaims") => Some(usage::claim_usage(&decode::<PersistentVolumeClaim>(obj)?)),
        _ => None,
    })
}

impl<'a> Candidate<'a> {
    /// The charge for creating `obj`, or for replacing `old` with it.
    fn new(info: &'a ResourceInfo, obj: &Value, old: Option<&Value>) -> ApiResult<Candidate<'a>> {
        let (group, plural) = (info.group, info.plural);
        let mut pod = None;
        let usage = match (updatable_usage(info, obj)?, old) {
            (Some(usage), Some(old)) => {
                let before = updatable_usage(info, old)?.unwrap_or_default();
                resource_list::growth(&usage, &before)
            }
            (_, Some(_)) => ResourceList::new(),
            (Some(usage), None) => usage,
            (None, None) if (group, plural) == ("", "pods") => {
                let p: Pod = decode(obj)?;
                let usage = usage::pod_usage(&p, chrono::Utc::now());
                pod = Some(p);
                usage
            }
            (None, None) => usage::object_count(group, plural),
        };
        let usage = usage.into_iter().filter(|(_, amount)| amount.milli != 0).collect();
        Ok(Candidate { pod, usage, group, plural })
    }

    /// The resources of `hard` this kind of object is counted under.
    fn restricted(&self, hard: &ResourceList) -> ResourceList {
        let ours = |name: &String| usage::counted_kind(name).is_some_and(|(g, p)| g == self.group && p == self.plural);
        hard.iter().filter(|(name, _)| ours(name)).map(|(n, a)| (n.clone(), *a)).collect()
    }
}

/// What a quota's status would be with the candidate charged to it: None if the quota does
/// not count it; an error if the charge is refused.
fn charge(quota: &ResourceQuota, candidate: &Candidate, kind: &str, name: &str) -> ApiResult<Option<ResourceList>> {
    let quota_name = quota.metadata.name.as_deref().unwrap_or("");
    let forbidden = |why: String| ApiError::forbidden(format!("{kind} \"{name}\" is forbidden: {why}"));
    let spec = quota.spec.clone().unwrap_or_default();
    let status = quota.status.clone().unwrap_or_default();
    let hard = status.hard.as_ref().map(resource_list::from_api).unwrap_or_default();
    let used = status.used.as_ref().map(resource_list::from_api).unwrap_or_default();
    let restricted = candidate.restricted(&hard);
    let in_scope = match &candidate.pod {
        Some(pod) => scopes::counts_pod(&spec, pod),
        None => !scopes::is_scoped(&spec),
    };
    if restricted.is_empty() || !in_scope {
        return Ok(None);
    }
    if let Some(missing) = candidate.pod.as_ref().and_then(|pod| usage::missing_pod_resources(pod, &restricted)) {
        return Err(forbidden(format!("failed quota: {quota_name}: {missing}")));
    }
    if restricted.keys().any(|r| !used.contains_key(r)) {
        let names: Vec<&str> = restricted.keys().map(String::as_str).collect();
        return Err(forbidden(format!("status unknown for quota: {quota_name}, resources: {}", names.join(","))));
    }
    let requested = resource_list::mask(&candidate.usage, &hard);
    if requested.is_empty() {
        return Ok(None);
    }
    let mut new_used = used.clone();
    resource_list::add(&mut new_used, &requested);
    let over = resource_list::exceeded(&resource_list::mask(&new_used, &requested), &hard);
    if !over.is_empty() {
        let only_over =
            |list: &ResourceList| list.iter().filter(|(n, _)| over.contains(n)).map(|(n, a)| (n.clone(), *a)).collect();
        return Err(forbidden(format!(
            "exceeded quota: {quota_name}, requested: {}, used: {}, limited: {}",
            resource_list::pretty(&only_over(&requested)),
            resource_list::pretty(&only_over(&used)),
            resource_list::pretty(&only_over(&hard)),
        )));
    }
    Ok(Some(new_used))
}

fn parse(kv: &KeyValue) -> ApiResult<ResourceQuota> {
    decode(&objects::parse_stored(kv)?)
}

/// Charges a new object (`obj`, admitted and about to be stored as `name`), or what an
/// update to `obj` from `old` adds, to the quotas of its namespace, or refuses it. A dry run
/// is checked but charges nothing.
pub async fn admit(
    api: &crate::api::Api,
    info: &ResourceInfo,
    namespace: &str,
    (obj, old): (&Value, Option<&Value>),
    name: &str,
    dry_run: bool,
) -> ApiResult<()> {
    if let Some(old) = old
        && updatable_usage(info, old)?.is_none()
    {
        return Ok(());
    }
    let Some(quotas_info) = api.registry.get("", "v1", "resourcequotas") else { return Ok(()) };
    let listed = api.quotas.list(&objects::prefix(quotas_info, Some(namespace))).await?;
    if listed.is_empty() {
        return Ok(());
    }
    let candidate = Candidate::new(info, obj, old)?;
    if candidate.usage.is_empty() {
        return Ok(());
    }
    // Every quota is checked before any is charged, so that a refusal charges nothing.
    let mut charges = Vec::new();
    for kv in &listed {
        let quota = parse(kv)?;
        if let Some(new_used) = charge(&quota, &candidate, info.plural, name)? {
            charges.push((kv.clone(), quota, new_used));
        }
    }
    if dry_run {
        return Ok(());
    }
    for (mut kv, mut quota, mut new_used) in charges {
        for attempt in 0.. {
            let mut stored = objects::parse_stored(&kv)?;
            stored["status"]["used"] = serde_json::to_value(resource_list::to_api(&new_used))
                .map_err(|e| ApiError::internal(e.to_string()))?;
            match api.store.update(&kv.key, objects::encode(quotas_info, &stored)?, kv.mod_revision).await {
                Ok(_) => break,
                Err(store::Error::Conflict { .. }) if attempt + 1 < ATTEMPTS => {}
                Err(store::Error::Conflict { .. }) => {
                    let quota_name = quota.metadata.name.unwrap_or_default();
                    return Err(ApiError::conflict(
                        crate::error::Subject {
                            group: "",
                            plural: "resourcequotas",
                            kind: "ResourceQuota",
                            name: &quota_name,
                        },
                        "the object has been modified; please apply your changes to the latest version and try again",
                    ));
                }
                // A quota deleted meanwhile limits nothing.
                Err(store::Error::NotFound) => break,
                Err(e) => return Err(e.into()),
            }
            let Some(fresh) = api.store.get(&kv.key).await? else { break };
            kv = fresh;
            quota = parse(&kv)?;
            match charge(&quota, &candidate, info.plural, name)? {
                Some(used) => new_used = used,
                None => break,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn quota(hard: Value, used: Value) -> ResourceQuota {
        serde_json::from_value(
            json!({"metadata": {"name": "q"}, "spec": {"hard": hard}, "status": {"hard": hard, "used": used}}),
        )
        .unwrap()
    }

    fn pod_candidate(resources: Value) -> Candidate<'static> {
        let pod: Pod =
            serde_json::from_value(json!({"spec": {"containers": [{"name": "app", "resources": resources}]}})).unwrap();
        let usage = usage::pod_usage(&pod, chrono::Utc::now());
        Candidate { pod: Some(pod), usage, group: "", plural: "pods" }
    }

    #[test]
    fn a_charge_over_the_limit_is_refused_with_what_exceeds() {
        let q = quota(json!({"pods": "2", "requests.cpu": "2"}), json!({"pods": "2", "requests.cpu": "500m"}));
        let err = charge(&q, &pod_candidate(json!({"requests": {"cpu": "1"}})), "pods", "web").unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (403, "pods \"web\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2")
        );
    }

    #[test]
    fn a_charge_within_the_limit_raises_used() {
        let q = quota(json!({"pods": "3", "requests.cpu": "2"}), json!({"pods": "2", "requests.cpu": "500m"}));
        let used = charge(&q, &pod_candidate(json!({"requests": {"cpu": "1"}})), "pods", "web").unwrap().unwrap();
        assert_eq!(resource_list::pretty(&used), "pods=3,requests.cpu=1500m");
    }

    #[test]
    fn pods_must_request_what_is_limited_and_quotas_must_have_usage() {
        let q = quota(json!({"requests.memory": "1Gi"}), json!({"requests.memory": "0"}));
        let err = charge(&q, &pod_candidate(json!({})), "pods", "web").unwrap_err();
        assert_eq!(err.message, "pods \"web\" is forbidden: failed quota: q: must specify requests.memory for: app");
        let unsynced = quota(json!({"pods": "1"}), json!({}));
        let err = charge(&unsynced, &pod_candidate(json!({})), "pods", "web").unwrap_err();
        assert_eq!(err.message, "pods \"web\" is forbidden: status unknown for quota: q, resources: pods");
    }

    #[test]
    fn quotas_not_limiting_the_kind_do_not_charge_it() {
        let q = quota(json!({"configmaps": "1"}), json!({"configmaps": "1"}));
        assert!(charge(&q, &pod_candidate(json!({})), "pods", "web").unwrap().is_none());
    }
}
