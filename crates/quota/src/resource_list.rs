//! Resource lists (`{"cpu": "500m", "pods": "2"}`) as quota arithmetic uses them: sums,
//! masks to the resources a quota names, the comparison against its limits, and the
//! `name=value,...` form Kubernetes' quota messages print.

use crate::quantity::Amount;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

/// Amounts by resource name, in name order (the order Kubernetes prints them in).
pub type ResourceList = BTreeMap<String, Amount>;

/// Reads an API resource list; quantities that do not parse (validation refuses them) are
/// left out.
pub fn from_api(list: &BTreeMap<String, Quantity>) -> ResourceList {
    list.iter().filter_map(|(name, q)| Some((name.clone(), Amount::parse(&q.0)?))).collect()
}

pub fn to_api(list: &ResourceList) -> BTreeMap<String, Quantity> {
    list.iter().map(|(name, amount)| (name.clone(), Quantity(amount.to_string()))).collect()
}

/// Adds `other` into `total`.
pub fn add(total: &mut ResourceList, other: &ResourceList) {
    for (name, amount) in other {
        let sum = total.get(name).copied().unwrap_or_default().plus(*amount);
        total.insert(name.clone(), sum);
    }
}

/// What `usage` uses beyond `before`, resource by resource; a resource it uses less of, or
/// no more of, is left out (an update is charged only for what it adds).
pub fn growth(usage: &ResourceList, before: &ResourceList) -> ResourceList {
    let grown = |(name, amount): (&String, &Amount)| {
        let was = before.get(name).map_or(0, |b| b.milli);
        (amount.milli > was).then(|| (name.clone(), Amount { milli: amount.milli - was, ..*amount }))
    };
    usage.iter().filter_map(grown).collect()
}

/// The entries of `list` whose names are keys of `names`.
pub fn mask<V>(list: &ResourceList, names: &BTreeMap<String, V>) -> ResourceList {
    list.iter().filter(|(name, _)| names.contains_key(*name)).map(|(n, a)| (n.clone(), *a)).collect()
}

/// The resources of `usage` that go over their limit in `hard` (those `hard` does not name
/// are not limited).
pub fn exceeded(usage: &ResourceList, hard: &ResourceList) -> Vec<String> {
    usage
        .iter()
        .filter(|(name, amount)| hard.get(*name).is_some_and(|limit| amount.milli > limit.milli))
        .map(|(n, _)| n.clone())
        .collect()
}

/// `pods=1,requests.cpu=500m`.
pub fn pretty(list: &ResourceList) -> String {
    list.iter().map(|(name, amount)| format!("{name}={amount}")).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[(&str, &str)]) -> ResourceList {
        entries.iter().map(|(n, q)| (n.to_string(), Amount::parse(q).unwrap())).collect()
    }

    #[test]
    fn growth_leaves_out_what_shrank_or_stayed() {
        let before = list(&[("services", "1"), ("services.nodeports", "2"), ("requests.storage", "5Gi")]);
        let after = list(&[("services", "1"), ("services.nodeports", "1"), ("requests.storage", "8Gi")]);
        assert_eq!(pretty(&growth(&after, &before)), "requests.storage=3Gi");
    }

    #[test]
    fn usage_over_a_limit_is_named_and_printed_in_order() {
        let mut used = list(&[("pods", "2"), ("requests.cpu", "500m")]);
        add(&mut used, &list(&[("pods", "1"), ("requests.cpu", "250m"), ("secrets", "1")]));
        let hard = list(&[("pods", "2"), ("requests.cpu", "1")]);
        assert_eq!(exceeded(&used, &hard), vec!["pods".to_string()]);
        assert_eq!(pretty(&mask(&used, &hard)), "pods=3,requests.cpu=750m");
    }
}
