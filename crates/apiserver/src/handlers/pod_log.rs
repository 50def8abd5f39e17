//! `GET pods/{name}/log`: a container's log, proxied from the kubelet of the pod's node, as
//! kube-apiserver's LogREST does it.
//!
//! The query is decoded (400 if a value does not parse) and validated (422 PodLogOptions
//! invalid); the pod is read (404); the container defaults to the only one, else must be
//! named and be one of the pod's; a pod not yet on a node has no log yet (an empty 200, as
//! kube-apiserver's null stream). The node's kubelet (`node_kubelet.rs`) answers; its answer
//! streams back as text/plain as it comes (`kubectl logs -f` sees lines as they are written),
//! and an error status it gives becomes a Status with its words.

use super::Ctx;
use super::read::fetch;
use crate::error::{ApiError, ApiResult, Subject};
use crate::http_util::{Body, full};
use crate::request_info::Query;
use chrono::{DateTime, SecondsFormat, Utc};
use http::{Response, StatusCode, header};
use http_body_util::BodyExt;
use registry::FieldError;
use serde_json::Value;

/// How much of a kubelet's error body becomes the message (kube-apiserver's maxReadLength).
const MAX_ERROR_BODY: usize = 50_000;

/// A PodLogOptions from the query.
#[derive(Debug, Default, PartialEq)]
struct LogOptions {
    container: Option<String>,
    follow: bool,
    previous: bool,
    timestamps: bool,
    since_seconds: Option<i64>,
    since_time: Option<DateTime<Utc>>,
    tail_lines: Option<i64>,
    limit_bytes: Option<i64>,
}

impl LogOptions {
    /// Decodes the query as Kubernetes' parameter codec does; a value that does not parse is a
    /// 400.
    fn decode(query: &Query) -> ApiResult<LogOptions> {
        // Present and not `0` or `false` is true.
        let flag = |key| query.get(key).is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"));
        let int = |key| match query.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("strconv.ParseInt: parsing {v:?}: invalid syntax"))),
        };
        let since_time = match query.get("sinceTime") {
            None => None,
            Some(t) => Some(DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc)).map_err(|_| {
                ApiError::bad_request(format!(
                    "parsing time {t:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse {t:?} as an RFC 3339 time"
                ))
            })?),
        };
        Ok(LogOptions {
            container: query.get("container").filter(|c| !c.is_empty()).map(String::from),
            follow: flag("follow"),
            previous: flag("previous"),
            timestamps: flag("timestamps"),
            since_seconds: int("sinceSeconds")?,
            since_time,
            tail_lines: int("tailLines")?,
            limit_bytes: int("limitBytes")?,
        })
    }

    /// ValidatePodLogOptions, in its words.
    fn problems(&self) -> Vec<FieldError> {
        let mut problems = Vec::new();
        if let Some(n) = self.tail_lines.filter(|n| *n < 0) {
            problems.push(FieldError::invalid("tailLines", n, "must be greater than or equal to 0"));
        }
        if let Some(n) = self.limit_bytes.filter(|n| *n < 1) {
            problems.push(FieldError::invalid("limitBytes", n, "must be greater than 0"));
        }
        match (self.since_seconds, self.since_time) {
            (Some(_), Some(_)) => problems
                .push(FieldError::forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified")),
            (Some(n), None) if n < 1 => problems.push(FieldError::invalid("sinceSeconds", n, "must be greater than 0")),
            _ => {}
        }
        problems
    }

    /// The query for the kubelet, in url.Values.Encode's order (by key).
    fn kubelet_query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if self.follow {
            q.append_pair("follow", "true");
        }
        if let Some(n) = self.limit_bytes {
            q.append_pair("limitBytes", &n.to_string());
        }
        if self.previous {
            q.append_pair("previous", "true");
        }
        if let Some(n) = self.since_seconds {
            q.append_pair("sinceSeconds", &n.to_string());
        }
        if let Some(t) = self.since_time {
            q.append_pair("sinceTime", &t.to_rfc3339_opts(SecondsFormat::Secs, true));
        }
        if let Some(n) = self.tail_lines {
            q.append_pair("tailLines", &n.to_string());
        }
        if self.timestamps {
            q.append_pair("timestamps", "true");
        }
        q.finish()
    }
}

