//! A pod's requests and limits as Kubernetes totals them for quota and LimitRange: its
//! containers and sidecars together, or more if an init container (with the sidecars
//! started before it) needs more, plus the pod's overhead.

use crate::resource_list::{self, ResourceList};
use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

/// Which list of a container's resources to total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Requests,
    Limits,
}

impl Side {
    pub fn of(self, resources: &ResourceRequirements) -> Option<&BTreeMap<String, Quantity>> {
        match self {
            Side::Requests => resources.requests.as_ref(),
            Side::Limits => resources.limits.as_ref(),
        }
    }
}

/// One container's requests or limits.
pub fn container(c: &Container, side: Side) -> ResourceList {
    c.resources.as_ref().and_then(|r| side.of(r)).map(resource_list::from_api).unwrap_or_default()
}

fn max_into(peak: &mut ResourceList, other: &ResourceList) {
    for (name, amount) in other {
        let entry = peak.entry(name.clone()).or_insert(*amount);
        if amount.milli > entry.milli {
            *entry = *amount;
        }
    }
}

/// The pod's total requests or limits.
pub fn pod(spec: &PodSpec, side: Side) -> ResourceList {
    let mut total = ResourceList::new();
    for c in &spec.containers {
        resource_list::add(&mut total, &container(c, side));
    }
    let mut sidecars = ResourceList::new();
    let mut init_peak = ResourceList::new();
    for c in spec.init_containers.iter().flatten() {
        let own = container(c, side);
        if c.restart_policy.as_deref() == Some("Always") {
            resource_list::add(&mut sidecars, &own);
            max_into(&mut init_peak, &sidecars);
        } else {
            let mut during = sidecars.clone();
            resource_list::add(&mut during, &own);
            max_into(&mut init_peak, &during);
        }
    }
    resource_list::add(&mut total, &sidecars);
    max_into(&mut total, &init_peak);
    if let Some(overhead) = &spec.overhead {
        resource_list::add(&mut total, &resource_list::from_api(overhead));
    }
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
                           {"name": "b", "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}}],
            "initContainers": [{"name": "big", "resources": {"requests": {"cpu": "2"}}},
                               {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}}],
            "overhead": {"cpu": "10m"},
        }))
        .unwrap();
        let requests = pod(&spec, Side::Requests);
        // max(500m + 250m + 100m sidecar, 2 for the init container) + 10m overhead.
        assert_eq!(requests["cpu"].to_string(), "2010m");
        assert_eq!(requests["memory"].to_string(), "1Gi");
        assert_eq!(pod(&spec, Side::Limits)["memory"].to_string(), "2Gi");
    }
}
