//! `podFailurePolicy`: what a failed pod means for its Job, decided by the first rule that
//! matches the exit code of one of its containers (non-zero only) or one of its conditions.

use k8s_openapi::api::batch::v1::{
    Job, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyOnPodConditionsPattern,
};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Counted towards backoffLimit (and backoffLimitPerIndex): no rule, or a Count rule.
    Count,
    /// Not counted; the pod is replaced.
    Ignore,
    /// The pod's index fails at once (with backoffLimitPerIndex).
    FailIndex,
    /// The whole Job fails, with this message.
    FailJob(String),
}

impl Verdict {
    pub fn counts(&self) -> bool {
        *self != Verdict::Ignore
    }
}

pub fn judge(job: &Job, pod: &Pod) -> Verdict {
    let Some(policy) = job.spec.as_ref().and_then(|s| s.pod_failure_policy.as_ref()) else {
        return Verdict::Count;
    };
    let (namespace, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
    for (index, rule) in policy.rules.iter().enumerate() {
        let action = rule.action.as_str();
        let matched = if let Some(codes) = &rule.on_exit_codes {
            exit_code_match(pod, codes).map(|(container, code)| {
                format!("Container {container} for pod {namespace}/{name} failed with exit code {code} matching {action} rule at index {index}")
            })
        } else {
            let patterns = rule.on_pod_conditions.as_deref().unwrap_or_default();
            condition_match(pod, patterns).map(|type_| {
                format!("Pod {namespace}/{name} has condition {type_} matching {action} rule at index {index}")
            })
        };
        let Some(message) = matched else { continue };
        match action {
            "Count" => return Verdict::Count,
            "Ignore" => return Verdict::Ignore,
            "FailIndex" => return Verdict::FailIndex,
            "FailJob" => return Verdict::FailJob(message),
            // The API asks clients to skip rules with actions they do not know.
            _ => continue,
        }
    }
    Verdict::Count
}

/// The first terminated container (app containers, then init containers) whose non-zero
/// exit code the requirement matches.
fn exit_code_match(pod: &Pod, requirement: &PodFailurePolicyOnExitCodesRequirement) -> Option<(String, i32)> {
    let status = pod.status.as_ref()?;
    let containers = status.container_statuses.iter().flatten().chain(status.init_container_statuses.iter().flatten());
    containers
        .filter(|c| requirement.container_name.as_ref().is_none_or(|n| *n == c.name))
        .filter_map(|c| Some((c.name.clone(), c.state.as_ref()?.terminated.as_ref()?.exit_code)))
        .find(|(_, code)| {
            let listed = requirement.values.contains(code);
            *code != 0 && if requirement.operator == "NotIn" { !listed } else { requirement.operator == "In" && listed }
        })
}

/// The type of the first pod condition that one of the patterns matches.
fn condition_match(pod: &Pod, patterns: &[PodFailurePolicyOnPodConditionsPattern]) -> Option<String> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find(|c| patterns.iter().any(|p| p.type_ == c.type_ && p.status.as_deref().unwrap_or("True") == c.status))
        .map(|c| c.type_.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(rules: serde_json::Value) -> Job {
        serde_json::from_value(json!({"metadata": {"name": "j"}, "spec": {"template": {},
            "podFailurePolicy": {"rules": rules}}}))
        .unwrap()
    }

    fn failed_pod(codes: &[(&str, i32)], conditions: serde_json::Value) -> Pod {
        let statuses: Vec<_> = codes
            .iter()
            .map(|(name, code)| {
                json!({"name": name, "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                                       "state": {"terminated": {"exitCode": code}}})
            })
            .collect();
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ns"},
            "status": {"phase": "Failed", "containerStatuses": statuses, "conditions": conditions}}))
        .unwrap()
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let job = job(json!([
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}},
        ]));
        let disrupted = failed_pod(&[("main", 42)], json!([{"type": "DisruptionTarget", "status": "True"}]));
        assert_eq!(judge(&job, &disrupted), Verdict::Ignore);
        assert_eq!(
            judge(&job, &failed_pod(&[("side", 0), ("main", 42)], json!([]))),
            Verdict::FailJob(
                "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1".into()
            )
        );
        // 42 in another container is not the rule's; NotIn [1] takes it.
        assert_eq!(judge(&job, &failed_pod(&[("side", 42)], json!([]))), Verdict::Count);
        // Exit code 1 matches nothing: counted by default. Exit code 0 never matches.
        assert_eq!(judge(&job, &failed_pod(&[("main", 1)], json!([]))), Verdict::Count);
        let zero = job_with_ignore_not_in();
        assert_eq!(judge(&zero, &failed_pod(&[("main", 0)], json!([]))), Verdict::Count);
    }

    fn job_with_ignore_not_in() -> Job {
        job(json!([{"action": "Ignore", "onExitCodes": {"operator": "NotIn", "values": [5]}}]))
    }

    #[test]
    fn a_condition_rule_names_the_condition() {
        let job =
            job(json!([{"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]));
        let pod = failed_pod(
            &[],
            json!([{"type": "Ready", "status": "False"}, {"type": "DisruptionTarget", "status": "True"}]),
        );
        assert_eq!(
            judge(&job, &pod),
            Verdict::FailJob("Pod ns/p has condition DisruptionTarget matching FailJob rule at index 0".into())
        );
        let not_true = failed_pod(&[], json!([{"type": "DisruptionTarget", "status": "False"}]));
        assert_eq!(judge(&job, &not_true), Verdict::Count);
    }
}
