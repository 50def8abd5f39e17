//! Where a DaemonSet's pods belong, as kube's DaemonSet controller decides: the pod it
//! would create on a node (the template plus the default daemon tolerations) must name no
//! other node, match the node's labels by nodeSelector and required node affinity, and
//! tolerate its NoSchedule and NoExecute taints. A pod that tolerates the node's NoExecute
//! taints but not a NoSchedule one may stay where it runs, but none is created there. The
//! predicates are the scheduler's own; the pods are then placed by the scheduler, pinned to
//! their node by a required `matchFields metadata.name In [node]` term.

use crate::controller_revision::REVISION_HASH_LABEL;
use crate::{owner, pods};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodSpec, PodTemplateSpec, Toleration,
};
use scheduler::plugins::{node_affinity, taint_toleration};
use std::collections::BTreeMap;

/// What a node is to a DaemonSet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fit {
    /// A daemon pod should run there (and is created if missing).
    pub should_run: bool,
    /// A daemon pod already there may keep running.
    pub may_stay: bool,
}

/// How `node` suits a daemon pod with this spec (the template with the daemon tolerations).
pub fn fit(node: &Node, spec: &PodSpec) -> Fit {
    static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();
    let nowhere = Fit { should_run: false, may_stay: false };
    let name = node.metadata.name.as_deref().unwrap_or_default();
    if spec.node_name.as_deref().is_some_and(|n| !n.is_empty() && n != name) {
        return nowhere;
    }
    if !node_affinity::spec_matches(spec, node.metadata.labels.as_ref().unwrap_or(&NO_LABELS), name) {
        return nowhere;
    }
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default();
    if taint_toleration::first_untolerated(tolerations, taints, &["NoSchedule", "NoExecute"]).is_none() {
        return Fit { should_run: true, may_stay: true };
    }
    Fit {
        should_run: false,
        may_stay: taint_toleration::first_untolerated(tolerations, taints, &["NoExecute"]).is_none(),
    }
}

/// The taints every daemon pod tolerates, so that node problems neither evict it nor keep it
/// off a node: not-ready and unreachable NoExecute (for ever), and the NoSchedule taints of
/// node conditions and cordoning.
const DAEMON_TOLERATIONS: [(&str, &str); 6] = [
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
];

/// Tolerated as well by pods on the host's network, which need no pod network.
const HOST_NETWORK_TOLERATION: (&str, &str) = ("node.kubernetes.io/network-unavailable", "NoSchedule");

/// Adds the daemon tolerations to a pod spec. A toleration of the same key, operator, value
/// and effect is replaced (so a tolerationSeconds on it goes), as Kubernetes does.
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let host_network = spec.host_network == Some(true);
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in DAEMON_TOLERATIONS.iter().chain(host_network.then_some(&HOST_NETWORK_TOLERATION)) {
        let wanted = Toleration {
            key: Some(key.to_string()),
            operator: Some("Exists".into()),
            effect: Some(effect.to_string()),
            ..Default::default()
        };
        let text = |o: &Option<String>| o.clone().unwrap_or_default();
        let same = |t: &Toleration| {
            text(&t.key) == text(&wanted.key)
                && text(&t.operator) == text(&wanted.operator)
                && text(&t.value) == text(&wanted.value)
                && text(&t.effect) == text(&wanted.effect)
        };
        let mut found = false;
        for t in tolerations.iter_mut().filter(|t| same(t)) {
            *t = wanted.clone();
            found = true;
        }
        if !found {
            tolerations.push(wanted);
        }
    }
}

/// The label that says which generation of the DaemonSet made a pod (deprecated by the
/// revision hash, and still set, as Kubernetes sets it).
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// The template the DaemonSet's pods are made from: its own, with the daemon tolerations, the
/// DaemonSet's generation and the current revision's hash label.
pub fn daemon_template(ds: &DaemonSet, hash: &str) -> PodTemplateSpec {
    let mut template = ds.spec.template.clone();
    add_daemon_tolerations(template.spec.get_or_insert_with(PodSpec::default));
    let labels = template.metadata.get_or_insert_with(Default::default).labels.get_or_insert_with(BTreeMap::new);
    if let Some(generation) = ds.metadata.generation {
        labels.insert(TEMPLATE_GENERATION_LABEL.into(), generation.to_string());
    }
    labels.insert(REVISION_HASH_LABEL.into(), hash.into());
    template
}

