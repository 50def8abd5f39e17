//! The rules on a Job's failure handling and early success, as Kubernetes validates them:
//! `podFailurePolicy`, `backoffLimitPerIndex` with `maxFailedIndexes`, `successPolicy`
//! and `podReplacementPolicy`.

use crate::field_error::{FieldError, Path};
use k8s_openapi::api::batch::v1::{JobSpec, PodFailurePolicyRule, SuccessPolicyRule};

const MAX_RULES: usize = 20;
const MAX_EXIT_CODES: usize = 255;
const MAX_INDEXES_WITH_PER_INDEX_LIMIT: i32 = 100_000;

pub fn validate(spec: &JobSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    per_index_limits(spec, path, &mut errs);
    pod_failure_policy(spec, path, &mut errs);
    pod_replacement_policy(spec, path, &mut errs);
    success_policy(spec, path, &mut errs);
    errs
}

fn indexed(spec: &JobSpec) -> bool {
    spec.completion_mode.as_deref() == Some("Indexed")
}

fn too_many(path: &Path, count: usize, max: usize) -> FieldError {
    FieldError::invalid(path, count, format!("must have at most {max} items"))
}

fn non_negative(value: Option<i32>, path: Path, errs: &mut Vec<FieldError>) {
    if let Some(v) = value.filter(|v| *v < 0) {
        errs.push(FieldError::invalid(path, v, "must be greater than or equal to 0"));
    }
}

fn per_index_limits(spec: &JobSpec, path: &Path, errs: &mut Vec<FieldError>) {
    non_negative(spec.backoff_limit_per_index, path.child("backoffLimitPerIndex"), errs);
    non_negative(spec.max_failed_indexes, path.child("maxFailedIndexes"), errs);
    if spec.max_failed_indexes.is_some() && spec.backoff_limit_per_index.is_none() {
        errs.push(FieldError::required(path.child("backoffLimitPerIndex"), "when maxFailedIndexes is specified"));
    }
    if !indexed(spec) {
        for (name, value) in
            [("backoffLimitPerIndex", spec.backoff_limit_per_index), ("maxFailedIndexes", spec.max_failed_indexes)]
        {
            if let Some(v) = value {
                errs.push(FieldError::invalid(path.child(name), v, "requires indexed completion mode"));
            }
        }
        return;
    }
    let completions = spec.completions.unwrap_or(0);
    if let Some(max) = spec.max_failed_indexes.filter(|m| *m > completions) {
        errs.push(FieldError::invalid(
            path.child("maxFailedIndexes"),
            max,
            "must be less than or equal to completions",
        ));
    }
    if spec.backoff_limit_per_index.is_some() && completions > MAX_INDEXES_WITH_PER_INDEX_LIMIT {
        let detail = format!(
            "must be less than or equal to {MAX_INDEXES_WITH_PER_INDEX_LIMIT} when backoffLimitPerIndex is specified"
        );
        errs.push(FieldError::invalid(path.child("completions"), completions, detail));
    }
}

fn pod_failure_policy(spec: &JobSpec, path: &Path, errs: &mut Vec<FieldError>) {
    let Some(policy) = &spec.pod_failure_policy else { return };
    let template = spec.template.spec.as_ref();
    let restart = template.and_then(|s| s.restart_policy.as_deref()).unwrap_or("");
    if restart != "Never" {
        let detail = "only \"Never\" is supported when podFailurePolicy is specified";
        errs.push(FieldError::invalid(path.child("template").child("spec").child("restartPolicy"), restart, detail));
    }
    let rules_path = path.child("podFailurePolicy").child("rules");
    if policy.rules.len() > MAX_RULES {
        errs.push(too_many(&rules_path, policy.rules.len(), MAX_RULES));
    }
    let names: Vec<&str> = template
        .map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()).map(|c| c.name.as_str()).collect())
        .unwrap_or_default();
    for (i, rule) in policy.rules.iter().enumerate() {
        failure_rule(spec, rule, &names, &rules_path.index(i), errs);
    }
}

