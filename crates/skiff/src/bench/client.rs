//! A small HTTP/2 client for benchmarks: TLS with the admin certificate, a few connections,
//! many concurrent streams on each.

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Client {
    connections: Vec<SendRequest<Full<Bytes>>>,
    next: AtomicUsize,
    authority: String,
}

fn tls_config(tls_dir: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let read = |name: &str| std::fs::read(tls_dir.join(name)).with_context(|| format!("reading {name}"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut read("ca.crt")?.as_slice()) {
        roots.add(cert?)?;
    }
    let certs = rustls_pemfile::certs(&mut read("admin.crt")?.as_slice()).collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut read("admin.key")?.as_slice())?.context("no admin key")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

impl Client {
    pub async fn connect(port: u16, tls_dir: &Path, connections: usize) -> anyhow::Result<Client> {
        let connector = tokio_rustls::TlsConnector::from(tls_config(tls_dir)?);
        let mut senders = Vec::new();
        for _ in 0..connections {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            tcp.set_nodelay(true)?;
            let tls = connector.connect(ServerName::try_from("localhost")?, tcp).await?;
            let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                .max_concurrent_reset_streams(1000)
                .handshake(TokioIo::new(tls))
                .await?;
            tokio::spawn(conn);
            senders.push(sender);
        }
        Ok(Client { connections: senders, next: AtomicUsize::new(0), authority: format!("localhost:{port}") })
    }

    fn sender(&self) -> SendRequest<Full<Bytes>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        self.connections[i].clone()
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut request = Request::builder().method(method).uri(format!("https://{}{path}", self.authority));
        for (name, value) in [("content-type", "application/json"), ("accept", "application/json")] {
            if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                request = request.header(name, value);
            }
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Ok(request.body(Full::new(body))?)
    }

    /// Sends a JSON request and reads the whole answer.
    pub async fn call(&self, method: Method, path: &str, body: Bytes) -> anyhow::Result<(StatusCode, Bytes)> {
        self.call_with(method, path, body, &[]).await
    }

    /// Sends a request with extra headers (a content or accept type of its own, an ETag to
    /// match) and reads the whole answer.
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let resp = self.sender().send_request(self.build(method, path, body, headers)?).await?;
        let status = resp.status();
        Ok((status, resp.into_body().collect().await?.to_bytes()))
    }

    /// Opens a streaming request (a watch) and returns its body.
    pub async fn stream(&self, path: &str) -> anyhow::Result<hyper::body::Incoming> {
        let resp = self.sender().send_request(self.build(Method::GET, path, Bytes::new(), &[])?).await?;
        anyhow::ensure!(resp.status().is_success(), "watch {path} answered {}", resp.status());
        Ok(resp.into_body())
    }
}
