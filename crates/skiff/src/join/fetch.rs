//! Fetching the cluster's secrets from a server in it: its CA first, over a connection that
//! trusts nothing yet, accepted only if its hash is the join token's; then the secrets, over a
//! connection that trusts that CA alone, with the token's password.

use super::token::Token;
use anyhow::Context;
use base64::Engine;
use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
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

pub async fn secrets(server: &str, token: &Token) -> anyhow::Result<Secrets> {
    let uri: Uri = server.parse().with_context(|| format!("--server {server:?} is not a URL"))?;
    anyhow::ensure!(uri.scheme_str() == Some("https"), "--server {server:?} must be an https:// URL");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // The answer to this first request is checked against the token before it is trusted.
    let trusting_nothing = config(&provider, |builder| {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(apiserver::SignaturesOnly(provider.clone())))
    })?;
    let (status, ca_cert) = get(&uri, "/cacerts", trusting_nothing, None).await?;
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
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("server:{}", token.password));
    let (status, body) =
        get(&uri, "/v1-skiff/server-bootstrap", trusting_the_ca, Some(format!("Basic {credentials}"))).await?;
    anyhow::ensure!(
        status == StatusCode::OK,
        "{server} refused the join token ({status}: {})",
        String::from_utf8_lossy(&body)
    );
    let secrets: serde_json::Value = serde_json::from_slice(&body).context("the server's bootstrap is not JSON")?;
    let field = |name: &str| {
        secrets
            .get(name)
            .and_then(|value| value.as_str())
            .map(str::to_owned)
            .with_context(|| format!("no {name} in the bootstrap"))
    };
    Ok(Secrets { ca_cert: String::from_utf8(ca_cert.to_vec())?, ca_key: field("ca.key")? })
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

/// One GET of `path` on the server at `uri`, over HTTP/1.1 with `tls`.
async fn get(
    uri: &Uri,
    path: &str,
    tls: Arc<rustls::ClientConfig>,
    authorization: Option<String>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let host = uri.host().context("--server has no host")?;
    let port = uri.port_u16().unwrap_or(443);
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port)).await?;
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())?;
        let stream = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let mut request = Request::get(path).header(http::header::HOST, format!("{host}:{port}"));
        if let Some(authorization) = authorization {
            request = request.header(http::header::AUTHORIZATION, authorization);
        }
        let response = sender.send_request(request.body(Empty::<Bytes>::new())?).await?;
        let status = response.status();
        Ok::<_, anyhow::Error>((status, response.into_body().collect().await?.to_bytes()))
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .with_context(|| format!("no answer from {uri} within {TIMEOUT:?}"))?
        .with_context(|| format!("fetching {path} from {uri}"))
}
