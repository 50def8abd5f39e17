//! A kube client for a component that runs in the server's process (the scheduler, the
//! controller manager): its requests go through the API server's [`apiserver::Loopback`], not
//! through a socket and TLS, and are retried on 429 and 503 as kube's default client retries
//! them.

use http_body_util::BodyExt;
use kube::client::retry::RetryPolicy;
use tower::retry::RetryLayer;
use tower::{BoxError, ServiceBuilder};

/// A client of `loopback` that acts as `user` (system:kube-scheduler, say).
pub fn client(loopback: &apiserver::Loopback, user: &str) -> kube::Client {
    let loopback = loopback.as_user(user);
    let api = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let loopback = loopback.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            // A task of its own, as a connection's request has: a component that sends many
            // at once (join_all of 500 creates) would otherwise serve them all on one thread.
            let request = http::Request::from_parts(parts, body);
            Ok::<_, BoxError>(tokio::spawn(async move { loopback.handle(request).await }).await?)
        }
    });
    let service = ServiceBuilder::new().layer(RetryLayer::new(RetryPolicy::server_retry())).service(api);
    kube::client::ClientBuilder::new(service, "default").build()
}
