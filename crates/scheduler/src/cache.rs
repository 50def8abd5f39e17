//! The scheduler's view of the cluster, kept from watches: each node with the pods that
//! count on it, and indexes that let pod affinity and topology spread count pods by label
//! without visiting every pod. A pod chosen for a node counts there at once (assumed),
//! before its binding is confirmed, so that the next decision sees it.

use crate::framework::PodFacts;
use crate::resources::Resources;
use crate::selector::{Labels, Selector};
use crate::terms::Term;
use crate::topology::Group;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod, Taint};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A pod as it counts on a node.
pub struct Placed {
    pub facts: PodFacts,
    pub node: String,
}

impl std::ops::Deref for Placed {
    type Target = PodFacts;

    fn deref(&self) -> &PodFacts {
        &self.facts
    }
}

impl Placed {
    pub fn terminating(&self) -> bool {
        self.pod.metadata.deletion_timestamp.is_some()
    }
}

pub struct NodeInfo {
    pub node: Arc<Node>,
    pub name: String,
    pub unschedulable: bool,
    /// The node's taints, held here so that filtering a node reads none of its object.
    taints: Vec<Taint>,
    pub allocatable: Resources,
    pub allowed_pods: i64,
    pub requested: Resources,
    /// cpu and memory of the pods here as the resource scores count them.
    pub scoring_requested: [i64; 2],
    pub pods: Vec<Arc<Placed>>,
    /// The images the node holds, by normalized name, with their sizes in bytes.
    pub images: HashMap<String, i64>,
}

impl NodeInfo {
    fn new(name: &str) -> NodeInfo {
        NodeInfo {
            node: Arc::new(Node::default()),
            name: name.to_string(),
            unschedulable: false,
            taints: Vec::new(),
            allocatable: Resources::default(),
            allowed_pods: 0,
            requested: Resources::default(),
            scoring_requested: [0, 0],
            pods: Vec::new(),
            images: HashMap::new(),
        }
    }

    pub fn labels(&self) -> &Labels {
        static EMPTY: Labels = Labels::new();
        self.node.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }

    pub fn taints(&self) -> &[Taint] {
        &self.taints
    }

    fn count(&mut self, placed: &Arc<Placed>, sign: i64) {
        self.requested.add(&placed.requests, sign);
        for (total, pod) in self.scoring_requested.iter_mut().zip(placed.scoring_requests) {
            *total += sign * pod;
        }
        if sign > 0 {
            self.pods.push(placed.clone());
        } else if let Some(at) = self.pods.iter().position(|p| p.uid == placed.uid) {
            self.pods.swap_remove(at);
        }
    }
}

/// Placed pods by namespace and label set: how affinity terms and spread constraints count
/// the pods they select, one label set at a time.
type PodsByLabels = HashMap<String, HashMap<Labels, Group>>;

#[derive(Default)]
pub struct Cache {
    /// Sorted by name: the order a search for nodes goes round.
    pub nodes: Vec<NodeInfo>,
    /// Every counted pod, by uid.
    placed: HashMap<String, Arc<Placed>>,
    /// Pods bound to nodes not seen yet, by node name.
    waiting: HashMap<String, Vec<Arc<Placed>>>,
    /// By namespace, then label set: how many such pods each node and domain holds.
    by_labels: PodsByLabels,
    /// The affinity terms of placed pods: how many pods carrying each term each node and
    /// domain holds.
    terms: HashMap<Term, Group>,
    /// The topology keys pods are counted by, and for each the nodes in each domain.
    keys: HashSet<String>,
    domains: HashMap<String, HashMap<String, usize>>,
    /// How many nodes hold each image.
    image_spread: HashMap<String, usize>,
    /// Namespace labels, for namespace selectors in affinity terms.
    pub namespaces: HashMap<String, Labels>,
    /// PersistentVolumeClaims by (namespace, name), and PersistentVolumes by name.
    pub claims: HashMap<(String, String), PersistentVolumeClaim>,
    pub volumes: HashMap<String, PersistentVolume>,
    /// PodDisruptionBudgets by (namespace, name), which preemption tries not to break.
    pub budgets: HashMap<(String, String), PodDisruptionBudget>,
}

fn labels_of<'a>(nodes: &'a [NodeInfo], name: &str) -> Option<&'a Labels> {
    nodes.binary_search_by(|n| n.name.as_str().cmp(name)).ok().map(|at| nodes[at].labels())
}

