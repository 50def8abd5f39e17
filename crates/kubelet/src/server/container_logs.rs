//! `GET /containerLogs/{namespace}/{pod}/{container}`: a container's log, streamed as it is
//! read, with the query the API server forwards from `kubectl logs` (`follow`, `previous`,
//! `timestamps`, `tailLines`, `sinceSeconds`, `sinceTime`, `limitBytes`, and the older `tail`).
//!
//! Errors are plain text with the kubelet's status and words: 400 for a query that does not
//! decode, 422 for one that decodes but is invalid, and whatever [`Pods`] says of the pod.

use super::{Body, Pods, text};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use runtime::cri_log::LogOptions;
use std::collections::HashMap;

/// The query, decoded as the kubelet decodes a v1 PodLogOptions.
#[derive(Debug, Default, PartialEq)]
struct Query {
    follow: bool,
    previous: bool,
    timestamps: bool,
    tail_lines: Option<i64>,
    since_seconds: Option<i64>,
    since_time: Option<DateTime<Utc>>,
    limit_bytes: Option<i64>,
}

impl Query {
    /// None if a value does not decode.
    fn parse(raw: Option<&str>) -> Option<Query> {
        let params: HashMap<String, String> =
            form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned().collect();
        // Kubernetes' rule for booleans in a query: present and not `0` or `false` is true.
        let flag = |key: &str| params.get(key).is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"));
        let int = |key: &str| params.get(key).map(|v| v.parse::<i64>()).transpose();
        // `tail` is the older name of tailLines; `all` means no limit.
        let tail_lines = match params.get("tail").map(String::as_str) {
            Some("all") => None,
            Some(tail) => Some(tail.parse().ok()?),
            None => int("tailLines").ok()?,
        };
        let since_time = match params.get("sinceTime") {
            Some(t) => Some(DateTime::parse_from_rfc3339(t).ok()?.with_timezone(&Utc)),
            None => None,
        };
        Some(Query {
            follow: flag("follow"),
            previous: flag("previous"),
            timestamps: flag("timestamps"),
            tail_lines,
            since_seconds: int("sinceSeconds").ok()?,
            since_time,
            limit_bytes: int("limitBytes").ok()?,
        })
    }

    /// ValidatePodLogOptions: no negative tail, a positive limit and sinceSeconds, and not
    /// both kinds of since.
    fn valid(&self) -> bool {
        self.tail_lines.is_none_or(|n| n >= 0)
            && self.limit_bytes.is_none_or(|n| n > 0)
            && self.since_seconds.is_none_or(|n| n > 0)
            && !(self.since_seconds.is_some() && self.since_time.is_some())
    }

    fn options(&self, now: DateTime<Utc>) -> LogOptions {
        let since = match (self.since_seconds, self.since_time) {
            (Some(seconds), _) => Some(now - chrono::Duration::seconds(seconds)),
            (None, time) => time,
        };
        LogOptions {
            follow: self.follow,
            tail_lines: self.tail_lines.map(|n| n as u64),
            since,
            timestamps: self.timestamps,
            limit_bytes: self.limit_bytes.map(|n| n as u64),
        }
    }
}

pub async fn serve(
    pods: &dyn Pods,
    namespace: &str,
    pod: &str,
    container: &str,
    query: Option<&str>,
) -> Response<Body> {
    let Some(query) = Query::parse(query) else {
        return text(400, r#"{"message": "Unable to decode query."}"#);
    };
    if !query.valid() {
        return text(422, r#"{"message": "Invalid request."}"#);
    }
    let source = match pods.log(namespace, pod, container, query.previous) {
        Ok(source) => source,
        Err(e) => return text(e.status, e.message),
    };
    let chunks = match runtime::cri_log::read(&source.path, query.options(Utc::now()), source.exited).await {
        Ok(chunks) => chunks,
        Err(e) => return text(400, format!("failed to open log file {:?}: {e}", source.path.display().to_string())),
    };
    let frames = futures::stream::unfold(chunks, |mut chunks| async move {
        let chunk: std::io::Result<Bytes> = chunks.recv().await?;
        Some((chunk.map(Frame::data), chunks))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(StreamBody::new(frames).boxed())
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_as_kubernetes_decodes_them() {
        let q = Query::parse(Some("follow=true&previous=1&timestamps&tailLines=10&limitBytes=5")).unwrap();
        assert_eq!(
            q,
            Query {
                follow: true,
                previous: true,
                timestamps: true,
                tail_lines: Some(10),
                limit_bytes: Some(5),
                ..Default::default()
            }
        );
        assert!(!Query::parse(Some("follow=false&previous=0")).unwrap().follow);
        assert_eq!(Query::parse(Some("tail=all&tailLines=3")).unwrap().tail_lines, None);
        assert_eq!(Query::parse(Some("tail=7")).unwrap().tail_lines, Some(7));
        assert_eq!(Query::parse(Some("tailLines=x")), None);
        assert_eq!(Query::parse(Some("sinceTime=yesterday")), None);
    }

    #[test]
    fn validation_and_since() {
        let valid = |raw| Query::parse(Some(raw)).unwrap().valid();
        assert!(valid("tailLines=0&sinceSeconds=1&limitBytes=1"));
        assert!(!valid("tailLines=-1"));
        assert!(!valid("limitBytes=0"));
        assert!(!valid("sinceSeconds=0"));
        assert!(!valid("sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z"));
        let now = Utc::now();
        let since = Query::parse(Some("sinceSeconds=60")).unwrap().options(now).since;
        assert_eq!(since, Some(now - chrono::Duration::seconds(60)));
        let since = Query::parse(Some("sinceTime=2024-01-01T00:00:00Z")).unwrap().options(now).since;
        assert_eq!(since.unwrap().to_rfc3339(), "2024-01-01T00:00:00+00:00");
    }
}
