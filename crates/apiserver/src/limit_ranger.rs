//! The LimitRanger admission plugin: the LimitRanges of a namespace give its new pods'
//! containers their default requests and limits (`default`, `defaultRequest`, noted in the
//! pod's `kubernetes.io/limit-ranger` annotation), and refuse (403) pods and
//! PersistentVolumeClaims outside their `min`, `max` and `maxLimitRequestRatio` for a
//! Container, a Pod or a PersistentVolumeClaim, with kube-apiserver's messages. The ranges
//! come from a mirror of the store that each admission brings up to date, so a range just
//! created applies at once.

use crate::error::{ApiError, ApiResult};
use crate::mirror::Mirror;
use crate::objects;
use k8s_openapi::api::core::v1::{LimitRange, LimitRangeItem, PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use quota::pod_resources::{self, Side};
use quota::resource_list::{self, ResourceList};
use serde_json::Value;

const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// The LimitRanges of a namespace.
async fn ranges(mirror: &Mirror, namespace: &str) -> ApiResult<Vec<LimitRange>> {
    let listed = mirror.list(&format!("{}core/limitranges/{namespace}/", objects::ROOT)).await?;
    let parsed = listed.iter().filter_map(|kv| objects::parse_stored(kv).ok());
    Ok(parsed.filter_map(|obj| serde_json::from_value(obj).ok()).collect())
}

fn items<'a>(ranges: &'a [LimitRange], type_: &'a str) -> impl Iterator<Item = &'a LimitRangeItem> {
    ranges.iter().flat_map(|r| r.spec.iter().flat_map(|s| s.limits.iter())).filter(move |i| i.type_ == type_)
}

/// Admits a new pod or claim (other kinds pass untouched): defaults, then the checks.
pub async fn admit(mirror: &Mirror, plural: &str, namespace: &str, obj: &mut Value, name: &str) -> ApiResult<()> {
    if !matches!(plural, "pods" | "persistentvolumeclaims") {
        return Ok(());
    }
    let ranges = ranges(mirror, namespace).await?;
    if ranges.is_empty() {
        return Ok(());
    }
    let decode_error =
        |e: serde_json::Error| ApiError::bad_request(format!("the object provided is unrecognized or malformed: {e}"));
    let problems = if plural == "pods" {
        let mut pod: Pod = serde_json::from_value(obj.clone()).map_err(decode_error)?;
        apply_defaults(&ranges, &mut pod);
        let problems = pod_problems(&ranges, &pod);
        *obj = serde_json::to_value(&pod).map_err(|e| ApiError::internal(e.to_string()))?;
        problems
    } else {
        let claim: PersistentVolumeClaim = serde_json::from_value(obj.clone()).map_err(decode_error)?;
        claim_problems(&ranges, &claim)
    };
    if problems.is_empty() {
        return Ok(());
    }
    let why = if problems.len() == 1 { problems[0].clone() } else { format!("[{}]", problems.join(", ")) };
    Err(ApiError::forbidden(format!("{plural} \"{name}\" is forbidden: {why}")))
}

/// Gives each container the Container items' default limits and requests for the resources
/// it does not state, and notes what was set in the pod's annotation.
fn apply_defaults(ranges: &[LimitRange], pod: &mut Pod) {
    let mut limits = ResourceList::new();
    let mut requests = ResourceList::new();
    for item in items(ranges, "Container") {
        limits.extend(item.default.as_ref().map(resource_list::from_api).unwrap_or_default());
        requests.extend(item.default_request.as_ref().map(resource_list::from_api).unwrap_or_default());
    }
    let Some(spec) = pod.spec.as_mut() else { return };
    // The request a limit implies comes first, as the API's defaulting precedes admission.
    registry::pod_spec::default_requests_from_limits(spec);
    if limits.is_empty() && requests.is_empty() {
        return;
    }
    let mut notes = Vec::new();
    let containers = spec.containers.iter_mut().map(|c| ("container", c));
    let init = spec.init_containers.iter_mut().flatten().map(|c| ("init container", c));
    for (what, c) in containers.chain(init) {
        let resources = c.resources.get_or_insert_with(Default::default);
        // Kubernetes notes a container's requests before its limits.
        let sides = [("request", &mut resources.requests, &requests), ("limit", &mut resources.limits, &limits)];
        for (side, list, defaults) in sides {
            let list = list.get_or_insert_with(Default::default);
            let mut set: Vec<&str> = Vec::new();
            for (name, amount) in defaults.iter() {
                if !list.contains_key(name) {
                    list.insert(name.clone(), Quantity(amount.to_string()));
                    set.push(name);
                }
            }
            if !set.is_empty() {
                notes.push(format!("{} {side} for {what} {}", set.join(", "), c.name));
            }
        }
    }
    if !notes.is_empty() {
        let text = format!("LimitRanger plugin set: {}", notes.join("; "));
        pod.metadata.annotations.get_or_insert_with(Default::default).insert(ANNOTATION.into(), text);
    }
}

fn bounds(list: &Option<std::collections::BTreeMap<String, Quantity>>) -> ResourceList {
    list.as_ref().map(resource_list::from_api).unwrap_or_default()
}

/// Why these requests and limits fall below an item's `min`.
fn min_problems(item: &LimitRangeItem, requests: &ResourceList, limits: &ResourceList, problems: &mut Vec<String>) {
    let kind = item.type_.as_str();
    for (name, min) in bounds(&item.min) {
        match (requests.get(&name), limits.get(&name)) {
            (None, _) => problems.push(format!("minimum {name} usage per {kind} is {min}.  No request is specified")),
            (Some(r), _) if r.milli < min.milli => {
                problems.push(format!("minimum {name} usage per {kind} is {min}, but request is {r}"))
            }
            (_, Some(l)) if l.milli < min.milli => {
                problems.push(format!("minimum {name} usage per {kind} is {min}, but limit is {l}"))
            }
            _ => {}
        }
    }
}

/// Why these requests and limits go over an item's `max`.
fn max_problems(item: &LimitRangeItem, requests: &ResourceList, limits: &ResourceList, problems: &mut Vec<String>) {
    let kind = item.type_.as_str();
    for (name, max) in bounds(&item.max) {
        match (requests.get(&name), limits.get(&name)) {
            (_, None) => problems.push(format!("maximum {name} usage per {kind} is {max}.  No limit is specified")),
            (_, Some(l)) if l.milli > max.milli => {
                problems.push(format!("maximum {name} usage per {kind} is {max}, but limit is {l}"))
            }
            (Some(r), _) if r.milli > max.milli => {
                problems.push(format!("maximum {name} usage per {kind} is {max}, but request is {r}"))
            }
            _ => {}
        }
    }
}

/// Why these limits are too many times their requests for an item's `maxLimitRequestRatio`.
fn ratio_problems(item: &LimitRangeItem, requests: &ResourceList, limits: &ResourceList, problems: &mut Vec<String>) {
    let kind = item.type_.as_str();
    for (name, ratio) in bounds(&item.max_limit_request_ratio) {
        let request = requests.get(&name).map_or(0, |a| a.milli);
        let limit = limits.get(&name).map_or(0, |a| a.milli);
        if request == 0 {
            problems.push(format!(
                "{name} max limit to request ratio per {kind} is {ratio}, but no request is specified or request is 0"
            ));
        } else if limit == 0 {
            problems.push(format!(
                "{name} max limit to request ratio per {kind} is {ratio}, but no limit is specified or limit is 0"
            ));
        } else if limit * 1000 > ratio.milli * request {
            let observed = limit as f64 / request as f64;
            problems.push(format!(
                "{name} max limit to request ratio per {kind} is {ratio}, but provided ratio is {observed:.6}"
            ));
        }
    }
}

/// Every bound of an item that a container or pod with these requests and limits breaks.
fn item_problems(item: &LimitRangeItem, requests: &ResourceList, limits: &ResourceList, problems: &mut Vec<String>) {
    min_problems(item, requests, limits, problems);
    max_problems(item, requests, limits, problems);
    ratio_problems(item, requests, limits, problems);
}

/// Every limit a pod breaks: each container's against the Container items, the pod's totals
/// against the Pod items.
fn pod_problems(ranges: &[LimitRange], pod: &Pod) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(spec) = &pod.spec else { return problems };
    for item in items(ranges, "Container") {
        for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
            item_problems(
                item,
                &pod_resources::container(c, Side::Requests),
                &pod_resources::container(c, Side::Limits),
                &mut problems,
            );
        }
    }
    for item in items(ranges, "Pod") {
        item_problems(
            item,
            &pod_resources::pod(spec, Side::Requests),
            &pod_resources::pod(spec, Side::Limits),
            &mut problems,
        );
    }
    dedup_keeping_order(problems)
}

