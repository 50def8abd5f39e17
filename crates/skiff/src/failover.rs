//! A Kubernetes client for a cluster with several API servers: requests go to one server at a
//! time, and once a request cannot reach it (refused, reset, timed out), the following requests
//! go to the next server listed. The failed request is not sent again, since its body may not be
//! read twice: callers retry as they do on any error (watches resume, heartbeats come again), and
//! reach a live server.

use futures::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tracing::warn;

/// A client for `servers`, in order of preference, with `config`'s credentials (which every
/// server of one cluster accepts: they share its CA).
pub fn client(config: &kube::Config, servers: &[http::Uri]) -> anyhow::Result<kube::Client> {
    let clients = servers
        .iter()
        .map(|server| {
            let mut config = config.clone();
            config.cluster_url = server.clone();
            kube::Client::try_from(config)
        })
        .collect::<Result<Vec<_>, _>>()?;
    anyhow::ensure!(!clients.is_empty(), "no API server to connect to");
    let servers = servers.iter().map(ToString::to_string).collect();
    let failover = Failover { clients: Arc::new(clients), servers: Arc::new(servers), current: Arc::default() };
    Ok(kube::Client::new(failover, config.default_namespace.clone()))
}

#[derive(Clone)]
struct Failover {
    clients: Arc<Vec<kube::Client>>,
    servers: Arc<Vec<String>>,
    /// The server requests go to.
    current: Arc<AtomicUsize>,
}

impl tower::Service<http::Request<kube::client::Body>> for Failover {
    type Response = http::Response<kube::client::Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<kube::client::Body>) -> Self::Future {
        let failover = self.clone();
        Box::pin(async move {
            let server = failover.current.load(Ordering::Relaxed);
            let answer = failover.clients[server].send(request).await;
            // `send` fails only when no answer came; an answer of any status is an answer.
            if let Err(e) = &answer {
                let next = (server + 1) % failover.clients.len();
                if next != server
                    && failover.current.compare_exchange(server, next, Ordering::Relaxed, Ordering::Relaxed).is_ok()
                {
                    warn!(error = %e, from = failover.servers[server], to = failover.servers[next], "moving to another API server");
                }
            }
            answer
        })
    }
}
