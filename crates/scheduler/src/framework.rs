//! The plugin interfaces, in the spirit of kube-scheduler's framework. A filter may look at
//! the whole cluster once per pod (PreFilter), then says whether the pod may go on each
//! node and, if not, why in kube-scheduler's words. A score may prepare once over the
//! feasible nodes (PreScore), ranks each node, and normalizes its ranks to 0..=100.

use crate::cache::{Cache, NodeInfo};
use crate::plugins::{inter_pod_affinity, pod_topology_spread};
use crate::resources::{Resources, pod_requests, scoring_requests};
use crate::selector::Labels;
use crate::terms::{Term, pod_terms};
use k8s_openapi::api::core::v1::{NodeSelector, Pod, PodSpec};
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

/// (protocol, hostIP, hostPort) of a container port bound on the host.
pub type HostPort = (String, String, i32);

/// What the scheduler reads from a pod, computed once: for a pod being scheduled
/// ([`PodInfo`]) and for one counted on a node ([`crate::cache::Placed`]).
pub struct PodFacts {
    pub pod: Arc<Pod>,
    pub uid: String,
    pub namespace: String,
    pub labels: Labels,
    pub requests: Resources,
    /// cpu and memory as the resource scores count them ([`scoring_requests`]).
    pub scoring_requests: [i64; 2],
    pub host_ports: Vec<HostPort>,
    pub priority: i32,
    pub terms: Vec<Term>,
}

impl PodFacts {
    pub fn new(pod: Arc<Pod>) -> PodFacts {
        let spec = pod.spec.as_ref();
        PodFacts {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            requests: spec.map(pod_requests).unwrap_or_default(),
            scoring_requests: spec.map(scoring_requests).unwrap_or_default(),
            host_ports: host_ports(&pod),
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            terms: pod_terms(&pod),
            pod,
        }
    }
}

/// A pod being scheduled, with what the plugins find about it during one decision.
pub struct PodInfo {
    pub facts: PodFacts,
    /// What PreFilter and PreScore found, for Filter and Score.
    pub state: CycleState,
}

impl std::ops::Deref for PodInfo {
    type Target = PodFacts;

    fn deref(&self) -> &PodFacts {
        &self.facts
    }
}

/// The per-pod results of the plugins' cluster-wide passes.
#[derive(Default)]
pub struct CycleState {
    /// The only nodes the pod may go to, when its node affinity names them.
    pub node_names: Option<HashSet<String>>,
    pub spread: pod_topology_spread::State,
    pub affinity: inter_pod_affinity::State,
    /// The required node affinity of each bound volume the pod uses.
    pub volume_node_affinity: Vec<NodeSelector>,
    /// The pod's images (normalized) with the share of nodes that hold each.
    pub images: Vec<(String, f64)>,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        PodInfo { facts: PodFacts::new(pod), state: CycleState::default() }
    }

    /// The topology keys the pod's affinity terms and spread constraints count pods by.
    pub fn topology_keys(&self) -> Vec<String> {
        let terms = self.terms.iter().map(|t| t.topology_key.clone());
        terms.chain(pod_topology_spread::keys(self).map(String::from)).collect()
    }

    pub fn spec(&self) -> &PodSpec {
        static EMPTY: std::sync::OnceLock<PodSpec> = std::sync::OnceLock::new();
        self.pod.spec.as_ref().unwrap_or_else(|| EMPTY.get_or_init(PodSpec::default))
    }
}

pub fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let spec = pod.spec.as_ref();
    let containers = spec.into_iter().flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()));
    containers
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|p| *p > 0)?;
            let ip = p.host_ip.clone().filter(|ip| !ip.is_empty()).unwrap_or_else(|| "0.0.0.0".into());
            Some((p.protocol.clone().unwrap_or_else(|| "TCP".into()), ip, port))
        })
        .collect()
}

/// Why a pod may not go on a node.
#[derive(Clone, Debug, PartialEq)]
pub struct Reject {
    /// Counted per node in the FailedScheduling message (`Insufficient cpu`).
    pub reason: Cow<'static, str>,
    /// Whether removing pods from the node could change the answer, so that preemption
    /// should consider the node.
    pub resolvable: bool,
}

impl Reject {
    /// A reason that removing pods could clear (resources, ports, anti-affinity).
    pub fn resolvable(reason: impl Into<Cow<'static, str>>) -> Reject {
        Reject { reason: reason.into(), resolvable: true }
    }

    /// A reason that holds whatever runs on the node (taints, labels).
    pub fn unresolvable(reason: impl Into<Cow<'static, str>>) -> Reject {
        Reject { reason: reason.into(), resolvable: false }
    }
}

/// Whether a plugin has anything to do for a pod (kube-scheduler's Skip status): a pod
/// without host ports needs no NodePorts check, one without affinity terms no
/// InterPodAffinity check or score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applies {
    Yes,
    Skip,
}

impl Applies {
    pub fn when(condition: bool) -> Applies {
        if condition { Applies::Yes } else { Applies::Skip }
    }
}

pub trait Filter: Send + Sync {
    fn name(&self) -> &'static str;
    /// Looks at the cluster once per pod, keeping what `filter` needs in `pod.state`, and
    /// says whether `filter` has anything to check. An `Err` means no node can take the
    /// pod, for that reason.
    fn pre_filter(&self, _pod: &mut PodInfo, _cache: &Cache) -> Result<Applies, Reject> {
        Ok(Applies::Yes)
    }
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Reject>;
}

pub trait Score: Send + Sync {
    fn name(&self) -> &'static str;
    /// Looks once at the feasible nodes before they are scored, and says whether scoring
    /// could tell them apart at all.
    fn pre_score(&self, _pod: &mut PodInfo, _cache: &Cache, _nodes: &[&NodeInfo]) -> Applies {
        Applies::Yes
    }
    /// A raw rank; higher is better.
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64;
    /// Brings the raw ranks of all feasible nodes to 0..=100; scores already there keep them.
    fn normalize(&self, _scores: &mut [i64]) {}
}

/// Scales scores to 0..=100 by the highest (kube-scheduler's DefaultNormalizeScore);
/// `reverse` turns the highest into 0, for scores that count what a pod dislikes.
pub fn normalize_by_max(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    for s in scores.iter_mut() {
        *s = match (max, reverse) {
            (0, true) => 100,
            (0, false) => 0,
            (max, true) => 100 - *s * 100 / max,
            (max, false) => *s * 100 / max,
        };
    }
}
