//! `/openapi/v2` and `/openapi/v3`: built on first request, kept gzip-compressed with their
//! ETags, and served from memory. A client that sends the ETag back, or fetches a v3 document
//! by its `?hash=`, costs next to nothing.

mod documents;
mod operations;
mod v2_protobuf;

use crate::api::Api;
use crate::error::{ApiError, ApiResult};
use crate::http_util::{Body, full};
use crate::request_info::Query;
use bytes::Bytes;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use http::{HeaderMap, Response, StatusCode, header};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use tokio::sync::OnceCell;

/// The documents, built once.
#[derive(Default)]
pub struct OpenApi {
    documents: OnceCell<Documents>,
}

struct Documents {
    v2: Document,
    v2_protobuf: Document,
    v3_root: Document,
    /// By path under `/openapi/v3/`: `api/v1`, `apis/apps/v1`.
    v3: HashMap<String, Document>,
}

/// One serialized document.
struct Document {
    /// The hash of the body: the ETag (quoted) and the `?hash=` of v3 URLs.
    hash: String,
    content_type: &'static str,
    gzip: Bytes,
}

const JSON: &str = "application/json";
/// Clients ask for `...spec.v2@v1.0+protobuf`; the answer is labelled with the form Go's
/// media type parser accepts, as Kubernetes labels it.
const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

impl Document {
    fn json(value: &serde_json::Value) -> Document {
        Document::new(&serde_json::to_vec(value).expect("a JSON value serializes"), JSON)
    }

    fn new(body: &[u8], content_type: &'static str) -> Document {
        let mut hasher = std::hash::DefaultHasher::new();
        (content_type, body).hash(&mut hasher);
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(body).expect("writing to memory");
        Document {
            hash: format!("{:016X}", hasher.finish()),
            content_type,
            gzip: encoder.finish().expect("writing to memory").into(),
        }
    }
}

fn build(api: &Api) -> Documents {
    let (mut v2, mut v2_pb, mut v3) = (None, None, HashMap::new());
    documents::build(&api.registry, &mut |path, doc| match path {
        None => {
            v2_pb = Some(Document::new(&v2_protobuf::encode(&doc), V2_PROTOBUF));
            v2 = Some(Document::json(&doc));
        }
        Some(path) => {
            v3.insert(path.to_string(), Document::json(&doc));
        }
    });
    let mut root = serde_json::Map::new();
    for (path, doc) in &v3 {
        root.insert(
            path.clone(),
            serde_json::json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", doc.hash)}),
        );
    }
    release_freed_memory();
    Documents {
        v2_protobuf: v2_pb.expect("the v2 document is built"),
        v2: v2.expect("the v2 document is built"),
        v3_root: Document::json(&serde_json::json!({"paths": root})),
        v3,
    }
}

/// Building the documents takes tens of megabytes of JSON values, all freed again; glibc
/// keeps freed memory in its arenas unless asked to give it back.
fn release_freed_memory() {
    // SAFETY: malloc_trim only returns free pages of the allocator's heaps to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Serves `/openapi/v2`, `/openapi/v3` and `/openapi/v3/<group version>`.
pub async fn serve(
    api: &std::sync::Arc<Api>,
    path: &str,
    query: &Query,
    headers: &HeaderMap,
) -> ApiResult<Response<Body>> {
    let built = api.clone();
    let docs = api
        .openapi
        .documents
        .get_or_init(|| async move {
            tokio::task::spawn_blocking(move || build(&built)).await.expect("building OpenAPI does not panic")
        })
        .await;
    let (doc, hashed) = match path.trim_end_matches('/') {
        "/openapi/v2" => match v2_format(headers) {
            Some(V2_PROTOBUF) => (&docs.v2_protobuf, false),
            Some(_) => (&docs.v2, false),
            None => {
                return Err(ApiError::not_acceptable(format!("/openapi/v2 is served as {JSON} or {V2_PROTOBUF}")));
            }
        },
        "/openapi/v3" => (&docs.v3_root, false),
        other => {
            let gv = other.strip_prefix("/openapi/v3/").ok_or_else(ApiError::not_found_path)?;
            let doc = docs.v3.get(gv).ok_or_else(ApiError::not_found_path)?;
            match query.get("hash") {
                Some(hash) if hash != doc.hash => {
                    // An old hash: send the client to the current document, as Kubernetes does.
                    return Ok(Response::builder()
                        .status(StatusCode::MOVED_PERMANENTLY)
                        .header(header::LOCATION, format!("/openapi/v3/{gv}?hash={}", doc.hash))
                        .body(full(Bytes::new()))
                        .expect("static response parts are valid"));
                }
                Some(_) => (doc, true),
                None => (doc, false),
            }
        }
    };
    Ok(respond(doc, hashed, headers))
}

/// The form of `/openapi/v2` the Accept header asks for first.
fn v2_format(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.trim().is_empty() {
        return Some(JSON);
    }
    accept.split(',').find_map(|clause| match clause.split(';').next().unwrap_or("").trim() {
        "application/json" | "application/*" | "*/*" => Some(JSON),
        m if m.starts_with("application/com.github.proto-openapi.spec.v2") => Some(V2_PROTOBUF),
        _ => None,
    })
}

fn respond(doc: &Document, hashed: bool, headers: &HeaderMap) -> Response<Body> {
    let etag = format!("\"{}\"", doc.hash);
    let cache = if hashed { "public, immutable, max-age=31536000" } else { "no-cache, private" };
    let builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, cache)
        .header(header::VARY, "Accept-Encoding");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if matches {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(full(Bytes::new()))
            .expect("static response parts are valid");
    }
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.split(';').next().unwrap_or("").trim() == "gzip"));
    let builder = builder.status(StatusCode::OK).header(header::CONTENT_TYPE, doc.content_type);
    if gzip_ok {
        return builder
            .header(header::CONTENT_ENCODING, "gzip")
            .body(full(doc.gzip.clone()))
            .expect("static response parts are valid");
    }
    let mut json = Vec::new();
    GzDecoder::new(&doc.gzip[..]).read_to_end(&mut json).expect("our own gzip decodes");
    builder.body(full(json)).expect("static response parts are valid")
}
