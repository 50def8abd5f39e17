//! `successPolicy` of Indexed Jobs: the Job succeeds as soon as one rule is met, by the
//! indexes that completed among those the rule lists (all of them, or `succeededCount` of
//! them), or by `succeededCount` completed indexes in all.

use super::{completions, indexes};
use k8s_openapi::api::batch::v1::Job;
use std::collections::BTreeSet;

/// The message of the SuccessCriteriaMet condition, if a rule is met.
pub fn met(job: &Job, completed: &BTreeSet<i32>) -> Option<String> {
    let policy = job.spec.as_ref()?.success_policy.as_ref()?;
    if completed.is_empty() {
        return None;
    }
    let total = completions(job).unwrap_or(0);
    let index = policy.rules.iter().position(|rule| {
        let wanted = rule.succeeded_count.map(|c| c.max(0) as usize);
        match &rule.succeeded_indexes {
            Some(listed) => {
                let listed: BTreeSet<i32> = indexes::parse(listed).into_iter().filter(|i| *i < total).collect();
                let done = listed.intersection(completed).count();
                !listed.is_empty() && (done == listed.len() || wanted.is_some_and(|n| done >= n))
            }
            None => wanted.is_some_and(|n| completed.len() >= n),
        }
    })?;
    Some(format!("Matched rules at index {index}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(rules: serde_json::Value) -> Job {
        serde_json::from_value(json!({"spec": {"template": {}, "completions": 10, "completionMode": "Indexed",
            "successPolicy": {"rules": rules}}}))
        .unwrap()
    }

    #[test]
    fn rules_are_met_by_listed_indexes_or_counts() {
        let job = job(json!([{"succeededIndexes": "0-2"}, {"succeededIndexes": "5-9", "succeededCount": 2},
                             {"succeededCount": 4}]));
        let set = |v: &[i32]| v.iter().copied().collect::<BTreeSet<i32>>();
        assert_eq!(met(&job, &set(&[])), None);
        assert_eq!(met(&job, &set(&[0, 1])), None);
        assert_eq!(met(&job, &set(&[0, 1, 2])).as_deref(), Some("Matched rules at index 0"));
        assert_eq!(met(&job, &set(&[1, 6, 9])).as_deref(), Some("Matched rules at index 1"));
        assert_eq!(met(&job, &set(&[0, 1, 3, 4])).as_deref(), Some("Matched rules at index 2"));
    }
}
