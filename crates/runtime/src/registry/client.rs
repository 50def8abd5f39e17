//! Talking to one registry endpoint over the distribution API: plain HTTP or TLS (the
//! system's roots, plus the endpoint's CA and client certificate), redirects followed (the
//! credentials never sent on to another host, where blob storage often lives), and the
//! registry's authentication: a 401's challenge answered once, with a Bearer token from the
//! registry's token service or with Basic credentials.

use super::challenge::{self, Challenge};
use super::credentials::Credential;
use super::hosts::Endpoint;
use anyhow::Context;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_REDIRECTS: usize = 10;
/// Error bodies and token answers larger than this are not read whole.
const MAX_SMALL_BODY: usize = 1 << 20;

/// Why a request failed, sorted the way a pull reports it.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("not found")]
    NotFound,
    #[error("pull access denied, repository does not exist or may require authorization: {0}")]
    Unauthorized(String),
    #[error("{0}")]
    Other(String),
}

/// Requests to one endpoint, with what authenticates them once a challenge has been met.
pub struct Session {
    endpoint: Endpoint,
    credential: Option<Credential>,
    tls: Arc<rustls::ClientConfig>,
    authorization: Option<HeaderValue>,
}

impl Session {
    pub fn new(endpoint: Endpoint, credential: Option<Credential>) -> anyhow::Result<Session> {
        let tls = tls_config(&endpoint)?;
        Ok(Session { endpoint, credential, tls, authorization: None })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// GETs a path under the repository (`manifests/<ref>`, `blobs/<digest>`); a success's
    /// body is left to the caller to read.
    pub async fn get(&mut self, path: &str, accept: Option<&str>) -> Result<Response<Incoming>, RegistryError> {
        let url = self.endpoint.url(path);
        let mut challenged = false;
        loop {
            let response = self.follow(&url, accept).await.map_err(|e| RegistryError::Other(format!("{e:#}")))?;
            match response.status() {
                s if s.is_success() => return Ok(response),
                StatusCode::UNAUTHORIZED if !challenged => {
                    challenged = true;
                    self.authenticate(&response).await?;
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(RegistryError::Unauthorized(error_text(response).await));
                }
                StatusCode::NOT_FOUND => return Err(RegistryError::NotFound),
                s => {
                    return Err(RegistryError::Other(format!(
                        "unexpected status {s} from {url}: {}",
                        error_text(response).await
                    )));
                }
            }
        }
    }

    /// One request, following redirects; the credentials go only to the endpoint's host.
    async fn follow(&self, url: &str, accept: Option<&str>) -> anyhow::Result<Response<Incoming>> {
        let mut uri: Uri = url.parse().with_context(|| format!("invalid URL {url}"))?;
        for _ in 0..MAX_REDIRECTS {
            let own_host = uri.authority().map(|a| a.as_str()) == Some(self.endpoint.authority.as_str());
            let authorization = self.authorization.as_ref().filter(|_| own_host);
            let response = send(&uri, accept, authorization, &self.tls).await?;
            if !response.status().is_redirection() {
                return Ok(response);
            }
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .context("a redirect without a Location")?;
            uri = resolve(&uri, location)?;
        }
        anyhow::bail!("more than {MAX_REDIRECTS} redirects from {url}")
    }

    /// Meets a 401's challenge: a token from the registry's token service, or Basic
    /// credentials if the node has some for it.
    async fn authenticate(&mut self, response: &Response<Incoming>) -> Result<(), RegistryError> {
        let headers = response.headers().get_all(header::WWW_AUTHENTICATE).iter().filter_map(|v| v.to_str().ok());
        let basic = self.credential.as_ref().map(|c| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
            HeaderValue::from_str(&format!("Basic {encoded}")).expect("base64 is a valid header value")
        });
        match challenge::parse(headers) {
            Some(Challenge::Basic) => match basic {
                Some(basic) => {
                    self.authorization = Some(basic);
                    Ok(())
                }
                None => Err(RegistryError::Unauthorized(
                    "the registry asks for credentials, and none are configured".into(),
                )),
            },
            Some(Challenge::Bearer { realm, service, scope }) => {
                let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", self.endpoint.repository));
                let token = token(&realm, service.as_deref(), &scope, basic.as_ref(), &self.tls).await?;
                let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                    RegistryError::Other("the token service gave a token that is not a header value".into())
                })?;
                self.authorization = Some(bearer);
                Ok(())
            }
            None => Err(RegistryError::Unauthorized(
                "the registry refused the request without saying how to authenticate".into(),
            )),
        }
    }
}

/// A token from a registry's token service (`GET realm?service=...&scope=...`).
async fn token(
    realm: &str,
    service: Option<&str>,
    scope: &str,
    basic: Option<&HeaderValue>,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<String, RegistryError> {
    let query = {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(service) = service {
            query.append_pair("service", service);
        }
        for scope in scope.split(' ') {
            query.append_pair("scope", scope);
        }
        query.finish()
    };
    let separator = if realm.contains('?') { '&' } else { '?' };
    let url = format!("{realm}{separator}{query}");
    let uri: Uri =
        url.parse().map_err(|_| RegistryError::Other(format!("the token service's URL {url} is invalid")))?;
    let response =
        send(&uri, None, basic, tls).await.map_err(|e| RegistryError::Other(format!("getting a token: {e:#}")))?;
    match response.status() {
        s if s.is_success() => {}
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            return Err(RegistryError::Unauthorized(format!(
                "the token service refused the credentials: {}",
                error_text(response).await
            )));
        }
        s => {
            return Err(RegistryError::Other(format!(
                "the token service answered {s}: {}",
                error_text(response).await
            )));
        }
    }
    let body = read_small(response).await.map_err(|e| RegistryError::Other(format!("reading the token: {e:#}")))?;
    #[derive(serde::Deserialize)]
    struct Answer {
        token: Option<String>,
        access_token: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(&body)
        .map_err(|e| RegistryError::Other(format!("the token service's answer is not JSON: {e}")))?;
    answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| RegistryError::Other("the token service answered without a token".into()))
}

