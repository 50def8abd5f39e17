//! One scheduling decision, as kube-scheduler makes it: PreFilter once, then Filter nodes
//! round-robin from where the last search stopped until enough feasible ones are found
//! (percentageOfNodesToScore), then PreScore, Score, normalize and weigh, and take the best
//! (a random one among equals).

use crate::cache::{Cache, NodeInfo};
use crate::config::Profile;
use crate::framework::{Applies, Filter, PodInfo, Reject};
use std::collections::{BTreeMap, HashSet};

/// Why a pod fits nowhere: each node's first rejection, or one for all nodes.
pub struct Diagnosis {
    pub nodes: usize,
    /// Node name and why it was refused, for every node.
    pub rejected: Vec<(String, Reject)>,
    /// The plugins that refused nodes.
    pub plugins: HashSet<&'static str>,
}

impl Diagnosis {
    /// Whether placing other pods may let the pod fit: it was refused for affinity or spread.
    pub fn waits_for_pods(&self) -> bool {
        self.plugins.contains("InterPodAffinity") || self.plugins.contains("PodTopologySpread")
    }

    /// How many nodes were refused for each reason.
    pub fn reasons(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (_, reject) in &self.rejected {
            *counts.entry(reject.reason.to_string()).or_default() += 1;
        }
        counts
    }
}

/// How many feasible nodes to find before choosing: a configured percentage, or
/// kube-scheduler's adaptive one (50% less 1% per 125 nodes, at least 5%); never fewer than
/// 100, and all of a small cluster.
pub fn feasible_nodes_to_find(nodes: usize, percentage: Option<u32>) -> usize {
    if nodes < 100 || percentage == Some(100) {
        return nodes.max(1);
    }
    let percentage = percentage.map_or_else(|| (50 - nodes as i64 / 125).max(5) as usize, |p| p as usize);
    (nodes * percentage / 100).max(100)
}

/// The filters that apply to one pod, after their PreFilter.
pub type Filters<'a> = Vec<&'a dyn Filter>;

/// Runs every PreFilter and returns the filters with something to check; an `Err` rejects
/// the pod on every node, and names the plugin.
pub fn pre_filter<'a>(
    profile: &'a Profile,
    pod: &mut PodInfo,
    cache: &Cache,
) -> Result<Filters<'a>, (&'static str, Reject)> {
    let mut applying = Vec::with_capacity(profile.filters.len());
    for f in &profile.filters {
        if f.pre_filter(pod, cache).map_err(|r| (f.name(), r))? == Applies::Yes {
            applying.push(f.as_ref());
        }
    }
    Ok(applying)
}

/// Runs the filters until one refuses the node, and names it.
pub fn filter(filters: &Filters, pod: &PodInfo, node: &NodeInfo) -> Result<(), (&'static str, Reject)> {
    filters.iter().try_for_each(|f| f.filter(pod, node).map_err(|r| (f.name(), r)))
}

/// A small random number source for tie breaks, seeded from the clock.
pub struct Rng(u64);

impl Default for Rng {
    fn default() -> Self {
        let seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        Rng(seed | 1)
    }
}

impl Rng {
    pub fn below(&mut self, n: usize) -> usize {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Chooses a node for the pod, searching from `start`; returns the node's name and where
/// the next search should start.
pub fn choose(
    profile: &Profile,
    cache: &Cache,
    pod: &mut PodInfo,
    start: usize,
    rng: &mut Rng,
) -> (Result<String, Diagnosis>, usize) {
    let total = cache.nodes.len();
    let filters = match pre_filter(profile, pod, cache) {
        Ok(filters) => filters,
        Err((plugin, reject)) => {
            let rejected = cache.nodes.iter().map(|n| (n.name.clone(), reject.clone())).collect();
            return (Err(Diagnosis { nodes: total, rejected, plugins: HashSet::from([plugin]) }), start);
        }
    };
    let wanted = feasible_nodes_to_find(total, profile.percentage_of_nodes_to_score);
    let mut feasible: Vec<&NodeInfo> = Vec::new();
    let mut rejected = Vec::new();
    let mut plugins = HashSet::new();
    let mut refuse = |node: &NodeInfo, (plugin, reject): (&'static str, Reject)| {
        plugins.insert(plugin);
        rejected.push((node.name.clone(), reject));
    };
    let mut next = start;
    match &pod.state.node_names {
        // Node affinity names the only candidates: look at those alone.
        Some(names) => {
            for node in names.iter().filter_map(|n| cache.node(n)) {
                match filter(&filters, pod, node) {
                    Ok(()) => feasible.push(node),
                    Err(why) => refuse(node, why),
                }
            }
            if feasible.is_empty() {
                let elsewhere = Reject::unresolvable("node(s) didn't match Pod's node affinity/selector");
                for node in cache.nodes.iter().filter(|n| !names.contains(&n.name)) {
                    refuse(node, ("NodeAffinity", elsewhere.clone()));
                }
            }
        }
        None => {
            let start = start % total.max(1);
            let mut visited = 0;
            for node in cache.nodes[start..].iter().chain(&cache.nodes[..start]) {
                visited += 1;
                match filter(&filters, pod, node) {
                    Ok(()) => {
                        feasible.push(node);
                        if feasible.len() >= wanted {
                            break;
                        }
                    }
                    Err(why) => refuse(node, why),
                }
            }
            next = start + visited;
        }
    }
    match feasible.len() {
        0 => (Err(Diagnosis { nodes: total, rejected, plugins }), next),
        1 => (Ok(feasible[0].name.clone()), next),
        _ => (Ok(best(profile, cache, pod, &feasible, rng)), next),
    }
}

/// Scores the feasible nodes with every score plugin and returns the best one's name.
fn best(profile: &Profile, cache: &Cache, pod: &mut PodInfo, feasible: &[&NodeInfo], rng: &mut Rng) -> String {
    let mut totals = vec![0i64; feasible.len()];
    let mut scores = vec![0i64; feasible.len()];
    for (plugin, weight) in &profile.scores {
        // A plugin that ranks every node alike changes nothing.
        if plugin.pre_score(pod, cache, feasible) == Applies::Skip {
            continue;
        }
        for (score, node) in scores.iter_mut().zip(feasible) {
            *score = plugin.score(pod, node);
        }
        plugin.normalize(&mut scores);
        for (total, score) in totals.iter_mut().zip(&scores) {
            *total += score * weight;
        }
    }
    // The highest total; among equals, each is as likely (reservoir sampling).
    let mut best = 0;
    let mut ties = 0;
    for (i, total) in totals.iter().enumerate() {
        if *total > totals[best] {
            best = i;
            ties = 1;
        } else if *total == totals[best] {
            ties += 1;
            if rng.below(ties) == 0 {
                best = i;
            }
        }
    }
    feasible[best].name.clone()
}

#[cfg(test)]
mod tests {
    use super::feasible_nodes_to_find;

    #[test]
    fn sampling_follows_kube_scheduler() {
        assert_eq!(feasible_nodes_to_find(50, None), 50);
        assert_eq!(feasible_nodes_to_find(1000, None), 420);
        assert_eq!(feasible_nodes_to_find(5000, None), 500);
        assert_eq!(feasible_nodes_to_find(200, None), 100);
        assert_eq!(feasible_nodes_to_find(5000, Some(10)), 500);
        assert_eq!(feasible_nodes_to_find(5000, Some(100)), 5000);
    }
}
