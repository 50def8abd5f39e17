//! Pods counted by topology domain. Pod affinity and topology spread ask "how many pods of
//! this kind run in this node's zone (or on this host)?" for every node they look at; the
//! cache answers from counts kept per domain as pods come and go, so that a scheduling
//! decision costs a lookup per node rather than a pass over the pods.

use crate::selector::Labels;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Pods per domain (the value of one topology key on their nodes). Shared with the
/// decision in progress; a change while it holds them copies them.
pub type Domains = Arc<HashMap<String, i64>>;

/// Pods of one kind (one label set, or carrying one affinity term): how many on each node,
/// and how many in each domain of each topology key the scheduler has been asked about.
#[derive(Default)]
pub struct Group {
    pub nodes: HashMap<String, u32>,
    pub domains: HashMap<String, Domains>,
}

fn bump(counts: &mut HashMap<String, i64>, key: &str, by: i64) {
    let n = counts.entry(key.to_string()).or_default();
    *n += by;
    if *n == 0 {
        counts.remove(key);
    }
}

impl Group {
    /// Counts one pod more (`sign` 1) or less (-1) on a node; true when the group is empty.
    pub fn count_node(&mut self, node: &str, sign: i64) -> bool {
        let n = self.nodes.entry(node.to_string()).or_default();
        *n = (i64::from(*n) + sign).max(0) as u32;
        if *n == 0 {
            self.nodes.remove(node);
        }
        self.nodes.is_empty()
    }

    /// Counts one pod more or less in the domains of a node with these labels.
    pub fn count_domains(&mut self, labels: &Labels, keys: &HashSet<String>, sign: i64) {
        for key in keys {
            if let Some(domain) = labels.get(key) {
                bump(Arc::make_mut(self.domains.entry(key.clone()).or_default()), domain, sign);
            }
        }
    }

    /// Rebuilds the counts for a key not tracked before.
    pub fn track<'a>(&mut self, key: &str, labels_of: impl Fn(&str) -> Option<&'a Labels>) {
        let mut counts = HashMap::new();
        for (node, n) in &self.nodes {
            if let Some(domain) = labels_of(node).and_then(|l| l.get(key)) {
                bump(&mut counts, domain, i64::from(*n));
            }
        }
        self.domains.insert(key.to_string(), Arc::new(counts));
    }

    pub fn in_key(&self, key: &str) -> Option<Domains> {
        self.domains.get(key).filter(|d| !d.is_empty()).cloned()
    }
}

/// The pods counted in a domain, over several groups.
pub fn count(groups: &[Domains], domain: &str) -> i64 {
    groups.iter().filter_map(|g| g.get(domain)).sum()
}