/// The daemon pod for `node`: its required node affinity replaced by one term that names
/// the node, so that the scheduler places it there.
pub fn pod_for(ds: &DaemonSet, template: &PodTemplateSpec, node: &str) -> Pod {
    let base = format!("{}-", ds.metadata.name.as_deref().unwrap_or_default());
    let namespace = ds.metadata.namespace.as_deref().unwrap_or_default();
    let mut pod = pods::generated_from_template(template, owner::reference(ds), &base, namespace);
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    let affinity = spec.affinity.get_or_insert_with(Default::default);
    let pinned = NodeSelectorTerm {
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".into(),
            operator: "In".into(),
            values: Some(vec![node.to_string()]),
        }]),
        match_expressions: None,
    };
    let node_affinity = affinity.node_affinity.get_or_insert_with(Default::default);
    node_affinity.required_during_scheduling_ignored_during_execution =
        Some(NodeSelector { node_selector_terms: vec![pinned] });
    pod
}

/// The node a daemon pod runs on or is meant for: its nodeName once bound, else the node
/// its required affinity names.
pub fn target_node(pod: &Pod) -> Option<&str> {
    let spec = pod.spec.as_ref()?;
    if let Some(name) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(name);
    }
    let required =
        spec.affinity.as_ref()?.node_affinity.as_ref()?.required_during_scheduling_ignored_during_execution.as_ref()?;
    let pinned = required
        .node_selector_terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name" && r.operator == "In")?;
    match pinned.values.as_deref() {
        Some([one]) => Some(one.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(labels: serde_json::Value, taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n1", "labels": labels}, "spec": {"taints": taints}}))
            .unwrap()
    }

    fn spec(value: serde_json::Value) -> PodSpec {
        let mut spec: PodSpec = serde_json::from_value(value).unwrap();
        add_daemon_tolerations(&mut spec);
        spec
    }

    #[test]
    fn nodes_fit_by_selector_affinity_and_taints() {
        let plain = spec(json!({"containers": []}));
        assert_eq!(fit(&node(json!({}), json!([])), &plain), Fit { should_run: true, may_stay: true });
        let selective = spec(json!({"containers": [], "nodeSelector": {"disk": "ssd"}}));
        assert!(!fit(&node(json!({}), json!([])), &selective).should_run);
        assert!(fit(&node(json!({"disk": "ssd"}), json!([])), &selective).should_run);
        let elsewhere = spec(json!({"containers": [], "nodeName": "n2"}));
        assert!(!fit(&node(json!({}), json!([])), &elsewhere).may_stay);
        // Untolerated NoSchedule: no new pod, but one there may stay; NoExecute: it goes.
        let no_schedule = node(json!({}), json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]));
        assert_eq!(fit(&no_schedule, &plain), Fit { should_run: false, may_stay: true });
        let no_execute = node(json!({}), json!([{"key": "dedicated", "effect": "NoExecute"}]));
        assert_eq!(fit(&no_execute, &plain), Fit { should_run: false, may_stay: false });
        let tolerant = spec(json!({"containers": [], "tolerations": [{"key": "dedicated", "operator": "Exists"}]}));
        assert!(fit(&no_execute, &tolerant).should_run);
        // The default tolerations let daemon pods onto cordoned and not-ready nodes.
        let cordoned = node(
            json!({}),
            json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                                               {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]),
        );
        assert!(fit(&cordoned, &plain).should_run);
        let no_network =
            node(json!({}), json!([{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]));
        assert!(!fit(&no_network, &plain).should_run);
        assert!(fit(&no_network, &spec(json!({"containers": [], "hostNetwork": true}))).should_run);
    }

    #[test]
    fn daemon_tolerations_replace_matching_ones_once() {
        let mut s: PodSpec = serde_json::from_value(json!({"containers": [], "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]})).unwrap();
        add_daemon_tolerations(&mut s);
        add_daemon_tolerations(&mut s);
        let tolerations = s.tolerations.unwrap();
        assert_eq!(tolerations.len(), 6);
        assert_eq!(tolerations[0].toleration_seconds, None);
    }

    #[test]
    fn pods_are_pinned_to_their_node() {
        let ds: DaemonSet = serde_json::from_value(json!({"metadata": {"name": "agent", "namespace": "ns", "uid": "u", "generation": 3},
            "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": {"metadata": {"labels": {"app": "a"}},
                "spec": {"containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms": [{"matchExpressions": [{"key": "x", "operator": "Exists"}]}]}}}}}}})).unwrap();
        let template = daemon_template(&ds, "h1");
        let pod = pod_for(&ds, &template, "n7");
        assert_eq!(target_node(&pod), Some("n7"));
        assert_eq!(pod.metadata.labels.as_ref().unwrap()[REVISION_HASH_LABEL], "h1");
        assert_eq!(pod.metadata.labels.as_ref().unwrap()[TEMPLATE_GENERATION_LABEL], "3");
        assert!(pod.metadata.name.as_ref().unwrap().starts_with("agent-"));
        let terms = &pod
            .spec
            .as_ref()
            .unwrap()
            .affinity
            .as_ref()
            .unwrap()
            .node_affinity
            .as_ref()
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .unwrap()
            .node_selector_terms;
        assert_eq!(terms.len(), 1);
        assert!(terms[0].match_expressions.is_none());
    }
}
