//! Resource quantities as the scheduler counts them: every quantity in thousandths (cpu in
//! millicores, memory in milli-bytes), and a pod's requests as Kubernetes totals them.

use k8s_openapi::api::core::v1::{Container, PodSpec};
use std::collections::BTreeMap;

/// Parses a Kubernetes quantity (`100m`, `0.5`, `2`, `128Mi`, `1G`, `1e3`) into thousandths.
pub fn milli(quantity: &str) -> Option<i128> {
    let q = quantity.trim();
    let split = q.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+')).unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let negative = whole.starts_with('-');
    let whole: i128 = whole.trim_start_matches(['-', '+']).parse().unwrap_or(0);
    // Thousandths of the number itself, rounded up as Kubernetes rounds.
    let frac_digits: String = frac.chars().take(9).collect();
    let frac_milli = if frac_digits.is_empty() {
        0
    } else {
        let scale = 10i128.pow(frac_digits.len() as u32);
        let f: i128 = frac_digits.parse().ok()?;
        (f * 1000 + scale - 1) / scale
    };
    let base = whole * 1000 + frac_milli;
    let scaled = match suffix {
        "" => base,
        "m" => (base + 999) / 1000,
        "k" => base * 1_000,
        "M" => base * 1_000_000,
        "G" => base * 1_000_000_000,
        "T" => base * 1_000_000_000_000,
        "P" => base * 1_000_000_000_000_000,
        "Ki" => base << 10,
        "Mi" => base << 20,
        "Gi" => base << 30,
        "Ti" => base << 40,
        "Pi" => base << 50,
        "Ei" => base << 60,
        s if s.starts_with(['e', 'E']) => base * 10i128.checked_pow(s[1..].parse().ok()?)?,
        _ => return None,
    };
    Some(if negative { -scaled } else { scaled })
}

/// Resource name to amount, in thousandths.
pub type Resources = BTreeMap<String, i128>;

fn container_requests(c: &Container) -> Resources {
    let mut out = Resources::new();
    let resources = c.resources.as_ref();
    // A limit without a request is also the request, as Kubernetes defaults it.
    for list in [resources.and_then(|r| r.limits.as_ref()), resources.and_then(|r| r.requests.as_ref())].into_iter().flatten() {
        for (name, q) in list {
            if let Some(v) = milli(&q.0) {
                out.insert(name.clone(), v);
            }
        }
    }
    out
}

fn add(into: &mut Resources, from: &Resources) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

fn max_into(into: &mut Resources, from: &Resources) {
    for (k, v) in from {
        let e = into.entry(k.clone()).or_default();
        *e = (*e).max(*v);
    }
}

/// What a pod requests of a node: its containers and sidecars together, or more if an init
/// container (with the sidecars started before it) needs more; plus the pod's overhead.
pub fn pod_requests(spec: &PodSpec) -> Resources {
    let mut total = Resources::new();
    for c in &spec.containers {
        add(&mut total, &container_requests(c));
    }
    let mut sidecars = Resources::new();
    let mut init_peak = Resources::new();
    for c in spec.init_containers.iter().flatten() {
        let requests = container_requests(c);
        if c.restart_policy.as_deref() == Some("Always") {
            add(&mut sidecars, &requests);
            max_into(&mut init_peak, &sidecars);
        } else {
            let mut during = sidecars.clone();
            add(&mut during, &requests);
            max_into(&mut init_peak, &during);
        }
    }
    add(&mut total, &sidecars);
    max_into(&mut total, &init_peak);
    for (name, q) in spec.overhead.iter().flatten() {
        if let Some(v) = milli(&q.0) {
            *total.entry(name.clone()).or_default() += v;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_parse_to_thousandths() {
        assert_eq!(milli("100m"), Some(100));
        assert_eq!(milli("0.5"), Some(500));
        assert_eq!(milli("2"), Some(2000));
        assert_eq!(milli("1Ki"), Some(1024 * 1000));
        assert_eq!(milli("128Mi"), Some(128 * 1024 * 1024 * 1000));
        assert_eq!(milli("1G"), Some(1_000_000_000_000));
        assert_eq!(milli("1e3"), Some(1_000_000));
        assert_eq!(milli("1.5Gi"), Some(1536 * 1024 * 1024 * 1000));
        assert_eq!(milli("bogus"), None);
    }

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
        assert_eq!(r["cpu"], 2010);
        assert_eq!(r["memory"], 1024 * 1024 * 1024 * 1000);
    }
}
