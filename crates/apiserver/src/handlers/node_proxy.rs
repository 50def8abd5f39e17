//! `nodes/{name}/proxy/{path}`: a GET passed to the node's kubelet API at `/{path}` with its
//! query, and the kubelet's answer passed back as it is, as kube-apiserver's node proxy does
//! (`kubectl get --raw /api/v1/nodes/<node>/proxy/pods`, `.../proxy/healthz`).

use super::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http_util::{Body, RequestBody};
use http::{Method, Request, Response};
use http_body_util::BodyExt;

pub async fn proxy(ctx: Ctx, req: Request<RequestBody>) -> ApiResult<Response<Body>> {
    if req.method() != Method::GET {
        return Err(ApiError::method_not_allowed("skiff proxies only GET requests to a node's kubelet"));
    }
    let path = ctx.req.subresource.as_deref().and_then(|s| s.strip_prefix("proxy")).unwrap_or("");
    let mut target = if path.is_empty() { "/".to_string() } else { path.to_string() };
    if let Some(query) = req.uri().query() {
        target = format!("{target}?{query}");
    }
    let (host, port) = super::node_kubelet::locate(&ctx, ctx.name()).await?;
    let forward = Request::get(&target).body(()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let answer = ctx.api.kubelet.send(&host, port, forward).await.map_err(|e| {
        ApiError::new(503, "ServiceUnavailable", format!("error trying to reach the node's kubelet: {e}"))
    })?;
    let (parts, body) = answer.into_parts();
    Ok(Response::from_parts(parts, body.map_err(std::io::Error::other).boxed()))
}
