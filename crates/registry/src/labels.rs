//! Label selectors: the string form of `?labelSelector=` (`app=web,tier in (a,b),!canary`)
//! and the structured `LabelSelector` of workload specs, both as one list of requirements.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

impl Requirement {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.op {
            Op::Equals | Op::In => value.is_some_and(|v| self.values.contains(v)),
            Op::NotEquals | Op::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::GreaterThan | Op::LessThan => {
                let (Some(Ok(have)), Some(Ok(bound))) =
                    (value.map(|v| v.parse::<i64>()), self.values.first().map(|v| v.parse::<i64>()))
                else {
                    return false;
                };
                if self.op == Op::GreaterThan { have > bound } else { have < bound }
            }
        }
    }
}

/// A conjunction of requirements; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector(pub Vec<Requirement>);

impl Selector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| r.matches(labels))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses the string form, as `kubectl get -l` sends it.
    pub fn parse(input: &str) -> Result<Selector, String> {
        let mut reqs = Vec::new();
        for term in split_terms(input)? {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            reqs.push(parse_term(term)?);
        }
        for r in &reqs {
            let errs = crate::names::qualified_name(&r.key);
            if let Some(e) = errs.first() {
                return Err(format!("unable to parse requirement: invalid label key \"{}\": {e}", r.key));
            }
        }
        Ok(Selector(reqs))
    }

    /// The requirements of a structured selector, or an error naming the bad operator.
    pub fn from_label_selector(sel: &LabelSelector) -> Result<Selector, String> {
        let mut reqs: Vec<Requirement> = sel
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| Requirement { key: k.clone(), op: Op::Equals, values: vec![v.clone()] })
            .collect();
        for expr in sel.match_expressions.iter().flatten() {
            let op = match expr.operator.as_str() {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                other => return Err(format!("\"{other}\" is not a valid label selector operator")),
            };
            reqs.push(Requirement { key: expr.key.clone(), op, values: expr.values.clone().unwrap_or_default() });
        }
        Ok(Selector(reqs))
    }
}

/// The string form of a selector given as JSON: a `LabelSelector` (matchLabels and
/// matchExpressions) or a plain label map (ReplicationControllers, Services).
pub fn format_selector(sel: &serde_json::Value) -> String {
    use serde_json::Value;
    let structured = sel.get("matchLabels").is_some() || sel.get("matchExpressions").is_some();
    let labels = if structured { sel.get("matchLabels").cloned().unwrap_or(Value::Null) } else { sel.clone() };
    let mut parts: Vec<String> =
        labels.as_object().into_iter().flatten().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
    let exprs = if structured { sel.get("matchExpressions").and_then(Value::as_array) } else { None };
    for e in exprs.into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or("");
        let values: Vec<&str> = e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        parts.push(match e["operator"].as_str().unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            _ => format!("!{key}"),
        });
    }
    parts.join(",")
}

/// Splits on commas that are not inside parentheses.
fn split_terms(input: &str) -> Result<Vec<&str>, String> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(format!("unable to parse requirement: unbalanced parentheses in \"{input}\""));
        }
    }
    if depth != 0 {
        return Err(format!("unable to parse requirement: unbalanced parentheses in \"{input}\""));
    }
    terms.push(&input[start..]);
    Ok(terms)
}

fn parse_term(term: &str) -> Result<Requirement, String> {
    let bad = || {
        format!(
            "unable to parse requirement: found '{term}', expected: key, !key, key=value, key!=value, key in (values) or key notin (values)"
        )
    };
    if let Some(key) = term.strip_prefix('!') {
        return Ok(Requirement { key: key.trim().to_string(), op: Op::DoesNotExist, values: vec![] });
    }
    for (token, op) in
        [("!=", Op::NotEquals), ("==", Op::Equals), ("=", Op::Equals), (">", Op::GreaterThan), ("<", Op::LessThan)]
    {
        if let Some((k, v)) = term.split_once(token) {
            let value = v.trim().to_string();
            if !crate::names::label_value(&value).is_empty() {
                return Err(format!("unable to parse requirement: invalid label value: \"{value}\""));
            }
            return Ok(Requirement { key: k.trim().to_string(), op, values: vec![value] });
        }
    }
    for (token, op) in [(" notin ", Op::NotIn), (" in ", Op::In)] {
        if let Some((k, rest)) = term.split_once(token) {
            let rest = rest.trim();
            let inner = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')).ok_or_else(bad)?;
            let values = inner.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
            return Ok(Requirement { key: k.trim().to_string(), op, values });
        }
    }
    if term.contains(char::is_whitespace) || term.contains('(') {
        return Err(bad());
    }
    Ok(Requirement { key: term.to_string(), op: Op::Exists, values: vec![] })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_every_operator() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        for (sel, want) in [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web, db)", true),
            ("app notin (web)", false),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("app=web,tier in (front,back)", true),
            ("n>4", true),
            ("n<4", false),
            ("", true),
        ] {
            assert_eq!(Selector::parse(sel).unwrap().matches(&l), want, "{sel}");
        }
    }

    #[test]
    fn formats_selectors() {
        let sel = serde_json::json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]});
        assert_eq!(format_selector(&sel), "app=web,tier in (a,b)");
        assert_eq!(format_selector(&serde_json::json!({"app": "web"})), "app=web");
        assert_eq!(Selector::parse(&format_selector(&sel)).unwrap().0.len(), 2);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Selector::parse("app in web").is_err());
        assert!(Selector::parse("app=(x").is_err());
        assert!(Selector::parse("a b").is_err());
        assert!(Selector::parse("app=-bad-").is_err());
    }
}
