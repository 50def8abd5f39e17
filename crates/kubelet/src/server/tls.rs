//! The kubelet API's TLS: a self-signed serving certificate made at start (as the kubelet
//! makes one when given none), and client certificates required and verified against the
//! cluster CA.

use anyhow::Context;
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use std::net::IpAddr;
use std::sync::Arc;

/// A certificate for the node's name and addresses, signed by its own key: no one can verify
/// it, but it keeps the connection private, and the API server does not verify it (see
/// `kube-apiserver --kubelet-certificate-authority`). Its validity is rcgen's default, which
/// never runs out while the agent runs: a new one is made at every start.
fn self_signed(
    node_name: &str,
    addresses: &[IpAddr],
) -> anyhow::Result<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let now = chrono::Utc::now().timestamp();
    params.distinguished_name.push(DnType::CommonName, format!("{node_name}@{now}"));
    params.subject_alt_names.push(SanType::DnsName(
        node_name.to_string().try_into().with_context(|| format!("node name {node_name:?} is not a DNS name"))?,
    ));
    params.subject_alt_names.extend(addresses.iter().map(|ip| SanType::IpAddress(*ip)));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.self_signed(&key)?;
    Ok((cert.der().clone(), PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))))
}

/// The server configuration: HTTP/2 and HTTP/1.1, clients only with a certificate the
/// cluster CA (`client_ca_pem`) signed.
pub fn server_config(
    node_name: &str,
    addresses: &[IpAddr],
    client_ca_pem: &str,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut client_ca_pem.as_bytes()) {
        roots
            .add(cert.context("parsing the cluster CA")?)
            .context("adding the cluster CA to the client trust store")?;
    }
    if roots.is_empty() {
        anyhow::bail!("the cluster CA given to the kubelet API holds no certificate");
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("building the client certificate verifier")?;
    let (cert, key) = self_signed(node_name, addresses)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert], key)
        .context("loading the kubelet's serving certificate")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
