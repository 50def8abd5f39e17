//! LimitRanges: a Container item's defaults are completed as Kubernetes completes them, so
//! that what the LimitRanger admission applies is what `kubectl describe limitrange`
//! shows: a missing default limit is the max, a missing default request is the default
//! limit, or else the min.

use crate::strategy::Strategy;
use k8s_openapi::api::core::v1::{LimitRange, LimitRangeItem};

pub struct LimitRangeStrategy;

fn default_container_item(item: &mut LimitRangeItem) {
    let default = item.default.get_or_insert_with(Default::default);
    for (name, max) in item.max.iter().flatten() {
        default.entry(name.clone()).or_insert_with(|| max.clone());
    }
    let default_request = item.default_request.get_or_insert_with(Default::default);
    for (name, limit) in default.iter() {
        default_request.entry(name.clone()).or_insert_with(|| limit.clone());
    }
    for (name, min) in item.min.iter().flatten() {
        default_request.entry(name.clone()).or_insert_with(|| min.clone());
    }
}

impl Strategy for LimitRangeStrategy {
    type Object = LimitRange;

    fn apply_defaults(&self, range: &mut LimitRange) {
        let items = range.spec.iter_mut().flat_map(|s| s.limits.iter_mut());
        items.filter(|item| item.type_ == "Container").for_each(default_container_item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn container_defaults_come_from_max_default_and_min() {
        let mut range: LimitRange = serde_json::from_value(json!({"spec": {"limits": [
            {"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}, "min": {"cpu": "100m", "ephemeral-storage": "1Mi"}, "default": {"memory": "512Mi"}},
            {"type": "Pod", "max": {"cpu": "4"}}]}}))
        .unwrap();
        LimitRangeStrategy.apply_defaults(&mut range);
        let value = serde_json::to_value(&range).unwrap();
        assert_eq!(value["spec"]["limits"][0]["default"], json!({"cpu": "2", "memory": "512Mi"}));
        assert_eq!(
            value["spec"]["limits"][0]["defaultRequest"],
            json!({"cpu": "2", "memory": "512Mi", "ephemeral-storage": "1Mi"})
        );
        assert!(value["spec"]["limits"][1].get("default").is_none());
    }
}
