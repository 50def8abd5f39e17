//! The standard gRPC health service, `grpc.health.v1.Health/Check`, on `$GRPC_PORT` when it
//! is set: SERVING while `/healthz` passes, NOT_SERVING once `POST /fail-health` has been
//! called, so gRPC probes can be tested as the HTTP ones are. Plaintext HTTP/2 only, as
//! gRPC probes speak it.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Serves until the process exits, on a runtime of its own.
pub fn serve(port: u16, state: Arc<crate::State>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(("0.0.0.0", port)).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("skiff-testserver: cannot listen on gRPC port {port}: {e}");
                std::process::exit(1);
            }
        };
        println!("gRPC health on {port}");
        while let Ok((stream, _)) = listener.accept().await {
            let state = state.clone();
            let service = hyper::service::service_fn(move |request| answer(request, state.clone()));
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn answer(
    request: http::Request<hyper::body::Incoming>,
    state: Arc<crate::State>,
) -> Result<http::Response<Body>, Infallible> {
    let response = http::Response::builder().header(http::header::CONTENT_TYPE, "application/grpc");
    if request.uri().path() != "/grpc.health.v1.Health/Check" {
        // Trailers-only: the status in the headers, no message.
        let unimplemented = response.header("grpc-status", "12").header("grpc-message", "unknown method");
        return Ok(unimplemented.body(Full::new(Bytes::new()).boxed()).expect("a response"));
    }
    // The request names a service; this server answers for all of them alike.
    let _ = request.into_body().collect().await;
    let status: u8 = if state.healthy.load(Ordering::SeqCst) { 1 } else { 2 };
    // HealthCheckResponse { status (field 1, varint) }, behind the 5-byte gRPC prefix.
    let message = Bytes::from(vec![0, 0, 0, 0, 2, 0x08, status]);
    let trailers = async {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        Some(Ok(trailers))
    };
    Ok(response.body(Full::new(message).with_trailers(trailers).boxed()).expect("a response"))
}
