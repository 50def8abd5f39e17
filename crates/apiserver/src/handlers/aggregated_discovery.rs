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

/// The discovery document of the core group (`core == true`, for /api) or of every named group.
pub fn document(api: &Api, core: bool) -> Response<Body> {
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
    let body = json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items});
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, CONTENT_TYPE)
        .header(header::VARY, "Accept")
        .body(crate::http_util::full(serde_json::to_vec(&body).unwrap_or_default()))
        .expect("static response parts are valid")
}
