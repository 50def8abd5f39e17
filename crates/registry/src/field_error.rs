//! Field errors, the causes of a 422 Invalid status: which field is wrong and why, in the
//! words and reason codes Kubernetes uses (`FieldValueRequired`, `FieldValueInvalid`, ...).

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorType {
    Required,
    Invalid,
    NotSupported,
    Duplicate,
    Forbidden,
    TooLong,
}

impl FieldErrorType {
    /// The `reason` of a `StatusCause`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Required => "FieldValueRequired",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Duplicate => "FieldValueDuplicate",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub kind: FieldErrorType,
    pub field: String,
    /// The offending value as Kubernetes quotes it, if any.
    pub value: Option<String>,
    pub detail: String,
}

impl FieldError {
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { kind: FieldErrorType::Required, field: field.into(), value: None, detail: detail.into() }
    }

    pub fn invalid(field: impl Into<String>, value: impl Into<Shown>, detail: impl Into<String>) -> Self {
        Self { kind: FieldErrorType::Invalid, field: field.into(), value: Some(value.into().0), detail: detail.into() }
    }

    pub fn not_supported(field: impl Into<String>, value: impl Into<Shown>, supported: &[&str]) -> Self {
        let quoted: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        Self {
            kind: FieldErrorType::NotSupported,
            field: field.into(),
            value: Some(value.into().0),
            detail: format!("supported values: {}", quoted.join(", ")),
        }
    }

    pub fn duplicate(field: impl Into<String>, value: impl fmt::Display) -> Self {
        Self {
            kind: FieldErrorType::Duplicate,
            field: field.into(),
            value: Some(value.to_string()),
            detail: String::new(),
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { kind: FieldErrorType::Forbidden, field: field.into(), value: None, detail: detail.into() }
    }
}

/// Formats as Kubernetes does: `spec.containers[0].image: Required value`,
/// `metadata.name: Invalid value: "A": a lowercase RFC 1123 subdomain must ...`.
/// A value as Kubernetes shows it in a field error: strings quoted, numbers and booleans bare.
pub struct Shown(String);

impl From<&str> for Shown {
    fn from(s: &str) -> Self {
        Shown(format!("{s:?}"))
    }
}

impl From<String> for Shown {
    fn from(s: String) -> Self {
        Shown::from(s.as_str())
    }
}

impl From<&String> for Shown {
    fn from(s: &String) -> Self {
        Shown::from(s.as_str())
    }
}

macro_rules! shown_bare {
    ($($t:ty),*) => {$(
        impl From<$t> for Shown {
            fn from(v: $t) -> Self {
                Shown(v.to_string())
            }
        }
    )*};
}
shown_bare!(i32, i64, u16, u32, u64, usize, f64, bool);

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let summary = match self.kind {
            FieldErrorType::Required => "Required value",
            FieldErrorType::Invalid => "Invalid value",
            FieldErrorType::NotSupported => "Unsupported value",
            FieldErrorType::Duplicate => "Duplicate value",
            FieldErrorType::Forbidden => "Forbidden",
            FieldErrorType::TooLong => "Too long",
        };
        write!(f, "{}: {summary}", self.field)?;
        if let Some(value) = &self.value {
            write!(f, ": {value}")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// A path to a field, built while walking an object: `spec.containers[0].ports[1].containerPort`.
#[derive(Clone, Debug)]
pub struct Path(String);

impl Path {
    pub fn new(root: &str) -> Self {
        Self(root.to_string())
    }

    pub fn child(&self, name: &str) -> Self {
        Self(format!("{}.{name}", self.0))
    }

    pub fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }

    pub fn key(&self, k: &str) -> Self {
        Self(format!("{}[{k}]", self.0))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&Path> for String {
    fn from(p: &Path) -> String {
        p.0.clone()
    }
}

impl From<Path> for String {
    fn from(p: Path) -> String {
        p.0
    }
}
