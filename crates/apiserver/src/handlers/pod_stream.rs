//! pods/exec, pods/attach and pods/portforward: the client's connection, upgraded to a
//! WebSocket or to SPDY, joined to the same upgrade at the kubelet of the pod's node, which
//! speaks the streaming protocols itself (as kube-apiserver proxies to a kubelet that
//! declares ExtendWebSocketsToKubelet).
//!
//! The pod is read (404), the container checked as for logs, and the client's options turned
//! into the kubelet's query (`command`, `input`, `output`, `error`, `tty`; `port` for
//! port-forward). A request that does not ask for an upgrade is refused; an answer of the
//! kubelet's other than 101 is passed back as it is.

use super::Ctx;
use super::read::fetch;
use crate::authz::{Decision, Request as AuthzRequest};
use crate::error::{ApiError, ApiResult};
use crate::http_util::{Body, RequestBody};
use crate::request_info::ResourceRequest;
use http::{HeaderName, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

/// The request headers that make the upgrade, passed to the kubelet.
const UPGRADE_HEADERS: [&str; 6] = [
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "x-stream-protocol-version",
];

pub async fn connect(ctx: Ctx, mut req: Request<RequestBody>) -> ApiResult<Response<Body>> {
    let subresource = ctx.req.subresource.clone().unwrap_or_default();
    // A WebSocket comes as a GET, authorized as `get`; since Kubernetes 1.35 these
    // subresources also need `create`, which a SPDY POST is authorized as.
    if ctx.req.verb != "create" {
        let create = ResourceRequest { verb: "create", ..ctx.req.clone() };
        if let Decision::Deny(why) = ctx.api.authorizer.authorize(&ctx.user, &AuthzRequest::Resource(&create)) {
            return Err(ApiError::forbidden(why));
        }
    }
    let name = ctx.name().to_string();
    let namespace = ctx.namespace().unwrap_or("default").to_string();
    let pod = fetch(&ctx, &name).await?;
    let raw: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).into_owned().collect();
    let path = match subresource.as_str() {
        "portforward" => port_forward_path(&namespace, &name, &raw)?,
        kind => {
            let container =
                super::pod_log::container(&pod, &name, ctx.query.get("container").filter(|c| !c.is_empty()))?;
            stream_path(kind, &namespace, &name, &container, &raw)
        }
    };
    let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) else {
        return Err(ApiError::bad_request(format!("pod {name} does not have a host assigned")));
    };
    if !req.headers().contains_key(header::UPGRADE) {
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    let (host, port) = super::node_kubelet::locate(&ctx, node).await?;
    let mut forward = Request::builder().method(req.method()).uri(&path);
    for name in UPGRADE_HEADERS {
        for value in req.headers().get_all(name) {
            forward = forward.header(name, value);
        }
    }
    let forward = forward.body(()).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut answer = ctx
        .api
        .kubelet
        .send(&host, port, forward)
        .await
        .map_err(|e| ApiError::internal(format!("error dialing backend: {e}")))?;
    if answer.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (parts, body) = answer.into_parts();
        return Ok(Response::from_parts(parts, body.map_err(std::io::Error::other).boxed()));
    }
    let from_client = hyper::upgrade::on(&mut req);
    let from_kubelet = hyper::upgrade::on(&mut answer);
    let mut response = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for (name, value) in answer.headers() {
        if name != header::CONTENT_LENGTH && name != HeaderName::from_static("date") {
            response = response.header(name, value);
        }
    }
    tokio::spawn(async move {
        let (client, kubelet) = match tokio::try_join!(from_client, from_kubelet) {
            Ok(both) => both,
            Err(e) => return tracing::debug!(error = %e, "a streaming upgrade did not complete"),
        };
        let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(client), &mut TokioIo::new(kubelet)).await;
    });
    Ok(response.body(crate::http_util::full("")).expect("the kubelet's headers are valid"))
}

/// The kubelet's path for exec or attach, with its query in Go's order (by key): the
/// command's words, then the streams asked for (`stdin` is its `input`, `stdout` its
/// `output`, `stderr` its `error`).
fn stream_path(kind: &str, namespace: &str, name: &str, container: &str, raw: &[(String, String)]) -> String {
    let flag = |key: &str| raw.iter().any(|(k, v)| k == key && v != "0" && !v.eq_ignore_ascii_case("false"));
    let mut q = form_urlencoded::Serializer::new(String::new());
    if kind == "exec" {
        for (_, word) in raw.iter().filter(|(k, _)| k == "command") {
            q.append_pair("command", word);
        }
    }
    for (client, kubelet) in [("stderr", "error"), ("stdin", "input"), ("stdout", "output"), ("tty", "tty")] {
        if flag(client) {
            q.append_pair(kubelet, "1");
        }
    }
    format!("/{kind}/{namespace}/{name}/{container}?{}", q.finish())
}

/// The kubelet's path for port-forward; the ports, if the client named them (the Python
/// client does; kubectl names them in its streams instead), each checked.
fn port_forward_path(namespace: &str, name: &str, raw: &[(String, String)]) -> ApiResult<String> {
    let mut ports = Vec::new();
    for (_, value) in raw.iter().filter(|(k, _)| k == "ports") {
        for port in value.split(',').map(str::trim) {
            match port.parse::<u16>() {
                Ok(p) if p > 0 => ports.push(p.to_string()),
                _ => return Err(ApiError::bad_request(format!("invalid port {port:?}: must be from 1 to 65535"))),
            }
        }
    }
    let path = format!("/portForward/{namespace}/{name}");
    if ports.is_empty() {
        return Ok(path);
    }
    let query = form_urlencoded::Serializer::new(String::new()).append_pair("port", &ports.join(",")).finish();
    Ok(format!("{path}?{query}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(query: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(query.as_bytes()).into_owned().collect()
    }

    #[test]
    fn options_become_the_kubelets_query() {
        let q = raw("command=sh&command=-c&command=echo+hi&container=app&stdin=true&stdout=true&tty=true&stderr=false");
        assert_eq!(
            stream_path("exec", "default", "web", "app", &q),
            "/exec/default/web/app?command=sh&command=-c&command=echo+hi&input=1&output=1&tty=1"
        );
        assert_eq!(stream_path("attach", "ns", "web", "app", &q), "/attach/ns/web/app?input=1&output=1&tty=1");
    }

    #[test]
    fn ports_are_checked_and_passed_on() {
        assert_eq!(port_forward_path("ns", "web", &raw("")).unwrap(), "/portForward/ns/web");
        assert_eq!(
            port_forward_path("ns", "web", &raw("ports=80,8080")).unwrap(),
            "/portForward/ns/web?port=80%2C8080"
        );
        assert_eq!(port_forward_path("ns", "web", &raw("ports=0")).unwrap_err().code, 400);
    }
}
