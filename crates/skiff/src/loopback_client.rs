//! A kube client for a component that runs in the server's process (the scheduler, the
//! controller manager): its requests go through the API server's [`apiserver::Loopback`], not
//! through a socket and TLS, and are retried on 429 and 503 as kube's default client retries
//! them.
//!
//! The objects it delivers come without `metadata.managedFields`, as kube-scheduler's and
//! kube-controller-manager's informers drop them: no component reads them, and decoded they are
//! most of what a pod costs to decode and to hold. They are cut out of the JSON text before the
//! component decodes it. A write that carries no managedFields leaves the stored ones as they
//! are, so nothing is lost when a component writes back what it read.

use bytes::Bytes;
use http_body_util::BodyExt;
use kube::client::retry::RetryPolicy;
use tower::retry::RetryLayer;
use tower::{BoxError, ServiceBuilder};

/// A client of `loopback`, acting as its user (`Loopback::as_user`, `Loopback::as_node`).
pub fn client(loopback: &apiserver::Loopback) -> kube::Client {
    let loopback = loopback.clone();
    let api = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let loopback = loopback.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            // A task of its own, as a connection's request has: a component that sends many
            // at once (join_all of 500 creates) would otherwise serve them all on one thread.
            let request = http::Request::from_parts(parts, body);
            let response = tokio::spawn(async move { loopback.handle(request).await }).await?;
            // A watch sends each event as a chunk of its own; text that is not a whole object,
            // list or event is passed on as it is.
            let response = response.map(|body| {
                body.map_frame(|frame| {
                    frame.map_data(|data| apiserver::without_managed_fields(&data).map_or(data, Bytes::from))
                })
            });
            Ok::<_, BoxError>(response)
        }
    });
    let service = ServiceBuilder::new().layer(RetryLayer::new(RetryPolicy::server_retry())).service(api);
    kube::client::ClientBuilder::new(service, "default").build()
}
