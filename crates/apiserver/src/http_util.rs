//! Bodies in and out: size limits, content types, and the response formats a client may ask
//! for in its Accept header (JSON, YAML, Tables; protobuf responses are not offered, so clients take
//! JSON), and request bodies in JSON, YAML or Kubernetes protobuf.

use crate::error::{ApiError, ApiResult};
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};
use serde_json::Value;

pub type Body = BoxBody<Bytes, std::io::Error>;

/// A request's body, from a connection or from a component in this process ([`crate::Loopback`]).
pub type RequestBody = BoxBody<Bytes, hyper::Error>;

/// kube-apiserver's limit on request bodies.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

pub async fn read_body(body: RequestBody) -> ApiResult<Bytes> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large()),
        Err(e) => Err(ApiError::bad_request(format!("reading the request body: {e}"))),
    }
}

/// The media type of a request body, without parameters.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Decodes a JSON, YAML or Kubernetes protobuf object body.
pub fn decode_object(registry: &registry::Registry, headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    let ct = content_type(headers);
    let value: Value = match ct.as_str() {
        "application/vnd.kubernetes.protobuf" => registry::protobuf::decode(body, |v, k| registry.definition_of(v, k))
            .map_err(|e| {
                ApiError::bad_request(format!("the body of the request could not be decoded as protobuf: {e}"))
            })?,
        "" | "application/json" | "*/*" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the body of the request could not be decoded as JSON: {e}")))?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the body of the request could not be decoded as YAML: {e}")))?,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if !value.is_object() {
        return Err(ApiError::bad_request("the body of the request must be a JSON or YAML object"));
    }
    Ok(value)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    /// meta.k8s.io/v1 Table, for kubectl's server-side printing.
    Table,
    /// meta.k8s.io/v1 PartialObjectMetadata (and PartialObjectMetadataList): each object's
    /// metadata only, for clients that need no more (metadata informers).
    Metadata,
}

/// Picks the response format from the Accept header, in the client's order of preference.
pub fn negotiate(headers: &HeaderMap, tables_allowed: bool) -> ApiResult<Format> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.trim().is_empty() {
        return Ok(Format::Json);
    }
    for clause in accept.split(',') {
        let mut parts = clause.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let params: Vec<String> = parts.map(|p| p.replace(' ', "").to_ascii_lowercase()).collect();
        let wants_table = params.iter().any(|p| p == "as=table");
        let wants_metadata =
            params.iter().any(|p| p == "as=partialobjectmetadata" || p == "as=partialobjectmetadatalist");
        let other_as = params.iter().any(|p| p.starts_with("as=") && p != "as=table");
        let meta_v1 = params.iter().any(|p| p == "v=v1") && params.iter().any(|p| p == "g=meta.k8s.io");
        match media.as_str() {
            "application/json" | "application/*" | "*/*" if wants_table && tables_allowed && meta_v1 => {
                return Ok(Format::Table);
            }
            // A Table where none is offered: the client's next choice decides.
            "application/json" | "application/*" | "*/*" if wants_table => {}
            "application/json" | "application/*" | "*/*" if wants_metadata && meta_v1 => return Ok(Format::Metadata),
            "application/json" | "application/*" | "*/*" if !other_as => return Ok(Format::Json),
            "application/yaml" if !other_as && !wants_table => return Ok(Format::Yaml),
            _ => {}
        }
    }
    Err(ApiError::not_acceptable(
        "only the following media types are accepted: application/json, application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io, application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
    ))
}

pub fn respond(code: u16, value: &Value, format: Format) -> Response<Body> {
    let (bytes, ct) = match format {
        Format::Yaml => (serde_yaml::to_string(value).unwrap_or_default().into_bytes(), "application/yaml"),
        _ => (serde_json::to_vec(value).unwrap_or_default(), "application/json"),
    };
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::OK))
        .header(header::CONTENT_TYPE, ct)
        .body(full(bytes))
        .expect("static response parts are valid")
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    let mut resp = respond(e.code, &e.to_status(), Format::Json);
    if let Some(seconds) = e.retry_after() {
        resp.headers_mut().insert(header::RETRY_AFTER, http::HeaderValue::from(seconds));
    }
    resp
}

pub fn text(code: u16, body: String) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::OK))
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("X-Content-Type-Options", "nosniff")
        .body(full(body))
        .expect("static response parts are valid")
}
