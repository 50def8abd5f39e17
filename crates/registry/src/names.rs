//! Name, label and annotation rules, with the messages Kubernetes gives when they are broken.

use crate::field_error::{FieldError, Path};
use std::collections::BTreeMap;

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// How a kind's object names are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain, up to 253 characters: most kinds.
    Subdomain,
    /// RFC 1123 label, up to 63 characters: namespaces.
    Label,
    /// RFC 1035 label, up to 63 characters: services.
    Dns1035,
    /// Anything usable as a URL path segment: RBAC objects.
    PathSegment,
}

impl NameRule {
    /// The problems with `name` under this rule (empty if it is fine).
    pub fn check(self, name: &str) -> Vec<String> {
        match self {
            NameRule::Subdomain => subdomain(name),
            NameRule::Label => label(name, LABEL_MSG, |c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            NameRule::Dns1035 => label(name, DNS1035_MSG, |c| c.is_ascii_lowercase()),
            NameRule::PathSegment => path_segment(name),
        }
    }
}

fn alnum_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn is_label(s: &str, first_ok: impl Fn(char) -> bool) -> bool {
    let (Some(first), Some(last)) = (s.chars().next(), s.chars().last()) else { return false };
    first_ok(first) && alnum_lower(last) && s.chars().all(|c| alnum_lower(c) || c == '-')
}

fn label(name: &str, msg: &str, first_ok: impl Fn(char) -> bool) -> Vec<String> {
    let mut errs = Vec::new();
    if name.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !is_label(name, first_ok) {
        errs.push(msg.to_string());
    }
    errs
}

fn is_subdomain(name: &str) -> bool {
    subdomain(name).is_empty()
}

fn subdomain(name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if name.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if !name.split('.').all(|part| is_label(part, alnum_lower)) {
        errs.push(SUBDOMAIN_MSG.to_string());
    }
    errs
}

fn path_segment(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    ["/", "%"].iter().filter(|bad| name.contains(*bad)).map(|bad| format!("may not contain '{bad}'")).collect()
}

fn is_qualified_part(s: &str) -> bool {
    let (Some(first), Some(last)) = (s.chars().next(), s.chars().last()) else { return false };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Checks a qualified name such as a label or annotation key: `[prefix/]name`.
pub fn qualified_name(key: &str) -> Vec<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let mut errs = Vec::new();
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            errs.push("prefix part must be non-empty".to_string());
        } else if !is_subdomain(prefix) {
            errs.push(format!("prefix part {SUBDOMAIN_MSG}"));
        }
    }
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else {
        if name.len() > 63 {
            errs.push("name part must be no more than 63 characters".to_string());
        }
        if !is_qualified_part(name) || name.contains('/') {
            errs.push(QUALIFIED_MSG.to_string());
        }
    }
    errs
}

pub fn label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !value.is_empty() && !is_qualified_part(value) {
        errs.push(LABEL_VALUE_MSG.to_string());
    }
    errs
}

pub fn validate_labels(labels: &BTreeMap<String, String>, path: &Path, errs: &mut Vec<FieldError>) {
    for (k, v) in labels {
        for msg in qualified_name(k) {
            errs.push(FieldError::invalid(path, k, msg));
        }
        for msg in label_value(v) {
            errs.push(FieldError::invalid(path.key(k), v, msg));
        }
    }
}

const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

pub fn validate_annotations(annotations: &BTreeMap<String, String>, path: &Path, errs: &mut Vec<FieldError>) {
    let mut total = 0;
    for (k, v) in annotations {
        for msg in qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k, msg));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError {
            kind: crate::field_error::FieldErrorType::TooLong,
            field: path.into(),
            value: None,
            detail: format!("may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(NameRule::Subdomain.check("web-1.example").is_empty());
        assert!(!NameRule::Subdomain.check("Web").is_empty());
        assert!(!NameRule::Subdomain.check("-a").is_empty());
        assert!(!NameRule::Subdomain.check("").is_empty());
        assert!(NameRule::Label.check("kube-system").is_empty());
        assert!(!NameRule::Label.check("a.b").is_empty());
        assert!(!NameRule::Dns1035.check("1abc").is_empty());
        assert!(NameRule::PathSegment.check("system:admin").is_empty());
        assert!(!NameRule::PathSegment.check("a/b").is_empty());
    }

    #[test]
    fn labels() {
        assert!(qualified_name("app.kubernetes.io/name").is_empty());
        assert!(!qualified_name("/x").is_empty());
        assert!(!qualified_name("a/b/c").is_empty());
        assert!(label_value("").is_empty());
        assert!(!label_value("-x").is_empty());
        assert!(!label_value(&"a".repeat(64)).is_empty());
    }
}
