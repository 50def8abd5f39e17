//! Preemption (kube-scheduler's DefaultPreemption PostFilter): when a pod fits nowhere,
//! find a node where removing pods of lower priority would let it fit. On each candidate
//! node every lower-priority pod is removed, then as many as possible are given back
//! (those whose disruption budget forbids eviction first, then by priority, highest
//! first); the rest are the victims. The node chosen has the fewest budget violations, then
//! the lowest highest-priority victim, the lowest sum of priorities and the fewest victims.

use crate::algorithm::{Diagnosis, filter, pre_filter};
use crate::cache::{Cache, Placed};
use crate::config::Profile;
use crate::framework::PodInfo;
use crate::selector::Selector;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct Nomination {
    pub node: String,
    pub victims: Vec<Arc<Placed>>,
}

struct Candidate {
    node: String,
    victims: Vec<Arc<Placed>>,
    violations: usize,
}

impl Candidate {
    /// Smaller is better, in kube-scheduler's order of criteria.
    fn rank(&self) -> (usize, i32, i64, usize) {
        let highest = self.victims.iter().map(|v| v.priority).max().unwrap_or(i32::MIN);
        let sum: i64 = self.victims.iter().map(|v| i64::from(v.priority) + i64::from(i32::MAX) + 1).sum();
        (self.violations, highest, sum, self.victims.len())
    }
}

const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

fn fits(profile: &Profile, cache: &Cache, pod: &mut PodInfo, node: &str) -> bool {
    let Some(info) = cache.node(node) else { return false };
    pre_filter(profile, pod, cache).is_ok_and(|filters| filter(&filters, pod, info).is_ok())
}

/// Disruptions each budget still allows, by (namespace, name), with its selector.
fn budgets(cache: &Cache) -> Vec<((String, String), Selector, i64)> {
    cache
        .budgets
        .iter()
        .map(|(key, pdb)| {
            let selector = Selector::new(pdb.spec.as_ref().and_then(|s| s.selector.as_ref()));
            let allowed = pdb.status.as_ref().map_or(0, |s| i64::from(s.disruptions_allowed.unwrap_or(0)));
            (key.clone(), selector, allowed)
        })
        .collect()
}

/// Whether evicting the pod would break a budget, counting the budget down if not.
fn violates(budgets: &mut [((String, String), Selector, i64)], victim: &Placed) -> bool {
    let mut violates = false;
    for ((namespace, _), selector, allowed) in budgets.iter_mut() {
        if *namespace == victim.namespace && selector.matches(&victim.labels) {
            *allowed -= 1;
            violates |= *allowed < 0;
        }
    }
    violates
}

/// The victims that would let the pod fit on `node`, if any.
fn victims_on(profile: &Profile, cache: &mut Cache, pod: &mut PodInfo, node: &str) -> Option<Candidate> {
    let mut lower: Vec<Arc<Placed>> =
        cache.node(node)?.pods.iter().filter(|p| p.priority < pod.priority).cloned().collect();
    if lower.is_empty() {
        return None;
    }
    for victim in &lower {
        cache.forget(&victim.uid);
    }
    let restore = |cache: &mut Cache, pods: &[Arc<Placed>]| {
        for p in pods {
            cache.place(p.pod.clone(), &p.node);
        }
    };
    if !fits(profile, cache, pod, node) {
        restore(cache, &lower);
        return None;
    }
    let mut budgets = budgets(cache);
    lower.sort_by_key(|p| std::cmp::Reverse(p.priority));
    let (breaking, keeping): (Vec<_>, Vec<_>) = lower.into_iter().partition(|p| violates(&mut budgets.clone(), p));
    let mut victims = Vec::new();
    let mut violations = 0;
    for (group, breaks) in [(breaking, true), (keeping, false)] {
        for p in group {
            cache.place(p.pod.clone(), &p.node);
            if !fits(profile, cache, pod, node) {
                cache.forget(&p.uid);
                violations += usize::from(breaks && violates(&mut budgets, &p));
                victims.push(p);
            }
        }
    }
    restore(cache, &victims);
    Some(Candidate { node: node.to_string(), victims, violations })
}

/// Finds the node to nominate and the pods to evict there, or says why there is none in
/// the form that follows "preemption: " in the FailedScheduling message.
pub fn preempt(
    profile: &Profile,
    cache: &mut Cache,
    pod: &mut PodInfo,
    diagnosis: &Diagnosis,
) -> Result<Nomination, String> {
    let spec = pod.spec();
    if spec.preemption_policy.as_deref() == Some("Never") {
        return Err("not eligible due to preemptionPolicy=Never.".into());
    }
    let nominated = pod.pod.status.as_ref().and_then(|s| s.nominated_node_name.clone());
    if let Some(node) = nominated.as_deref().and_then(|n| cache.node(n))
        && node.pods.iter().any(|p| p.terminating() && p.priority < pod.priority)
    {
        return Err("not eligible due to a terminating pod on the nominated node.".into());
    }
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let mut candidates = Vec::new();
    for (node, reject) in &diagnosis.rejected {
        if !reject.resolvable {
            *reasons.entry(NOT_HELPFUL).or_default() += 1;
            continue;
        }
        match victims_on(profile, cache, pod, node) {
            Some(candidate) => candidates.push(candidate),
            None => *reasons.entry(NO_VICTIMS).or_default() += 1,
        }
    }
    match candidates.into_iter().min_by_key(Candidate::rank) {
        Some(best) => Ok(Nomination { node: best.node, victims: best.victims }),
        None => {
            let mut parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
            parts.sort();
            Err(format!("0/{} nodes are available: {}.", diagnosis.nodes, parts.join(", ")))
        }
    }
}

/// Acts on a nomination: the preemptor's status names the node, and each victim is marked
/// with a DisruptionTarget condition, gets a Preempted event, and is deleted gracefully.
pub async fn carry_out(client: kube::Client, scheduler: String, pod: Arc<Pod>, nomination: Nomination) {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let nominated = json!({"status": {"nominatedNodeName": nomination.node}});
    if let Err(e) = pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(nominated)).await {
        tracing::warn!(pod = name, error = %e, "could not set nominatedNodeName");
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for victim in &nomination.victims {
        let victim_name = victim.pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client.clone(), &victim.namespace);
        let condition = json!({"status": {"conditions": [{"type": "DisruptionTarget", "status": "True",
            "reason": "PreemptionByScheduler", "lastTransitionTime": now,
            "message": format!("{scheduler}: preempting to accommodate a higher priority pod")}]}});
        if let Err(e) = api.patch_status(&victim_name, &PatchParams::default(), &Patch::Strategic(condition)).await {
            tracing::debug!(pod = victim_name, error = %e, "could not mark the victim");
        }
        let message =
            format!("Preempted by pod {} on node {}", pod.metadata.uid.as_deref().unwrap_or(""), nomination.node);
        crate::report::event(&client, &scheduler, &victim.pod, "Normal", "Preempted", &message).await;
        match api.delete(&victim_name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => tracing::warn!(pod = victim_name, error = %e, "could not delete a preemption victim"),
        }
    }
}
