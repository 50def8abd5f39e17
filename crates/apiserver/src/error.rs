//! Every failure the API answers is a `metav1.Status` with Kubernetes' reason and code.

use registry::FieldError;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Names the object an error is about, for the message and the Status' `details`.
pub struct Subject<'a> {
    pub group: &'a str,
    /// The resource (`deployments`): most errors name it.
    pub plural: &'a str,
    /// The kind (`Deployment`): validation errors name it.
    pub kind: &'a str,
    pub name: &'a str,
}

impl<'a> Subject<'a> {
    /// Empty fields are left out, as Kubernetes' omitempty does.
    fn details(&self) -> Value {
        let mut d = serde_json::Map::new();
        for (k, v) in [("name", self.name), ("group", self.group), ("kind", self.plural)] {
            if !v.is_empty() {
                d.insert(k.into(), Value::String(v.into()));
            }
        }
        Value::Object(d)
    }

    /// `deployments.apps "web"` or `pods "web"`.
    fn describe(&self) -> String {
        if self.group.is_empty() {
            format!("{} \"{}\"", self.plural, self.name)
        } else {
            format!("{}.{} \"{}\"", self.plural, self.group, self.name)
        }
    }
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self { code, reason, message: message.into(), details: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// `the server could not find the requested resource`, for unknown paths.
    pub fn not_found_path() -> Self {
        Self {
            details: Some(json!({})),
            ..Self::new(404, "NotFound", "the server could not find the requested resource")
        }
    }

    pub fn not_found(subject: Subject) -> Self {
        Self {
            details: Some(subject.details()),
            ..Self::new(404, "NotFound", format!("{} not found", subject.describe()))
        }
    }

    pub fn already_exists(subject: Subject) -> Self {
        Self {
            details: Some(subject.details()),
            ..Self::new(409, "AlreadyExists", format!("{} already exists", subject.describe()))
        }
    }

    pub fn conflict(subject: Subject, why: &str) -> Self {
        Self {
            details: Some(subject.details()),
            ..Self::new(409, "Conflict", format!("Operation cannot be fulfilled on {}: {why}", subject.describe()))
        }
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn too_large() -> Self {
        Self::new(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/merge-patch+json, application/json-patch+json (got {content_type})"
            ),
        )
    }

    /// 422 with one cause per field error.
    pub fn invalid(subject: Subject, errors: &[FieldError]) -> Self {
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| {
                let msg = e.to_string();
                let cause_msg = msg.strip_prefix(&format!("{}: ", e.field)).unwrap_or(&msg).to_string();
                json!({"reason": e.kind.reason(), "message": cause_msg, "field": e.field})
            })
            .collect();
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let summary = if list.len() == 1 { list[0].clone() } else { format!("[{}]", list.join(", ")) };
        let mut details = subject.details();
        details["kind"] = Value::String(subject.kind.to_string());
        details["causes"] = Value::Array(causes);
        // Kubernetes names the kind with its group: `Deployment.apps "web" is invalid`.
        let kind = if subject.group.is_empty() {
            subject.kind.to_string()
        } else {
            format!("{}.{}", subject.kind, subject.group)
        };
        Self {
            details: Some(details),
            ..Self::new(422, "Invalid", format!("{kind} \"{}\" is invalid: {summary}", subject.name))
        }
    }

    /// 429 asking the client to come back in `retry_after_seconds` (with a Retry-After
    /// header) or, with 0, leaving when to the client.
    pub fn too_many_requests(message: impl Into<String>, retry_after_seconds: u32) -> Self {
        let details =
            if retry_after_seconds > 0 { json!({"retryAfterSeconds": retry_after_seconds}) } else { json!({}) };
        Self { details: Some(details), ..Self::new(429, "TooManyRequests", message) }
    }

    /// Seconds the client should wait before trying again, if the error says.
    pub fn retry_after(&self) -> Option<u64> {
        self.details.as_ref()?.get("retryAfterSeconds")?.as_u64().filter(|s| *s > 0)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        });
        // A Status may carry no reason (StatusReasonUnknown is the empty string).
        if !self.reason.is_empty() {
            status["reason"] = json!(self.reason);
        }
        if let Some(d) = &self.details {
            status["details"] = d.clone();
        }
        status
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::Compacted { .. } => {
                ApiError::gone(format!("The resourceVersion for the provided list is too old: {e}"))
            }
            store::Error::FutureRevision { .. } => ApiError::timeout(format!("Too large resource version: {e}")),
            other => ApiError::internal(format!("storage error: {other}")),
        }
    }
}
