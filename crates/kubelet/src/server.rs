//! The kubelet API (port 10250): what the API server reaches the node through for
//! `kubectl logs`, `exec`, `attach`, `port-forward` and `nodes/proxy`.
//!
//! Like the kubelet started without a serving certificate, the server makes a self-signed one
//! for the node's name and addresses; the API server does not check it (it does not know it).
//! The API server, for its part, must present a client certificate signed by the cluster CA:
//! connections without one do not get past the TLS handshake; and its user must be one the API
//! lets use `nodes/proxy` ([`authz`]).
//!
//! The server does not know pods itself: it asks [`Pods`], which the agent implements over
//! what it runs.

mod authz;
mod container_logs;
mod streams;
mod tls;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

pub use crate::streaming::port_forward::Target;
pub use crate::streaming::session::{Outcome, Session};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The default port of the kubelet API.
pub const DEFAULT_PORT: u16 = 10250;

/// The pods of this node, as the server needs them.
pub trait Pods: Send + Sync {
    /// The log of a container of a pod (of its previous run, with `previous`), or why there is
    /// none, in the kubelet's words.
    fn log(&self, namespace: &str, pod: &str, container: &str, previous: bool) -> Result<LogSource, PodError>;

    /// What runs `command` in a running container of a pod for a session.
    fn exec(&self, namespace: &str, pod: &str, container: &str, command: Vec<String>) -> Result<Runner, PodError>;

    /// What joins a running container's own streams for a session.
    fn attach(&self, namespace: &str, pod: &str, container: &str) -> Result<Runner, PodError>;

    /// Where a pod's ports are reached, for port-forward.
    fn port_forward(&self, namespace: &str, pod: &str) -> Result<Target, PodError>;

    /// Every pod on the node, as the API had it when the node took it (`GET /pods`).
    fn all(&self) -> Vec<serde_json::Value>;
}

/// Runs a session once the client's streams are set up; its outcome ends it.
pub type Runner = Box<dyn FnOnce(Session) -> futures::future::BoxFuture<'static, Outcome> + Send>;

/// Where a container's log is, and how a following reader knows it is complete.
#[derive(Clone)]
pub struct LogSource {
    /// The container's CRI log file.
    pub path: PathBuf,
    /// True once the container has exited (always, for a previous run).
    pub exited: runtime::cri_log::Exited,
}

/// Why a pod's log or stream cannot be served: the HTTP status and the kubelet's message,
/// which the API server passes on to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodError {
    pub status: u16,
    pub message: String,
}

impl PodError {
    /// 404 for a pod this node does not run.
    pub fn pod_not_found(pod: &str) -> PodError {
        PodError { status: 404, message: format!("pod {pod:?} does not exist") }
    }

    /// 404 for a container the pod's spec does not have.
    pub fn container_not_found(container: &str, pod: &str) -> PodError {
        PodError { status: 404, message: format!("container {container:?} not found in pod {pod:?}") }
    }

    /// 400 for a container that has not started yet; `reason` is its waiting reason
    /// (`ContainerCreating`, `PodInitializing`, `ImagePullBackOff`...).
    pub fn waiting(container: &str, pod: &str, reason: &str) -> PodError {
        PodError {
            status: 400,
            message: format!("container {container:?} in pod {pod:?} is waiting to start: {reason}"),
        }
    }

    /// 400 for a stream to a container that does not run.
    pub fn not_running(container: &str, pod: &str) -> PodError {
        PodError { status: 400, message: format!("container {container:?} in pod {pod:?} is not running") }
    }

    /// 400 for `previous` when the container has not been restarted.
    pub fn no_previous(container: &str, pod: &str) -> PodError {
        PodError {
            status: 400,
            message: format!("previous terminated container {container:?} in pod {pod:?} not found"),
        }
    }
}

pub type Body = BoxBody<Bytes, std::io::Error>;

pub(crate) fn empty() -> Body {
    Full::new(Bytes::new()).map_err(|never| match never {}).boxed()
}

pub(crate) fn text(status: u16, message: impl Into<String>) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(message.into())).map_err(|never| match never {}).boxed())
        .expect("static response parts are valid")
}

/// Listens on `listen` and serves the kubelet API until the task is dropped or aborted.
/// Returns the address bound (for port 0) and the serving task.
pub async fn serve(
    listen: SocketAddr,
    node_name: &str,
    addresses: &[IpAddr],
    client_ca_pem: &str,
    pods: Arc<dyn Pods>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let acceptor = TlsAcceptor::from(tls::server_config(node_name, addresses, client_ca_pem)?);
    let listener = TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {listen} for the kubelet API: {e} (choose another --kubelet-port)")
    })?;
    let bound = listener.local_addr()?;
    Ok((bound, tokio::spawn(accept(listener, acceptor, pods))))
}

async fn accept(listener: TcpListener, acceptor: TlsAcceptor, pods: Arc<dyn Pods>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "kubelet API: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, pods) = (acceptor.clone(), pods.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "kubelet API: TLS handshake refused");
                    return;
                }
            };
            // The handshake required a certificate, so there is one.
            let caller = tls.get_ref().1.peer_certificates().and_then(|certs| certs.first());
            let caller = authz::Caller::from_certificate(caller.map_or(&[][..], |cert| cert.as_ref()));
            let service = service_fn(move |req: Request<Incoming>| {
                let (pods, refusal) = (pods.clone(), caller.refusal(req.method()));
                async move {
                    Ok::<_, std::convert::Infallible>(match refusal {
                        Some(refused) => refused,
                        None => route(req, pods).await,
                    })
                }
            });
            // Streams take the connection over with an upgrade (HTTP/1.1 only).
            let builder = Builder::new(TokioExecutor::new());
            if let Err(e) = builder.serve_connection_with_upgrades(TokioIo::new(tls), service).await {
                tracing::debug!(%peer, error = %e, "kubelet API: connection ended with an error");
            }
        });
    }
}

/// Routes a request by its path, as the kubelet's web services do. Streams may name the
/// pod's uid too (`/exec/{namespace}/{pod}/{uid}/{container}`), which is not needed here.
async fn route(req: Request<Incoming>, pods: Arc<dyn Pods>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let streaming = matches!(*req.method(), Method::GET | Method::POST);
    match segments.as_slice() {
        ["containerLogs", namespace, pod, container] if req.method() == Method::GET => {
            container_logs::serve(pods.as_ref(), namespace, pod, container, req.uri().query()).await
        }
        ["containerLogs", ..] if req.method() != Method::GET => text(405, "405: Method Not Allowed"),
        ["exec", namespace, pod, container] | ["exec", namespace, pod, _, container] if streaming => {
            streams::exec(req, pods.as_ref(), namespace, pod, container)
        }
        ["attach", namespace, pod, container] | ["attach", namespace, pod, _, container] if streaming => {
            streams::attach(req, pods.as_ref(), namespace, pod, container)
        }
        ["portForward", namespace, pod] | ["portForward", namespace, pod, _] if streaming => {
            streams::port_forward(req, pods.as_ref(), namespace, pod)
        }
        ["exec" | "attach" | "portForward", ..] => text(405, "405: Method Not Allowed"),
        ["pods"] if req.method() == Method::GET => {
            let list = serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": pods.all()});
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(list.to_string())).map_err(|never| match never {}).boxed())
                .expect("static response parts are valid")
        }
        ["healthz"] => text(200, "ok"),
        _ => text(404, "404 page not found"),
    }
}
