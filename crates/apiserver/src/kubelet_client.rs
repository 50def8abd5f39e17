//! Reaching a node's kubelet API (`https://<node>:10250`) for the pod subresources it serves,
//! with the API server's kubelet client certificate (`apiserver-kubelet-client`).

use crate::tls::SignaturesOnly;
use anyhow::Context;
use http::{Request, Response, header};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsConnector;

/// How long connecting to a kubelet may take (kube-apiserver's kubelet HTTPTimeout). Once
/// connected there is no limit: a followed log streams for as long as the client reads.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct KubeletClient {
    connector: TlsConnector,
}

impl KubeletClient {
    /// A client that presents the certificate and key in these PEM files.
    pub fn new(cert: &Path, key: &Path) -> anyhow::Result<KubeletClient> {
        let pem = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
        let chain = rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing certificates in {}", cert.display()))?;
        let pem = std::fs::read(key).with_context(|| format!("reading {}", key.display()))?;
        let key = rustls_pemfile::private_key(&mut pem.as_slice())
            .with_context(|| format!("parsing the private key in {}", key.display()))?
            .with_context(|| format!("no private key in {}", key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("choosing TLS versions")?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SignaturesOnly(provider)))
            .with_client_auth_cert(chain, key)
            .context("loading the kubelet client certificate")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletClient { connector: TlsConnector::from(Arc::new(config)) })
    }

    /// GETs `path_and_query` from the kubelet at `host:port`; the response's body streams as
    /// the kubelet sends it. The error reads as Go's dial errors do (kubectl shows it).
    pub async fn get(&self, host: &str, port: u16, path_and_query: &str) -> Result<Response<Incoming>, String> {
        let request = Request::get(path_and_query).body(()).map_err(|e| e.to_string())?;
        self.send(host, port, request).await
    }

    /// Sends `request` (its method, path and headers; it has no body) to the kubelet at
    /// `host:port`. An upgrade the kubelet accepts can be taken with `hyper::upgrade::on` on
    /// the response.
    pub async fn send(&self, host: &str, port: u16, request: Request<()>) -> Result<Response<Incoming>, String> {
        let address = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        let connect = async {
            let tcp =
                tokio::net::TcpStream::connect((host, port)).await.map_err(|e| format!("dial tcp {address}: {e}"))?;
            let _ = tcp.set_nodelay(true);
            // The name only matters for SNI: the kubelet's certificate is not verified.
            let name =
                ServerName::try_from(host.to_string()).unwrap_or(ServerName::try_from("kubelet").expect("a DNS name"));
            self.connector.connect(name, tcp).await.map_err(|e| format!("TLS handshake with {address}: {e}"))
        };
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| format!("dial tcp {address}: i/o timeout"))??;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| e.to_string())?;
        // Serves this one request; it ends when the response body is read or dropped, or
        // hands the connection over to whoever takes its upgrade.
        tokio::spawn(connection.with_upgrades());
        let (mut parts, ()) = request.into_parts();
        parts.headers.insert(header::HOST, address.parse().map_err(|_| format!("bad address {address}"))?);
        sender.send_request(Request::from_parts(parts, Empty::<bytes::Bytes>::new())).await.map_err(|e| e.to_string())
    }
}
