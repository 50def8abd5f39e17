//! Operations endpoints: /healthz, /livez, /readyz (with `?verbose` and per-check paths),
//! /version and /metrics.

use crate::api::Api;
use crate::error::{ApiError, ApiResult};
use crate::http_util::{Body, Format, respond, text};
use crate::request_info::Query;
use http::Response;
use serde_json::json;

pub const KUBERNETES_VERSION: &str = "v1.37.0";

async fn checks(api: &Api, ready: bool) -> Vec<(&'static str, Result<(), String>)> {
    let mut out = vec![("ping", Ok(())), ("log", Ok(()))];
    if ready {
        let store = api.store.current_revision().await.map(|_| ()).map_err(|e| e.to_string());
        out.push(("etcd", store));
        out.push(("informer-sync", Ok(())));
    }
    out.push(("poststarthook/start-apiserver", Ok(())));
    out
}

async fn health(api: &Api, endpoint: &str, single: Option<&str>, query: &Query) -> ApiResult<Response<Body>> {
    let results = checks(api, endpoint == "readyz").await;
    if let Some(name) = single {
        let (_, result) = results.iter().find(|(n, _)| *n == name).ok_or_else(ApiError::not_found_path)?;
        return Ok(match result {
            Ok(()) => text(200, "ok".into()),
            Err(e) => text(500, format!("internal server error: {e}")),
        });
    }
    let failed = results.iter().any(|(_, r)| r.is_err());
    let code = if failed { 500 } else { 200 };
    if !query.has("verbose") && !failed {
        return Ok(text(code, "ok".into()));
    }
    let mut out = String::new();
    for (name, result) in &results {
        match result {
            Ok(()) => out.push_str(&format!("[+]{name} ok\n")),
            Err(_) => out.push_str(&format!("[-]{name} failed: reason withheld\n")),
        }
    }
    out.push_str(&format!("{endpoint} check {}", if failed { "failed" } else { "passed" }));
    Ok(text(code, out))
}

pub async fn serve(api: &Api, path: &str, query: &Query) -> ApiResult<Response<Body>> {
    let trimmed = path.trim_end_matches('/');
    for endpoint in ["healthz", "livez", "readyz"] {
        let base = format!("/{endpoint}");
        if trimmed == base {
            return health(api, endpoint, None, query).await;
        }
        if let Some(check) = trimmed.strip_prefix(&format!("{base}/")) {
            return health(api, endpoint, Some(check), query).await;
        }
    }
    match trimmed {
        "/version" => Ok(respond(200, &version(), Format::Json)),
        "/metrics" => Ok(Response::builder()
            .status(200)
            .header(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")
            .body(crate::http_util::full(api.metrics.render()))
            .expect("static response parts are valid")),
        _ => Err(ApiError::not_found_path()),
    }
}

fn version() -> serde_json::Value {
    json!({
        "major": "1",
        "minor": "37",
        "emulationMajor": "1",
        "emulationMinor": "37",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "36",
        "gitVersion": format!("{KUBERNETES_VERSION}+skiff-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "n/a (rust)",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a }),
    })
}