/// The names of a pod's containers of one kind (`containers`, `initContainers`...).
fn names<'a>(pod: &'a Value, kind: &str) -> impl Iterator<Item = &'a str> {
    pod["spec"][kind].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str())
}

/// The container to read: the one named (which must be the pod's), or the pod's only one.
pub(super) fn container(pod: &Value, name: &str, wanted: Option<&str>) -> ApiResult<String> {
    let all = || names(pod, "initContainers").chain(names(pod, "containers")).chain(names(pod, "ephemeralContainers"));
    if let Some(wanted) = wanted {
        return match all().any(|c| c == wanted) {
            true => Ok(wanted.to_string()),
            false => Err(ApiError::bad_request(format!("container {wanted} is not valid for pod {name}"))),
        };
    }
    let regular: Vec<&str> = names(pod, "containers").collect();
    match regular.as_slice() {
        [only] => Ok(only.to_string()),
        [] => Err(ApiError::bad_request(format!("a container name must be specified for pod {name}"))),
        _ => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            all().collect::<Vec<_>>().join(" ")
        ))),
    }
}

/// A kubelet's error status as kube-apiserver's GenericHttpResponseChecker turns it into a
/// Status: its message kept for 400 and 500 and otherwise the generic words for the code.
fn kubelet_error(code: u16, body: &str, pod: &str) -> ApiError {
    let suffix = format!(" ( pods/log {pod})");
    let (reason, message) = match code {
        400 => return ApiError::bad_request(body),
        500 => return ApiError::internal(format!("Internal error occurred: {body}")),
        401 => ("Unauthorized", "the server has asked for the client to provide credentials".to_string()),
        403 => ("Forbidden", body.to_string()),
        404 => ("NotFound", "the server could not find the requested resource".to_string()),
        405 => ("MethodNotAllowed", "the server does not allow this method on the requested resource".to_string()),
        409 => ("Conflict", "the server reported a conflict".to_string()),
        422 => ("Invalid", "the server rejected our request due to an error in our request".to_string()),
        429 => {
            ("TooManyRequests", "the server has received too many requests and has asked us to try again later".into())
        }
        504 => (
            "Timeout",
            "the server was unable to return a response in the time allotted, but may still be processing the request"
                .into(),
        ),
        c if c >= 500 => {
            ("InternalError", format!("an error on the server ({body:?}) has prevented the request from succeeding"))
        }
        c => ("", format!("the server responded with the status code {c} but did not return more information")),
    };
    ApiError {
        details: Some(serde_json::json!({"name": pod, "kind": "pods/log"})),
        ..ApiError::new(code, reason, message + &suffix)
    }
}

fn text_plain(body: Body) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(body)
        .expect("static response parts are valid")
}

