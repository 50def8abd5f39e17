//! The stable identity of a StatefulSet's pods: pod `<set>-<ordinal>` for each ordinal from
//! `spec.ordinals.start`, labelled with its name (`statefulset.kubernetes.io/pod-name`, which
//! a Service can select one pod by), its ordinal (`apps.kubernetes.io/pod-index`) and the
//! revision it was made from (`controller-revision-hash`), with the hostname of its name in
//! the subdomain of the set's governing Service. A pod that loses its labels gets them back.

use super::claims;
use crate::owner;
use crate::pods::from_template;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// The set a pod's name says it belongs to, and its ordinal: `<set>-<ordinal>`.
pub fn parent_and_ordinal(name: &str) -> Option<(&str, i32)> {
    let (parent, ordinal) = name.rsplit_once('-')?;
    if ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, ordinal.parse().ok()?))
}

pub fn ordinal(pod: &Pod) -> Option<i32> {
    parent_and_ordinal(pod.metadata.name.as_deref()?).map(|(_, ordinal)| ordinal)
}

/// Whether the pod is named as one of the set's (only those are adopted).
pub fn is_member(set: &StatefulSet, pod: &Pod) -> bool {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    parent_and_ordinal(name).is_some_and(|(parent, _)| parent == set.name_any())
}

pub fn pod_name(set: &StatefulSet, ordinal: i32) -> String {
    format!("{}-{ordinal}", set.name_any())
}

pub fn replicas(set: &StatefulSet) -> i32 {
    set.spec.replicas.unwrap_or(1)
}

pub fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0)
}

/// Whether the ordinal is one the set keeps (the others are condemned: scaled down).
pub fn in_range(set: &StatefulSet, ordinal: i32) -> bool {
    let start = start_ordinal(set);
    ordinal >= start && ordinal < start + replicas(set)
}

/// The name of the revision the pod was made from.
pub fn revision_of(pod: &Pod) -> &str {
    pod.metadata.labels.as_ref().and_then(|l| l.get(REVISION_LABEL)).map(String::as_str).unwrap_or_default()
}

/// The pod for `ordinal` as `set` (the set as of `revision`) makes it: the template, the
/// identity, the hostname and subdomain, and the volumes of its claims.
pub fn new_pod(set: &StatefulSet, ordinal: i32, revision: &str) -> Pod {
    let name = pod_name(set, ordinal);
    let namespace = set.namespace().unwrap_or_default();
    let mut pod = from_template(&set.spec.template, owner::reference(set), name.clone(), &namespace);
    set_identity(set, &mut pod);
    let spec = pod.spec.get_or_insert_default();
    spec.hostname = Some(name);
    spec.subdomain = set.spec.service_name.clone().filter(|s| !s.is_empty());
    claims::set_storage(set, &mut pod);
    pod.labels_mut().insert(REVISION_LABEL.into(), revision.into());
    pod
}

/// Whether the pod carries the identity its name gives it in this set.
pub fn identity_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let Some(ordinal) = ordinal(pod) else { return false };
    let labels = pod.labels();
    is_member(set, pod)
        && pod.metadata.namespace == set.metadata.namespace
        && labels.get(POD_NAME_LABEL) == pod.metadata.name.as_ref()
        && labels.get(POD_INDEX_LABEL) == Some(&ordinal.to_string())
}

/// Labels the pod with its name and ordinal.
pub fn set_identity(set: &StatefulSet, pod: &mut Pod) {
    let ordinal = ordinal(pod).unwrap_or_default();
    pod.metadata.namespace = set.namespace();
    let name = pod.name_any();
    let labels = pod.labels_mut();
    labels.insert(POD_NAME_LABEL.into(), name);
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use serde_json::json;

    pub fn set(name: &str, replicas: i32, start: Option<i32>) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": "set-uid"},
            "spec": {"replicas": replicas, "serviceName": "svc", "ordinals": start.map(|s| json!({"start": s})),
                     "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
        }))
        .unwrap()
    }

    #[test]
    fn names_parse_into_parent_and_ordinal() {
        assert_eq!(parent_and_ordinal("web-0"), Some(("web", 0)));
        assert_eq!(parent_and_ordinal("my-web-12"), Some(("my-web", 12)));
        assert_eq!(parent_and_ordinal("web-x"), None);
        assert_eq!(parent_and_ordinal("web-"), None);
        assert_eq!(parent_and_ordinal("web-99999999999"), None);
    }

    #[test]
    fn new_pods_carry_their_identity() {
        let set = set("web", 3, Some(5));
        assert!(in_range(&set, 5) && in_range(&set, 7) && !in_range(&set, 4) && !in_range(&set, 8));
        let pod = new_pod(&set, 6, "web-abc");
        assert_eq!(pod.name_any(), "web-6");
        assert_eq!(pod.labels()[POD_NAME_LABEL], "web-6");
        assert_eq!(pod.labels()[POD_INDEX_LABEL], "6");
        assert_eq!(revision_of(&pod), "web-abc");
        assert_eq!(pod.labels()["app"], "web");
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!((spec.hostname.as_deref(), spec.subdomain.as_deref()), (Some("web-6"), Some("svc")));
        assert!(identity_matches(&set, &pod));
        let mut relabelled = pod.clone();
        relabelled.labels_mut().remove(POD_INDEX_LABEL);
        assert!(!identity_matches(&set, &relabelled));
        set_identity(&set, &mut relabelled);
        assert!(identity_matches(&set, &relabelled));
        assert!(!is_member(&self::set("webx", 1, None), &pod));
    }
}