/// Sends one GET, over a connection of its own.
async fn send(
    uri: &Uri,
    accept: Option<&str>,
    authorization: Option<&HeaderValue>,
    tls: &Arc<rustls::ClientConfig>,
) -> anyhow::Result<Response<Incoming>> {
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        other => anyhow::bail!("unsupported URL scheme {other:?} in {uri}"),
    };
    let host = uri.host().context("a URL without a host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect((host, port)))
        .await
        .with_context(|| format!("dial tcp {host}:{port}: i/o timeout"))?
        .with_context(|| format!("dial tcp {host}:{port}"))?;
    let _ = tcp.set_nodelay(true);
    let mut request = Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(header::HOST, uri.authority().map_or(host, |a| a.as_str()))
        .header(header::USER_AGENT, concat!("skiff/", env!("CARGO_PKG_VERSION")));
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    if let Some(authorization) = authorization {
        request = request.header(header::AUTHORIZATION, authorization);
    }
    let request = request.body(Empty::<Bytes>::new())?;
    if https {
        let name = rustls::pki_types::ServerName::try_from(host.to_string())?;
        let stream = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS handshake with {host}:{port}"))?;
        exchange(stream, request).await
    } else {
        exchange(tcp, request).await
    }
}

async fn exchange<T>(io: T, request: Request<Empty<Bytes>>) -> anyhow::Result<Response<Incoming>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(connection);
    Ok(sender.send_request(request).await?)
}

/// A redirect's target, which may be relative to the URL it came from.
fn resolve(from: &Uri, location: &str) -> anyhow::Result<Uri> {
    if location.contains("://") {
        return Ok(location.parse()?);
    }
    let authority = from.authority().context("a URL without a host")?;
    let scheme = from.scheme_str().unwrap_or("https");
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        let base = from.path().rsplit_once('/').map_or("", |(dir, _)| dir);
        format!("{base}/{location}")
    };
    Ok(format!("{scheme}://{authority}{path}").parse()?)
}

/// A small body, read whole.
pub async fn read_small(response: Response<Incoming>) -> anyhow::Result<Bytes> {
    let body = http_body_util::Limited::new(response.into_body(), MAX_SMALL_BODY);
    Ok(body.collect().await.map_err(|e| anyhow::anyhow!("{e}"))?.to_bytes())
}

/// What an error response says: the distribution API's `errors[].message`, or its text.
async fn error_text(response: Response<Incoming>) -> String {
    let Ok(body) = read_small(response).await else { return String::new() };
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<serde_json::Value>,
    }
    match serde_json::from_slice::<Errors>(&body) {
        Ok(e) => e.errors.iter().filter_map(|e| e["message"].as_str()).collect::<Vec<_>>().join("; "),
        Err(_) => String::from_utf8_lossy(&body).trim().chars().take(300).collect(),
    }
}

/// The system's trusted roots, read once.
fn system_roots() -> &'static rustls::RootCertStore {
    static ROOTS: OnceLock<rustls::RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::debug!(%error, "reading the system's trusted certificates");
        }
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(added, ignored, "trusted certificates for registries");
        roots
    })
}

fn tls_config(endpoint: &Endpoint) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let settings = endpoint.config.tls.clone().unwrap_or_default();
    if settings.insecure_skip_verify {
        anyhow::bail!(
            "registries.yaml asks not to verify {}'s certificate (insecure_skip_verify), which skiff does not do: give its CA as ca_file instead",
            endpoint.authority
        );
    }
    let mut roots = system_roots().clone();
    if let Some(ca) = &settings.ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(cert.with_context(|| format!("parsing {}", ca.display()))?)?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match (&settings.cert_file, &settings.key_file) {
        (Some(cert), Some(key)) => {
            let chain = rustls_pemfile::certs(&mut std::fs::read(cert)?.as_slice()).collect::<Result<Vec<_>, _>>()?;
            let key = rustls_pemfile::private_key(&mut std::fs::read(key)?.as_slice())?
                .with_context(|| format!("no private key in {}", key.display()))?;
            builder.with_client_auth_cert(chain, key)?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => anyhow::bail!("registries.yaml: {}'s tls needs both cert_file and key_file", endpoint.authority),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve_against_where_they_came_from() {
        let from: Uri = "https://reg.example.com/v2/app/blobs/sha256:abc".parse().unwrap();
        assert_eq!(
            resolve(&from, "https://s3.example.com/x?sig=1").unwrap().to_string(),
            "https://s3.example.com/x?sig=1"
        );
        assert_eq!(resolve(&from, "/storage/x").unwrap().to_string(), "https://reg.example.com/storage/x");
        assert_eq!(resolve(&from, "other").unwrap().to_string(), "https://reg.example.com/v2/app/blobs/other");
    }
}