fn failure_rule(
    spec: &JobSpec,
    rule: &PodFailurePolicyRule,
    containers: &[&str],
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    const ACTIONS: [&str; 4] = ["Count", "FailIndex", "FailJob", "Ignore"];
    let action = path.child("action");
    if rule.action.is_empty() {
        errs.push(FieldError::required(action, "valid values: [\"Count\" \"FailIndex\" \"FailJob\" \"Ignore\"]"));
    } else if rule.action == "FailIndex" && spec.backoff_limit_per_index.is_none() {
        errs.push(FieldError::invalid(action, &rule.action, "requires the backoffLimitPerIndex to be set"));
    } else if !ACTIONS.contains(&rule.action.as_str()) {
        errs.push(FieldError::not_supported(action, &rule.action, &ACTIONS));
    }
    let conditions = rule.on_pod_conditions.as_deref().unwrap_or_default();
    match (&rule.on_exit_codes, conditions.is_empty()) {
        (Some(_), false) => {
            errs.push(FieldError::invalid(
                path,
                "",
                "specifying both OnExitCodes and OnPodConditions is not supported",
            ));
        }
        (None, true) => {
            errs.push(FieldError::invalid(path, "", "specifying one of OnExitCodes and OnPodConditions is required"));
        }
        _ => {}
    }
    if let Some(codes) = &rule.on_exit_codes {
        let codes_path = path.child("onExitCodes");
        if let Some(name) = codes.container_name.as_ref().filter(|n| !containers.contains(&n.as_str())) {
            let detail = "must be one of the container or initContainer names in the pod template";
            errs.push(FieldError::invalid(codes_path.child("containerName"), name, detail));
        }
        if !["In", "NotIn"].contains(&codes.operator.as_str()) {
            errs.push(FieldError::not_supported(codes_path.child("operator"), &codes.operator, &["In", "NotIn"]));
        }
        let values = codes_path.child("values");
        if codes.values.is_empty() {
            errs.push(FieldError::invalid(&values, "[]", "at least one value is required"));
        } else if codes.values.len() > MAX_EXIT_CODES {
            errs.push(too_many(&values, codes.values.len(), MAX_EXIT_CODES));
        }
        for (i, value) in codes.values.iter().enumerate() {
            let at = values.index(i);
            if codes.operator == "In" && *value == 0 {
                errs.push(FieldError::invalid(&at, *value, "must not be 0 for the In operator"));
            }
            match codes.values[..i].last() {
                Some(previous) if previous == value => errs.push(FieldError::duplicate(&at, value)),
                Some(previous) if previous > value => errs.push(FieldError::invalid(&at, *value, "must be ordered")),
                _ => {}
            }
        }
    }
    for (i, pattern) in conditions.iter().enumerate() {
        let at = path.child("onPodConditions").index(i);
        if let Some(status) = pattern.status.as_deref().filter(|s| !["True", "False", "Unknown"].contains(s)) {
            errs.push(FieldError::not_supported(at.child("status"), status, &["False", "True", "Unknown"]));
        }
        for message in crate::names::qualified_name(&pattern.type_) {
            errs.push(FieldError::invalid(at.child("type"), &pattern.type_, message));
        }
    }
}

fn pod_replacement_policy(spec: &JobSpec, path: &Path, errs: &mut Vec<FieldError>) {
    let Some(policy) = spec.pod_replacement_policy.as_deref() else { return };
    let supported: &[&str] =
        if spec.pod_failure_policy.is_some() { &["Failed"] } else { &["Failed", "TerminatingOrFailed"] };
    if !supported.contains(&policy) {
        errs.push(FieldError::not_supported(path.child("podReplacementPolicy"), policy, supported));
    }
}

fn success_policy(spec: &JobSpec, path: &Path, errs: &mut Vec<FieldError>) {
    let Some(policy) = &spec.success_policy else { return };
    let policy_path = path.child("successPolicy");
    let rules_path = policy_path.child("rules");
    if !indexed(spec) {
        errs.push(FieldError::invalid(&policy_path, "", "requires indexed completion mode"));
    }
    if policy.rules.is_empty() {
        errs.push(FieldError::required(
            &rules_path,
            "at least one rules must be specified when the successPolicy is specified",
        ));
    } else if policy.rules.len() > MAX_RULES {
        errs.push(too_many(&rules_path, policy.rules.len(), MAX_RULES));
    }
    for (i, rule) in policy.rules.iter().enumerate() {
        success_rule(spec, rule, &rules_path.index(i), errs);
    }
}

fn success_rule(spec: &JobSpec, rule: &SuccessPolicyRule, path: &Path, errs: &mut Vec<FieldError>) {
    if rule.succeeded_count.is_none() && rule.succeeded_indexes.is_none() {
        errs.push(FieldError::required(path, "at least one of succeededCount or succeededIndexes must be specified"));
    }
    let completions = spec.completions.unwrap_or(0);
    let mut listed = None;
    if let Some(text) = &rule.succeeded_indexes {
        match count_indexes(text, completions) {
            Ok(n) => listed = Some(n),
            Err(e) => errs.push(FieldError::invalid(
                path.child("succeededIndexes"),
                text,
                format!("error parsing succeededIndexes: {e}"),
            )),
        }
    }
    let Some(count) = rule.succeeded_count else { return };
    let count_path = path.child("succeededCount");
    if count < 0 {
        errs.push(FieldError::invalid(count_path, count, "must be greater than or equal to 0"));
    } else if count > completions {
        let detail = format!("must be less than or equal to {completions} (the number of specified completions)");
        errs.push(FieldError::invalid(count_path, count, detail));
    } else if let Some(listed) = listed.filter(|n| count as usize > *n) {
        let detail = format!(
            "must be less than or equal to {listed} (the number of indexes in the specified succeededIndexes field)"
        );
        errs.push(FieldError::invalid(count_path, count, detail));
    }
}

