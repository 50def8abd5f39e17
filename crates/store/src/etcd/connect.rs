//! Connecting to etcd: the client's options (TLS with a client certificate, timeouts,
//! keep-alive) and a first request that proves etcd answers, so that a wrong endpoint or
//! certificate is reported at start, naming the endpoints, rather than at the first write.

use std::path::Path;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use crate::{Error, Result};

use super::EtcdOptions;
use super::errors::backend;
use super::history::History;
use super::members::Members;

/// How long connecting, and the first request, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long etcd may take to answer a request (for a watch: to accept it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/2 pings, as kube-apiserver sends them, so that a dead connection is noticed even when
/// nothing is sent on it, and its watches resumed elsewhere.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for each of `options.endpoints`. They do not connect yet: [`check`] does.
pub(super) async fn members(options: &EtcdOptions) -> Result<Members> {
    // Requests fail at once on a member cut off from the others, so a watch there is resumed on
    // another member rather than waiting for events that will not come.
    let mut connect = ConnectOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout(REQUEST_TIMEOUT)
        .with_keep_alive(KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT)
        .with_require_leader(true);
    if let Some(tls) = tls(options)? {
        connect = connect.with_tls(tls);
    }
    let mut clients = Vec::with_capacity(options.endpoints.len());
    for endpoint in &options.endpoints {
        let client = Client::connect([endpoint], Some(connect.clone())).await;
        clients.push(client.map_err(|e| unreachable(options, backend(e)))?);
    }
    if clients.is_empty() {
        return Err(Error::Backend("no etcd endpoint given".to_owned()));
    }
    Ok(Members::new(clients, options.endpoints.clone()))
}

/// The TLS options, if any file for TLS is given: the CA that signed etcd's certificate, and
/// this client's certificate and key for etcd's `--client-cert-auth`.
fn tls(options: &EtcdOptions) -> Result<Option<TlsOptions>> {
    if options.ca_file.is_none() && options.cert_file.is_none() && options.key_file.is_none() {
        return Ok(None);
    }
    let mut tls = TlsOptions::new();
    if let Some(ca) = &options.ca_file {
        tls = tls.ca_certificate(Certificate::from_pem(read(ca, "CA certificate")?));
    }
    match (&options.cert_file, &options.key_file) {
        (Some(cert), Some(key)) => {
            tls = tls.identity(Identity::from_pem(read(cert, "client certificate")?, read(key, "client key")?));
        }
        (None, None) => {}
        _ => return Err(Error::Backend("an etcd client certificate needs both its file and its key's".to_owned())),
    }
    Ok(Some(tls))
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Backend(format!("cannot read the etcd {what} {}: {e}", path.display())))
}

/// The oldest etcd the backend works with: 3.4 brought progress requests, which watches need.
const OLDEST_VERSION: (u32, u32) = (3, 4);

/// Reads the current revision, within [`CONNECT_TIMEOUT`], and checks that etcd is recent enough.
pub(super) async fn check(members: &Members, history: &History, options: &EtcdOptions) -> Result<i64> {
    let revision = match tokio::time::timeout(CONNECT_TIMEOUT, history.current()).await {
        Ok(Ok(revision)) => revision,
        Ok(Err(e)) => return Err(unreachable(options, e)),
        Err(_) => return Err(unreachable(options, Error::Backend(format!("no answer within {CONNECT_TIMEOUT:?}")))),
    };
    let status = members.status().await.map_err(|e| unreachable(options, backend(e)))?;
    if !supported(status.version()) {
        let (major, minor) = OLDEST_VERSION;
        return Err(Error::Backend(format!(
            "etcd at {} is version {}; skiff needs etcd {major}.{minor} or newer",
            options.endpoints.join(", "),
            status.version()
        )));
    }
    Ok(revision)
}

/// Whether an etcd version (`3.4.23`) is at least [`OLDEST_VERSION`].
fn supported(version: &str) -> bool {
    let mut numbers = version.split('.').map(|part| part.parse::<u32>().ok());
    match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= OLDEST_VERSION,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_from_3_4_on_is_supported() {
        for version in ["3.4.0", "3.4.23", "3.5.17", "3.6.0", "4.0.0"] {
            assert!(supported(version), "{version}");
        }
        for version in ["3.3.27", "2.3.8", "", "three"] {
            assert!(!supported(version), "{version}");
        }
    }
}

fn unreachable(options: &EtcdOptions, cause: Error) -> Error {
    let cause = match cause {
        Error::Backend(message) => message,
        other => other.to_string(),
    };
    Error::Backend(format!("cannot reach etcd at {}: {cause}", options.endpoints.join(", ")))
}