/// Image names as nodes report them and pods ask for them: `busybox` is
/// `docker.io/library/busybox:latest`.
pub fn normalize_image(image: &str) -> String {
    let (name, tagged) = match image.rsplit_once('/') {
        Some((_, last)) => (image.to_string(), last.contains(':') || last.contains('@')),
        None => (image.to_string(), image.contains(':') || image.contains('@')),
    };
    let first = name.split('/').next().unwrap_or("");
    let has_registry = name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = match (has_registry, name.contains('/')) {
        (true, _) => name,
        (false, true) => format!("docker.io/{name}"),
        (false, false) => format!("docker.io/library/{name}"),
    };
    if tagged { full } else { format!("{full}:latest") }
}

impl Cache {
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.binary_search_by(|n| n.name.as_str().cmp(name)).ok().map(|at| &self.nodes[at])
    }

    /// Takes in a node as the watch reports it; says whether anything that decides what
    /// fits there changed (a new node, its labels, taints, allocatable or cordon).
    pub fn set_node(&mut self, node: Node) -> bool {
        let name = node.metadata.name.clone().unwrap_or_default();
        let (at, added) = match self.nodes.binary_search_by(|n| n.name.cmp(&name)) {
            Ok(at) => (at, false),
            Err(at) => {
                let mut info = NodeInfo::new(&name);
                // Pods seen bound to this node before the node itself count on it now.
                for placed in self.waiting.remove(&name).unwrap_or_default() {
                    info.count(&placed, 1);
                }
                self.nodes.insert(at, info);
                (at, true)
            }
        };
        static NO_LABELS: Labels = Labels::new();
        let new_labels = node.metadata.labels.as_ref().unwrap_or(&NO_LABELS);
        // Heartbeats change no labels: only a real change moves pods between domains.
        if added || self.nodes[at].labels() != new_labels {
            let old_labels = (!added).then(|| self.nodes[at].labels().clone());
            self.relabel(at, old_labels.as_ref(), Some(new_labels));
        }
        let status = node.status.as_ref();
        let allocatable = status.and_then(|s| s.allocatable.as_ref());
        let images: HashMap<String, i64> = status
            .and_then(|s| s.images.as_ref())
            .into_iter()
            .flatten()
            .flat_map(|i| i.names.iter().flatten().map(move |n| (normalize_image(n), i.size_bytes.unwrap_or(0))))
            .collect();
        let info = &mut self.nodes[at];
        for image in info.images.keys() {
            if let Some(n) = self.image_spread.get_mut(image) {
                *n -= 1;
            }
        }
        for image in images.keys() {
            *self.image_spread.entry(image.clone()).or_default() += 1;
        }
        info.images = images;
        info.allocatable = Resources::from_list(allocatable.into_iter().flatten());
        info.allowed_pods = allocatable
            .and_then(|a| a.get("pods"))
            .and_then(|q| crate::resources::milli(&q.0))
            .map_or(0, |m| (m / 1000) as i64);
        info.unschedulable = node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
        info.taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        let old = std::mem::replace(&mut info.node, Arc::new(node));
        let new = &info.node;
        added
            || old.metadata.labels != new.metadata.labels
            || old.spec.as_ref().map(|s| (&s.taints, s.unschedulable))
                != new.spec.as_ref().map(|s| (&s.taints, s.unschedulable))
            || old.status.as_ref().map(|s| &s.allocatable) != new.status.as_ref().map(|s| &s.allocatable)
    }

    pub fn remove_node(&mut self, name: &str) {
        if let Ok(at) = self.nodes.binary_search_by(|n| n.name.as_str().cmp(name)) {
            let labels = self.nodes[at].labels().clone();
            self.relabel(at, Some(&labels), None);
            let info = self.nodes.remove(at);
            for image in info.images.keys() {
                if let Some(n) = self.image_spread.get_mut(image) {
                    *n -= 1;
                }
            }
            // Its pods stay counted, waiting for the node to come back or for them to go.
            self.waiting.insert(name.to_string(), info.pods);
        }
    }

    /// Counts `pod` on `node` (replacing where it counted before).
    pub fn place(&mut self, pod: Arc<Pod>, node: &str) {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        if let Some(old) = self.placed.get(uid) {
            let unchanged = old.node == node && old.pod.metadata.deletion_timestamp == pod.metadata.deletion_timestamp;
            if unchanged {
                return;
            }
        }
        self.place_facts(PodFacts::new(pod), node);
    }

    /// Counts a pod whose facts are already read (as the scheduler has them once it has
    /// chosen a node) on `node`, replacing where it counted before.
    pub fn place_facts(&mut self, facts: PodFacts, node: &str) {
        self.forget(&facts.uid);
        let placed = Arc::new(Placed { facts, node: node.to_string() });
        self.index(&placed, 1);
        self.placed.insert(placed.uid.clone(), placed);
    }

    /// Stops counting the pod anywhere (it is gone, finished, or its binding failed).
    pub fn forget(&mut self, uid: &str) {
        if let Some(placed) = self.placed.remove(uid) {
            self.index(&placed, -1);
        }
    }

    pub fn placed(&self, uid: &str) -> Option<&Arc<Placed>> {
        self.placed.get(uid)
    }

    fn index(&mut self, placed: &Arc<Placed>, sign: i64) {
        for term in &placed.terms {
            self.track(&term.topology_key);
        }
        let node = placed.node.as_str();
        let at = self.nodes.binary_search_by(|n| n.name.as_str().cmp(node)).ok();
        match at {
            Some(at) => self.nodes[at].count(placed, sign),
            None => {
                let waiting = self.waiting.entry(node.to_string()).or_default();
                if sign > 0 {
                    waiting.push(placed.clone());
                } else {
                    waiting.retain(|p| p.uid != placed.uid);
                }
            }
        }
        let groups = self.by_labels.entry(placed.namespace.clone()).or_default();
        if groups.entry(placed.labels.clone()).or_default().count_node(node, sign) {
            groups.remove(&placed.labels);
        }
        for term in &placed.terms {
            if self.terms.entry(term.clone()).or_default().count_node(node, sign) {
                self.terms.remove(term);
            }
        }
        if let Some(at) = at {
            let labels = self.nodes[at].node.metadata.labels.clone().unwrap_or_default();
            self.count_domains(placed, &labels, sign);
        }
    }

    /// Counts a pod more or less in the domains of a node with these labels.
    fn count_domains(&mut self, placed: &Placed, labels: &Labels, sign: i64) {
        if let Some(group) = self.by_labels.get_mut(&placed.namespace).and_then(|g| g.get_mut(&placed.labels)) {
            group.count_domains(labels, &self.keys, sign);
        }
        for term in &placed.terms {
            if let Some(group) = self.terms.get_mut(term) {
                group.count_domains(labels, &self.keys, sign);
            }
        }
    }

    /// A node's labels change (or it comes or goes): its pods move between domains.
    fn relabel(&mut self, at: usize, old: Option<&Labels>, new: Option<&Labels>) {
        let pods = self.nodes[at].pods.clone();
        for (labels, sign) in [(old, -1), (new, 1)] {
            let Some(labels) = labels else { continue };
            for placed in &pods {
                self.count_domains(placed, labels, sign);
            }
            for key in &self.keys {
                if let Some(domain) = labels.get(key) {
                    let nodes = self.domains.entry(key.clone()).or_default();
                    let n = nodes.entry(domain.clone()).or_default();
                    *n = (*n as i64 + sign).max(0) as usize;
                    if *n == 0 {
                        nodes.remove(domain);
                    }
                }
            }
        }
    }

    /// Starts counting pods by a topology key (once; later calls cost nothing).
    pub fn track(&mut self, key: &str) {
        if !self.keys.insert(key.to_string()) {
            return;
        }
        let nodes = &self.nodes;
        for group in self.by_labels.values_mut().flat_map(|g| g.values_mut()).chain(self.terms.values_mut()) {
            group.track(key, |name| labels_of(nodes, name));
        }
        let mut domains: HashMap<String, usize> = HashMap::new();
        for node in nodes {
            if let Some(domain) = node.labels().get(key) {
                *domains.entry(domain.clone()).or_default() += 1;
            }
        }
        self.domains.insert(key.to_string(), domains);
    }

    /// The domains of a tracked key, with how many nodes each has.
    pub fn domains(&self, key: &str) -> Option<&HashMap<String, usize>> {
        self.domains.get(key)
    }

    /// The groups of placed pods the selector picks, among the namespaces `covers` accepts.
    pub fn selected<'a>(
        &'a self,
        covers: impl Fn(&str) -> bool + 'a,
        selector: &'a Selector,
    ) -> impl Iterator<Item = &'a Group> + 'a {
        self.by_labels
            .iter()
            .filter(move |(ns, _)| covers(ns))
            .flat_map(|(_, groups)| groups.iter())
            .filter(move |(labels, _)| selector.matches(labels))
            .map(|(_, group)| group)
    }

    /// The affinity terms of placed pods, each with the pods carrying it.
    pub fn placed_terms(&self) -> impl Iterator<Item = (&Term, &Group)> {
        self.terms.iter()
    }

    /// On how many nodes an image (normalized) is present.
    pub fn image_spread(&self, image: &str) -> usize {
        self.image_spread.get(image).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_are_normalized_as_nodes_report_them() {
        assert_eq!(normalize_image("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalize_image("nginx:1.27"), "docker.io/library/nginx:1.27");
        assert_eq!(normalize_image("bitnami/redis"), "docker.io/bitnami/redis:latest");
        assert_eq!(normalize_image("registry.k8s.io/pause:3.10"), "registry.k8s.io/pause:3.10");
        assert_eq!(normalize_image("localhost:5000/app"), "localhost:5000/app:latest");
    }
}
