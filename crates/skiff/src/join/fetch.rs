//! Fetching what joining the cluster takes from a server in it: its CA first, over a connection
//! that trusts nothing yet, accepted only if its hash is the join token's; then, over a
//! connection that trusts that CA alone and with the token's password, the CA's key (for a
//! server) or a node's client certificate (for a node agent).

use super::token::Token;
use anyhow::Context;
use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;

/// How long each request to the server may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// The cluster CA's certificate and key.
pub struct Secrets {
    pub ca_cert: String,
    pub ca_key: String,
}

/// What a node agent gets: the cluster CA, its client certificate (for the key it sent the
/// request of), and the cluster's pod range.
pub struct NodeCredentials {
    pub ca_cert: String,
    pub client_cert: String,
    pub cluster_cidr: String,
}

/// The CA's key, for a server joining the cluster.
pub async fn secrets(server: &str, token: &Token) -> anyhow::Result<Secrets> {
    let answer = bootstrap(server, token, "server", Method::GET, "/v1-skiff/server-bootstrap", Bytes::new()).await?;
    Ok(Secrets { ca_key: answer.field("ca.key")?, ca_cert: answer.ca_cert })
}

/// A client certificate for the node whose certificate signing request (PEM) this is.
pub async fn node_credentials(server: &str, token: &Token, csr: String) -> anyhow::Result<NodeCredentials> {
    let answer = bootstrap(server, token, "node", Method::POST, "/v1-skiff/node-bootstrap", csr.into()).await?;
    Ok(NodeCredentials {
        client_cert: answer.field("client.crt")?,
        cluster_cidr: answer.field("clusterCIDR")?,
        ca_cert: answer.ca_cert,
    })
}

/// A bootstrap's answer, and the CA it came under.
struct Answer {
    ca_cert: String,
    json: serde_json::Value,
}

impl Answer {
    fn field(&self, name: &str) -> anyhow::Result<String> {
        self.json
            .get(name)
            .and_then(|value| value.as_str())
            .map(str::to_owned)
            .with_context(|| format!("no {name} in the server's answer"))
    }
}

/// Fetches the CA and checks it against the token, then asks `path` as `user` over a connection
/// that trusts that CA alone.
async fn bootstrap(
    server: &str,
    token: &Token,
    user: &str,
    method: Method,
    path: &str,
    body: Bytes,
) -> anyhow::Result<Answer> {
    let uri: Uri = server.parse().with_context(|| format!("--server {server:?} is not a URL"))?;
    anyhow::ensure!(uri.scheme_str() == Some("https"), "--server {server:?} must be an https:// URL");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // The answer to this first request is checked against the token before it is trusted.
    let trusting_nothing = config(&provider, |builder| {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(apiserver::SignaturesOnly(provider.clone())))
    })?;
    let (status, ca_cert) = request(&uri, Method::GET, "/cacerts", trusting_nothing, None, Bytes::new()).await?;
    anyhow::ensure!(status == StatusCode::OK, "{server}/cacerts answered {status}: is it a skiff server?");
    anyhow::ensure!(
        token.matches(&ca_cert),
        "the CA of {server} is not the one the join token names: check --server and --token \
         (the token is in DATA_DIR/token on a server of the cluster)"
    );
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_cert.as_ref()) {
        roots.add(cert?)?;
    }
    let trusting_the_ca = config(&provider, |builder| builder.with_root_certificates(roots))?;
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", token.password));
    let authorization = Some(format!("Basic {credentials}"));
    let (status, answer) = request(&uri, method, path, trusting_the_ca, authorization, body).await?;
    anyhow::ensure!(
        status == StatusCode::OK,
        "{server} refused the join token ({status}: {})",
        String::from_utf8_lossy(&answer)
    );
    let json = serde_json::from_slice(&answer).context("the server's answer is not JSON")?;
    Ok(Answer { ca_cert: String::from_utf8(ca_cert.to_vec())?, json })
}

fn config(
    provider: &Arc<CryptoProvider>,
    roots: impl FnOnce(
        rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>,
    ) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let builder =
        rustls::ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    Ok(Arc::new(roots(builder).with_no_client_auth()))
}

/// One request for `path` on the server at `uri`, over HTTP/1.1 with `tls`.
async fn request(
    uri: &Uri,
    method: Method,
    path: &str,
    tls: Arc<rustls::ClientConfig>,
    authorization: Option<String>,
    body: Bytes,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let host = uri.host().context("--server has no host")?;
    let port = uri.port_u16().unwrap_or(443);
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port)).await?;
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())?;
        let stream = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let mut request =
            Request::builder().method(method).uri(path).header(http::header::HOST, format!("{host}:{port}"));
        if let Some(authorization) = authorization {
            request = request.header(http::header::AUTHORIZATION, authorization);
        }
        let response = sender.send_request(request.body(Full::new(body))?).await?;
        let status = response.status();
        Ok::<_, anyhow::Error>((status, response.into_body().collect().await?.to_bytes()))
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .with_context(|| format!("no answer from {uri} within {TIMEOUT:?}"))?
        .with_context(|| format!("fetching {path} from {uri}"))
}
