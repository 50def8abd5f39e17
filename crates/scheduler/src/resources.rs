//! Resource quantities as the scheduler counts them, and a pod's requests as Kubernetes
//! totals them.

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

pub use quota::quantity::milli;

/// What a pod requests or a node offers, as the scheduler compares them: cpu in millicores,
/// everything else in whole units rounded up (bytes for memory), as Kubernetes counts them.
/// The common resources are fields, so that checking a node costs no lookups.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resources {
    pub cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Extended resources (`nvidia.com/gpu`, `hugepages-2Mi`, ...), by name.
    pub extended: Vec<(String, i64)>,
}

impl Resources {
    /// From a resource list (`requests`, `limits`, `allocatable`); `pods` is left out.
    pub fn from_list<'a>(list: impl IntoIterator<Item = (&'a String, &'a Quantity)>) -> Resources {
        let mut out = Resources::default();
        for (name, q) in list {
            let Some(thousandths) = milli(&q.0) else { continue };
            let whole = ((thousandths + 999).div_euclid(1000)) as i64;
            match name.as_str() {
                "cpu" => out.cpu = thousandths as i64,
                "memory" => out.memory = whole,
                "ephemeral-storage" => out.ephemeral_storage = whole,
                "pods" => {}
                _ => out.set(name, whole),
            }
        }
        out
    }

    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            _ => self.extended.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v),
        }
    }

    fn set(&mut self, name: &str, value: i64) {
        match self.extended.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.extended.push((name.to_string(), value)),
        }
    }

    /// Adds `other` times `sign` (1 to add, -1 to take away).
    pub fn add(&mut self, other: &Resources, sign: i64) {
        self.cpu += sign * other.cpu;
        self.memory += sign * other.memory;
        self.ephemeral_storage += sign * other.ephemeral_storage;
        for (name, v) in &other.extended {
            let total = self.get(name) + sign * v;
            self.set(name, total);
        }
    }

    fn max_with(&mut self, other: &Resources) {
        self.cpu = self.cpu.max(other.cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (name, v) in &other.extended {
            let most = self.get(name).max(*v);
            self.set(name, most);
        }
    }

    /// Each resource this asks for, with its amount (zero amounts left out).
    pub fn each(&self) -> impl Iterator<Item = (&str, i64)> {
        [("cpu", self.cpu), ("memory", self.memory), ("ephemeral-storage", self.ephemeral_storage)]
            .into_iter()
            .chain(self.extended.iter().map(|(n, v)| (n.as_str(), *v)))
            .filter(|(_, v)| *v > 0)
    }
}

/// Requests kube-scheduler's scores assume for a container that states none: 100m cpu and
/// 200Mi memory, so that pods without requests still weigh on a node.
const SCORING_DEFAULT_CPU: i64 = 100;
const SCORING_DEFAULT_MEMORY: i64 = 200 * 1024 * 1024;

fn container_requests(c: &Container, scoring: bool) -> Resources {
    let resources = c.resources.as_ref();
    // A limit without a request is also the request, as Kubernetes defaults it.
    let limits = resources.and_then(|r| r.limits.as_ref());
    let requests = resources.and_then(|r| r.requests.as_ref());
    let mut out = Resources::from_list(limits.into_iter().flatten().chain(requests.into_iter().flatten()));
    if scoring {
        let states = |name: &str| [limits, requests].into_iter().flatten().any(|list| list.contains_key(name));
        if !states("cpu") {
            out.cpu = SCORING_DEFAULT_CPU;
        }
        if !states("memory") {
            out.memory = SCORING_DEFAULT_MEMORY;
        }
    }
    out
}

/// What a pod requests of a node: its containers and sidecars together, or more if an init
/// container (with the sidecars started before it) needs more; plus the pod's overhead.
pub fn pod_requests(spec: &PodSpec) -> Resources {
    total_requests(spec, false)
}

/// The pod's cpu and memory as kube-scheduler's resource scores count them: like
/// [`pod_requests`], with each container that states no cpu or memory counted at the
/// scoring defaults.
pub fn scoring_requests(spec: &PodSpec) -> [i64; 2] {
    let total = total_requests(spec, true);
    [total.cpu, total.memory]
}

fn total_requests(spec: &PodSpec, scoring: bool) -> Resources {
    let mut total = Resources::default();
    for c in &spec.containers {
        total.add(&container_requests(c, scoring), 1);
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let requests = container_requests(c, scoring);
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&requests, 1);
            init_peak.max_with(&sidecars);
        } else {
            let mut during = sidecars.clone();
            during.add(&requests, 1);
            init_peak.max_with(&during);
        }
    }
    total.add(&sidecars, 1);
    total.max_with(&init_peak);
    total.add(&Resources::from_list(spec.overhead.iter().flatten()), 1);
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn init_containers_and_sidecars_count_as_kubernetes_counts_them() {
        let spec: PodSpec = serde_json::from_value(json!({
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "500m"}}},
                           {"name": "b", "resources": {"limits": {"cpu": "250m", "memory": "1Gi"}}}],
            "initContainers": [{"name": "big", "resources": {"requests": {"cpu": "2"}}},
                               {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}}],
            "overhead": {"cpu": "10m"},
        }))
        .unwrap();
        let r = pod_requests(&spec);
        // max(500m + 250m + 100m sidecar, 2 for the init container) + 10m overhead.
        assert_eq!(r.cpu, 2010);
        assert_eq!(r.memory, 1024 * 1024 * 1024);
        // For scores, `a` and the sidecar state no memory and count 200Mi each.
        assert_eq!(scoring_requests(&spec), [2010, (1024 + 400) * 1024 * 1024]);
    }
}