/// How many indexes a list such as "0-3,7" names: increasing, not overlapping, each below
/// `completions`.
fn count_indexes(text: &str, completions: i32) -> Result<usize, String> {
    let mut total = 0;
    let mut previous: Option<i32> = None;
    for part in text.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(part)?, number(part)?),
        };
        if first > last {
            return Err(format!("non-increasing order, previous: {first}, current: {last}"));
        }
        if let Some(p) = previous.filter(|p| *p >= first) {
            return Err(format!("non-increasing order, previous: {p}, current: {first}"));
        }
        if last >= completions {
            return Err(format!("too large: {last}"));
        }
        total += (last - first + 1) as usize;
        previous = Some(last);
    }
    Ok(total)
}

fn number(text: &str) -> Result<i32, String> {
    match text.parse::<i32>() {
        Ok(n) if n >= 0 => Ok(n),
        Ok(n) => Err(format!("negative index: {n}")),
        Err(_) => Err(format!("cannot parse {text:?} as an index")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(spec: serde_json::Value) -> Vec<String> {
        let mut base =
            json!({"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "i"}]}}});
        for (k, v) in spec.as_object().unwrap() {
            base[k] = v.clone();
        }
        let spec: JobSpec = serde_json::from_value(base).unwrap();
        validate(&spec, &Path::new("spec")).iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn a_failure_policy_needs_never_and_well_formed_rules() {
        let errs = errors(
            json!({"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "main", "image": "i"}]}},
            "podFailurePolicy": {"rules": [
                {"action": "FailJob", "onExitCodes": {"containerName": "other", "operator": "In", "values": [0, 3, 3]}},
                {"action": "FailIndex", "onPodConditions": [{"type": "DisruptionTarget"}]},
                {"action": "Ignore"},
            ]}}),
        );
        assert_eq!(
            errs,
            [
                "spec.template.spec.restartPolicy: Invalid value: \"OnFailure\": only \"Never\" is supported when podFailurePolicy is specified",
                "spec.podFailurePolicy.rules[0].onExitCodes.containerName: Invalid value: \"other\": must be one of the container or initContainer names in the pod template",
                "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator",
                "spec.podFailurePolicy.rules[0].onExitCodes.values[2]: Duplicate value: 3",
                "spec.podFailurePolicy.rules[1].action: Invalid value: \"FailIndex\": requires the backoffLimitPerIndex to be set",
                "spec.podFailurePolicy.rules[2]: Invalid value: \"\": specifying one of OnExitCodes and OnPodConditions is required",
            ]
        );
    }

    #[test]
    fn per_index_limits_and_success_policies_need_indexed_jobs() {
        let errs = errors(json!({"backoffLimitPerIndex": 1, "successPolicy": {"rules": [{"succeededCount": 1}]}}));
        assert_eq!(
            errs,
            [
                "spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode",
                "spec.successPolicy: Invalid value: \"\": requires indexed completion mode",
                "spec.successPolicy.rules[0].succeededCount: Invalid value: 1: must be less than or equal to 0 (the number of specified completions)",
            ]
        );
        let errs = errors(json!({"completionMode": "Indexed", "completions": 5, "maxFailedIndexes": 6,
            "successPolicy": {"rules": [{"succeededIndexes": "0-2", "succeededCount": 4}, {"succeededIndexes": "3,1"}, {}]}}));
        assert_eq!(
            errs,
            [
                "spec.backoffLimitPerIndex: Required value: when maxFailedIndexes is specified",
                "spec.maxFailedIndexes: Invalid value: 6: must be less than or equal to completions",
                "spec.successPolicy.rules[0].succeededCount: Invalid value: 4: must be less than or equal to 3 (the number of indexes in the specified succeededIndexes field)",
                "spec.successPolicy.rules[1].succeededIndexes: Invalid value: \"3,1\": error parsing succeededIndexes: non-increasing order, previous: 3, current: 1",
                "spec.successPolicy.rules[2]: Required value: at least one of succeededCount or succeededIndexes must be specified",
            ]
        );
    }

    #[test]
    fn a_failure_policy_replaces_only_failed_pods() {
        let errs = errors(json!({"podReplacementPolicy": "TerminatingOrFailed",
            "podFailurePolicy": {"rules": [{"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}}]}}));
        assert_eq!(
            errs,
            ["spec.podReplacementPolicy: Unsupported value: \"TerminatingOrFailed\": supported values: \"Failed\""]
        );
        assert!(errors(json!({"podReplacementPolicy": "Failed"})).is_empty());
    }
}
