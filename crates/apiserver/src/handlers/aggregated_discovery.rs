//! Aggregated discovery (apidiscovery.k8s.io/v2): every group, version and resource in one
//! answer on /api and one on /apis, so kubectl and client-go need two requests, not one per
//! group version.

use super::discovery::entries;
use crate::api::Api;
use crate::http_util::Body;
use http::{HeaderMap, Response, header};
use registry::ResourceInfo;
use serde_json::{Value, json};

pub const CONTENT_TYPE: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// True if the client's Accept header asks for aggregated discovery.
pub fn wanted(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.split(',').any(|clause| {
        let params: Vec<String> = clause.split(';').skip(1).map(|p| p.trim().to_ascii_lowercase()).collect();
        ["g=apidiscovery.k8s.io", "v=v2", "as=apigroupdiscoverylist"]
            .iter()
            .all(|want| params.iter().any(|p| p == want))
    })
}

/// One resource in the v2 form, its subresources folded in.
fn resource(r: &ResourceInfo) -> Value {
    let legacy = entries(r);
    let kind = |e: &Value| {
        json!({
            "group": e.get("group").cloned().unwrap_or(json!(r.group)),
            "version": e.get("version").cloned().unwrap_or(json!(r.version)),
            "kind": e["kind"],
        })
    };
    let main = &legacy[0];
    let mut out = json!({
        "resource": r.plural,
        "responseKind": kind(main),
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": main["verbs"],
    });
    for field in ["shortNames", "categories"] {
        if let Some(v) = main.get(field) {
            out[field] = v.clone();
        }
    }
    let subresources: Vec<Value> = legacy[1..]
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap_or("").split_once('/').map_or("", |(_, s)| s);
            json!({"subresource": name, "responseKind": kind(e), "verbs": e["verbs"]})
        })
        .collect();
    if !subresources.is_empty() {
        out["subresources"] = Value::Array(subresources);
    }
    out
}

/// The two documents (/api's, then /apis'), serialized once: the catalog never changes while
/// the server runs. Each with its ETag.
#[derive(Default)]
pub struct Cache(std::sync::OnceLock<[(bytes::Bytes, String); 2]>);

/// The discovery document of the core group (`core == true`, for /api) or of every named
/// group, from the cache; 304 when the client already has it.
pub fn document(api: &Api, core: bool, headers: &HeaderMap) -> Response<Body> {
    let docs = api.discovery.0.get_or_init(|| {
        [true, false].map(|core| {
            let body = serde_json::to_vec(&build(api, core)).unwrap_or_default();
            let etag = format!("\"{:016X}\"", {
                use std::hash::{Hash, Hasher};
                let mut h = std::hash::DefaultHasher::new();
                body.hash(&mut h);
                h.finish()
            });
            (bytes::Bytes::from(body), etag)
        })
    });
    let (body, etag) = &docs[usize::from(!core)];
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, CONTENT_TYPE)
        .header(header::VARY, "Accept")
        .header(header::ETAG, etag.as_str());
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let (status, body) = if matches { (304, bytes::Bytes::new()) } else { (200, body.clone()) };
    builder.status(status).body(crate::http_util::full(body)).expect("static response parts are valid")
}

fn build(api: &Api, core: bool) -> Value {
    let items: Vec<Value> = api
        .registry
        .groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = api
                        .registry
                        .all()
                        .iter()
                        .filter(|r| r.group == group && r.version == *v)
                        .map(resource)
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group}, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}