/// A claim's storage request against the PersistentVolumeClaim items' min and max (its
/// limits are not the user's to bound: the max is held against the request, which is then
/// named the limit, as Kubernetes does).
fn claim_problems(ranges: &[LimitRange], claim: &PersistentVolumeClaim) -> Vec<String> {
    let requests = claim.spec.as_ref().and_then(|s| s.resources.as_ref()).and_then(|r| r.requests.as_ref());
    let requests = requests.map(resource_list::from_api).unwrap_or_default();
    let none = ResourceList::new();
    let mut problems = Vec::new();
    for item in items(ranges, "PersistentVolumeClaim") {
        min_problems(item, &requests, &none, &mut problems);
        max_problems(item, &none, &requests, &mut problems);
    }
    dedup_keeping_order(problems)
}

/// Kubernetes reports each distinct message once.
fn dedup_keeping_order(problems: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    problems.into_iter().filter(|p| seen.insert(p.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn range(limits: Value) -> Vec<LimitRange> {
        vec![serde_json::from_value(json!({"spec": {"limits": limits}})).unwrap()]
    }

    fn pod(containers: Value) -> Pod {
        serde_json::from_value(json!({"metadata": {}, "spec": {"containers": containers}})).unwrap()
    }

    #[test]
    fn containers_get_the_defaults_they_leave_out() {
        let ranges = range(
            json!([{"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"}, "defaultRequest": {"cpu": "100m", "memory": "128Mi"}}]),
        );
        let mut p = pod(json!([{"name": "app", "resources": {"limits": {"cpu": "1"}}}]));
        apply_defaults(&ranges, &mut p);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v["spec"]["containers"][0]["resources"],
            json!({"limits": {"cpu": "1", "memory": "256Mi"}, "requests": {"cpu": "1", "memory": "128Mi"}})
        );
        assert_eq!(
            v["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: memory request for container app; memory limit for container app"
        );
    }

    #[test]
    fn out_of_range_containers_and_pods_are_described() {
        let ranges = range(json!([
            {"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "64Mi"}, "maxLimitRequestRatio": {"cpu": "2"}},
            {"type": "Pod", "max": {"memory": "1Gi"}}]));
        let p = pod(
            json!([{"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}}]),
        );
        assert_eq!(
            pod_problems(&ranges, &p),
            vec![
                "maximum cpu usage per Container is 1, but limit is 2",
                "cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000",
                "maximum memory usage per Pod is 1Gi, but limit is 2Gi",
            ]
        );
        let p = pod(
            json!([{"name": "app", "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}}}]),
        );
        assert_eq!(pod_problems(&ranges, &p), vec!["minimum memory usage per Container is 64Mi, but request is 32Mi"]);
    }

    #[test]
    fn claims_are_held_to_storage_bounds() {
        let ranges =
            range(json!([{"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}}]));
        let claim: PersistentVolumeClaim =
            serde_json::from_value(json!({"spec": {"resources": {"requests": {"storage": "20Gi"}}}})).unwrap();
        assert_eq!(
            claim_problems(&ranges, &claim),
            vec!["maximum storage usage per PersistentVolumeClaim is 10Gi, but limit is 20Gi"]
        );
    }
}
