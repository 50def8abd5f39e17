//! Discovery: /api, /apis, /apis/<group> and the resource lists of each group version, with
//! short names and categories, so that `kubectl get po`, `deploy` and `get all` resolve.

use crate::api::Api;
use crate::error::{ApiError, ApiResult};
use crate::http_util::{Body, Format, respond};
use http::{HeaderMap, Response};
use registry::{ResourceInfo, Verbs};
use serde_json::{Value, json};

pub fn api_versions(api: &Api, headers: &HeaderMap) -> Response<Body> {
    if super::aggregated_discovery::wanted(headers) {
        return super::aggregated_discovery::document(api, true, headers);
    }
    respond(
        200,
        &json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": api.advertise}],
        }),
        Format::Json,
    )
}

fn group_json(name: &str, versions: &[&str]) -> Value {
    let gv = |v: &str| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    json!({
        "name": name,
        "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
        "preferredVersion": gv(versions[0]),
    })
}

pub fn api_groups(api: &Api, headers: &HeaderMap) -> Response<Body> {
    if super::aggregated_discovery::wanted(headers) {
        return super::aggregated_discovery::document(api, false, headers);
    }
    let groups: Vec<Value> = api
        .registry
        .groups()
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, versions)| group_json(g, versions))
        .collect();
    respond(200, &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}), Format::Json)
}

pub fn api_group(api: &Api, group: &str) -> ApiResult<Response<Body>> {
    let groups = api.registry.groups();
    let (_, versions) =
        groups.iter().find(|(g, _)| *g == group && !g.is_empty()).ok_or_else(ApiError::not_found_path)?;
    let mut body = group_json(group, versions);
    body["kind"] = json!("APIGroup");
    body["apiVersion"] = json!("v1");
    Ok(respond(200, &body, Format::Json))
}

fn subresource(r: &ResourceInfo, name: &str, kind: &str, verbs: &[&str]) -> Value {
    json!({"name": format!("{}/{name}", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": kind, "verbs": verbs})
}

pub(super) fn entries(r: &ResourceInfo) -> Vec<Value> {
    let mut main = json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs.names(),
    });
    if !r.short_names.is_empty() {
        main["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        main["categories"] = json!(r.categories);
    }
    let mut out = vec![main];
    if r.verbs == Verbs::CreateOnly {
        return out;
    }
    if r.status {
        out.push(subresource(r, "status", r.kind, &["get", "patch", "update"]));
    }
    if r.scale {
        let mut scale = subresource(r, "scale", "Scale", &["get", "patch", "update"]);
        scale["group"] = json!("autoscaling");
        scale["version"] = json!("v1");
        out.push(scale);
    }
    for sub in r.connect_subresources {
        out.push(match *sub {
            "binding" => subresource(r, sub, "Binding", &["create"]),
            // Served at v1 but an object of policy/v1, which kubectl drain looks for.
            "eviction" => {
                let mut eviction = subresource(r, sub, "Eviction", &["create"]);
                eviction["group"] = json!("policy");
                eviction["version"] = json!("v1");
                eviction
            }
            "log" => subresource(r, sub, "Pod", &["get"]),
            "exec" => subresource(r, sub, "PodExecOptions", &["create", "get"]),
            "attach" => subresource(r, sub, "PodAttachOptions", &["create", "get"]),
            "portforward" => subresource(r, sub, "PodPortForwardOptions", &["create", "get"]),
            "proxy" => subresource(r, sub, "NodeProxyOptions", &["create", "delete", "get", "patch", "update"]),
            other => subresource(r, other, r.kind, &["get"]),
        });
    }
    if r.plural == "namespaces" {
        out.push(subresource(r, "finalize", "Namespace", &["update"]));
    }
    out
}

pub fn resource_list(api: &Api, group: &str, version: &str) -> ApiResult<Response<Body>> {
    let resources: Vec<Value> =
        api.registry.all().iter().filter(|r| r.group == group && r.version == version).flat_map(entries).collect();
    if resources.is_empty() {
        return Err(ApiError::not_found_path());
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Ok(respond(
        200,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
        Format::Json,
    ))
}
