//! Accepting connections: TLS (with an optional client certificate), then HTTP/2 or HTTP/1.1.

use crate::api::Api;
use crate::authn::User;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub async fn serve(api: Arc<Api>, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let api = api.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let cert_user =
                tls.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(|c| User::from_certificate(c));
            let cert_user = Arc::new(cert_user);
            let service = service_fn(move |req: http::Request<Incoming>| {
                let api = api.clone();
                let cert_user = cert_user.clone();
                let req = req.map(|body| body.boxed());
                async move { Ok::<_, std::convert::Infallible>(api.handle(req, cert_user.as_ref().as_ref()).await) }
            });
            let mut builder = Builder::new(TokioExecutor::new());
            builder.http2().max_concurrent_streams(1000);
            // pods/exec, attach and portforward take the connection over with an upgrade.
            if let Err(e) = builder.serve_connection_with_upgrades(TokioIo::new(tls), service).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