pub async fn get(ctx: Ctx) -> ApiResult<Response<Body>> {
    let name = ctx.name().to_string();
    let options = LogOptions::decode(&ctx.query)?;
    let problems = options.problems();
    if !problems.is_empty() {
        let subject = Subject { group: "", plural: "", kind: "PodLogOptions", name: &name };
        return Err(ApiError::invalid(subject, &problems));
    }
    let pod = fetch(&ctx, &name).await?;
    let container = container(&pod, &name, options.container.as_deref())?;
    let Some(node_name) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) else {
        return Ok(text_plain(full("")));
    };
    let (host, port) = super::node_kubelet::locate(&ctx, node_name).await?;
    let namespace = ctx.namespace().unwrap_or("default");
    let mut path = format!("/containerLogs/{namespace}/{name}/{container}");
    let query = options.kubelet_query();
    if !query.is_empty() {
        path = format!("{path}?{query}");
    }
    let response = ctx.api.kubelet.get(&host, port, &path).await.map_err(|e| {
        let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        // As Go's HTTP client words a failed request; kubectl shows it as it is.
        ApiError::new(500, "", format!("Get \"https://{authority}{path}\": {e}"))
    })?;
    let code = response.status().as_u16();
    if !(200..=206).contains(&code) {
        let mut body = response.into_body();
        let mut read = Vec::new();
        while read.len() < MAX_ERROR_BODY {
            match body.frame().await {
                Some(Ok(frame)) => read.extend_from_slice(frame.data_ref().map(|d| d.as_ref()).unwrap_or_default()),
                Some(Err(e)) => return Err(ApiError::internal(format!("Internal error occurred: {e}"))),
                None => break,
            }
        }
        read.truncate(MAX_ERROR_BODY);
        return Err(kubelet_error(code, &String::from_utf8_lossy(&read), &name));
    }
    Ok(text_plain(response.into_body().map_err(std::io::Error::other).boxed()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(raw: &str) -> Query {
        Query::parse(Some(raw))
    }

    #[test]
    fn options_decode_and_validate_as_kubernetes() {
        let o = LogOptions::decode(&query("container=app&follow=true&timestamps=1&tailLines=10&limitBytes=5")).unwrap();
        assert_eq!(o.container.as_deref(), Some("app"));
        assert!(o.follow && o.timestamps && !o.previous);
        assert_eq!(o.kubelet_query(), "follow=true&limitBytes=5&tailLines=10&timestamps=true");
        assert!(!LogOptions::decode(&query("follow=false&previous=0")).unwrap().follow);
        let e = LogOptions::decode(&query("tailLines=ten")).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (400, "strconv.ParseInt: parsing \"ten\": invalid syntax"));
        assert_eq!(LogOptions::decode(&query("sinceTime=noon")).unwrap_err().code, 400);

        let problems = |raw| {
            LogOptions::decode(&query(raw)).unwrap().problems().iter().map(ToString::to_string).collect::<Vec<_>>()
        };
        assert_eq!(problems("tailLines=-1"), ["tailLines: Invalid value: -1: must be greater than or equal to 0"]);
        assert_eq!(problems("limitBytes=0"), ["limitBytes: Invalid value: 0: must be greater than 0"]);
        assert_eq!(problems("sinceSeconds=0"), ["sinceSeconds: Invalid value: 0: must be greater than 0"]);
        assert_eq!(
            problems("sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z"),
            [": Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"]
        );
        assert!(problems("tailLines=0&sinceSeconds=1&limitBytes=1").is_empty());
        let o = LogOptions::decode(&query("sinceTime=2024-01-01T02:00:00%2B02:00")).unwrap();
        assert_eq!(o.kubelet_query(), "sinceTime=2024-01-01T00%3A00%3A00Z");
        let invalid = ApiError::invalid(
            Subject { group: "", plural: "", kind: "PodLogOptions", name: "web" },
            &LogOptions::decode(&query("limitBytes=0")).unwrap().problems(),
        );
        assert_eq!(
            invalid.message,
            "PodLogOptions \"web\" is invalid: limitBytes: Invalid value: 0: must be greater than 0"
        );
    }

    #[test]
    fn the_container_defaults_to_the_only_one() {
        let one = json!({"spec": {"initContainers": [{"name": "setup"}], "containers": [{"name": "app"}]}});
        assert_eq!(container(&one, "web", None).unwrap(), "app");
        assert_eq!(container(&one, "web", Some("setup")).unwrap(), "setup");
        let e = container(&one, "web", Some("db")).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (400, "container db is not valid for pod web"));
        let two = json!({"spec": {
            "initContainers": [{"name": "setup"}],
            "containers": [{"name": "a"}, {"name": "b"}],
            "ephemeralContainers": [{"name": "debug"}],
        }});
        let e = container(&two, "web", None).unwrap_err();
        assert_eq!(e.message, "a container name must be specified for pod web, choose one of: [setup a b debug]");
        assert_eq!(container(&two, "web", Some("debug")).unwrap(), "debug");
    }

    #[test]
    fn kubelet_errors_become_statuses() {
        let e = kubelet_error(400, "container \"app\" in pod \"web\" is waiting to start: ContainerCreating", "web");
        assert_eq!((e.code, e.reason), (400, "BadRequest"));
        assert_eq!(e.message, "container \"app\" in pod \"web\" is waiting to start: ContainerCreating");
        let e = kubelet_error(404, "pod \"web\" does not exist", "web");
        assert_eq!((e.code, e.reason), (404, "NotFound"));
        assert_eq!(e.message, "the server could not find the requested resource ( pods/log web)");
        assert_eq!(kubelet_error(403, "Forbidden (user=x)", "web").message, "Forbidden (user=x) ( pods/log web)");
    }
}
