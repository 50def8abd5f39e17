//! The cluster's certificates: a CA made on first start, the server's serving certificate
//! (reissued when the names it must cover change), the admin client certificate, and the
//! client certificate the API server shows kubelets. Later starts reuse what is on disk.

use crate::files::write_private;
use anyhow::Context;
use apiserver::certs::{leaf_params, validity};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

pub struct Pki {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    /// What the API server presents to kubelets (kubeadm's apiserver-kubelet-client).
    pub kubelet_client_cert: PathBuf,
    pub kubelet_client_key: PathBuf,
}

const CA_YEARS: i64 = 10;

/// Loads the CA from `dir`, or makes one.
fn ca(dir: &Path) -> anyhow::Result<(String, KeyPair)> {
    let (cert_path, key_path) = (dir.join("ca.crt"), dir.join("ca.key"));
    if cert_path.exists() && key_path.exists() {
        let key = KeyPair::from_pem(&std::fs::read_to_string(&key_path)?).context("parsing ca.key")?;
        return Ok((std::fs::read_to_string(&cert_path)?, key));
    }
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, format!("skiff-ca@{}", OffsetDateTime::now_utc().unix_timestamp()));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    validity(&mut params, CA_YEARS);
    let cert = params.self_signed(&key)?;
    write_private(&key_path, &key.serialize_pem())?;
    std::fs::write(&cert_path, cert.pem())?;
    Ok((cert.pem(), key))
}

fn issue(
    issuer: &Issuer<'_, KeyPair>,
    common_name: &str,
    organization: Option<&str>,
    sans: &[String],
    usage: ExtendedKeyUsagePurpose,
    cert_path: &Path,
    key_path: &Path,
) -> anyhow::Result<()> {
    let key = KeyPair::generate()?;
    let params = leaf_params(common_name, organization, sans, usage)?;
    let cert = params.signed_by(&key, issuer)?;
    write_private(key_path, &key.serialize_pem())?;
    std::fs::write(cert_path, cert.pem())?;
    Ok(())
}

/// Leaf certificates are reissued this long before they expire.
const RENEW_BEFORE: Duration = Duration::days(30);

/// True if the certificate is missing, unreadable, or expires within `RENEW_BEFORE`.
fn needs_renewal(path: &Path) -> bool {
    let Ok(pem) = std::fs::read(path) else { return true };
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(&pem) else { return true };
    let Ok(cert) = pem.parse_x509() else { return true };
    let expires = cert.validity().not_after.timestamp();
    expires - OffsetDateTime::now_utc().unix_timestamp() < RENEW_BEFORE.whole_seconds()
}

/// Makes or loads every certificate the server needs, under `dir`. The serving certificate
/// covers `sans`; it is reissued when that set changes.
pub fn ensure(dir: &Path, sans: &[String]) -> anyhow::Result<Pki> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let pki = Pki {
        ca_cert: dir.join("ca.crt"),
        ca_key: dir.join("ca.key"),
        serving_cert: dir.join("serving.crt"),
        serving_key: dir.join("serving.key"),
        admin_cert: dir.join("admin.crt"),
        admin_key: dir.join("admin.key"),
        kubelet_client_cert: dir.join("apiserver-kubelet-client.crt"),
        kubelet_client_key: dir.join("apiserver-kubelet-client.key"),
    };
    let (ca_pem, ca_key) = ca(dir)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).context("loading the cluster CA")?;
    let sans_record = dir.join("serving.sans");
    let wanted = sans.join("\n");
    let recorded = std::fs::read_to_string(&sans_record).unwrap_or_default();
    if recorded != wanted || !pki.serving_key.exists() || needs_renewal(&pki.serving_cert) {
        issue(
            &issuer,
            "skiff-apiserver",
            None,
            sans,
            ExtendedKeyUsagePurpose::ServerAuth,
            &pki.serving_cert,
            &pki.serving_key,
        )?;
        std::fs::write(&sans_record, &wanted)?;
    }
    if !pki.admin_key.exists() || needs_renewal(&pki.admin_cert) {
        issue(
            &issuer,
            "skiff-admin",
            Some("system:masters"),
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
            &pki.admin_cert,
            &pki.admin_key,
        )?;
    }
    if !pki.kubelet_client_key.exists() || needs_renewal(&pki.kubelet_client_cert) {
        issue(
            &issuer,
            "kube-apiserver-kubelet-client",
            Some("system:masters"),
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
            &pki.kubelet_client_cert,
            &pki.kubelet_client_key,
        )?;
    }
    Ok(pki)
}

/// The names the serving certificate must cover: loopback, this host's name and addresses,
/// the in-cluster names and address of the `kubernetes` Service, and what the operator added
/// with --tls-san.
pub fn serving_names(extra: &[String], kubernetes_service_ip: &str) -> Vec<String> {
    let mut names: Vec<String> = [
        "localhost",
        "127.0.0.1",
        "::1",
        kubernetes_service_ip,
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    .map(String::from)
    .to_vec();
    names.push(crate::host::name());
    for iface in if_addrs::get_if_addrs().unwrap_or_default() {
        names.push(iface.ip().to_string());
    }
    names.extend(extra.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| !n.is_empty() && seen.insert(n.clone()));
    names
}
