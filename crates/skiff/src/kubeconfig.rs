//! Kubeconfigs: the cluster's address and CA, and a user's client certificate, inlined so the
//! file works wherever it is copied. The server writes the admin's; a node agent its own.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The admin kubeconfig, from the server's certificates.
pub fn admin(server_url: &str, pki: &crate::pki::Pki) -> anyhow::Result<String> {
    let read = |path: &std::path::Path| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    Ok(render(server_url, "skiff-admin", &read(&pki.ca_cert)?, &read(&pki.admin_cert)?, &read(&pki.admin_key)?))
}

/// A kubeconfig for `user` (a name for the reader) at `server_url`, with the CA and the user's
/// certificate and key in PEM.
pub fn render(server_url: &str, user: &str, ca: &[u8], cert: &[u8], key: &[u8]) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: skiff
  cluster:
    server: {server_url}
    certificate-authority-data: {ca}
users:
- name: {user}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: skiff
  context:
    cluster: skiff
    user: {user}
current-context: skiff
preferences: {{}}
",
        ca = STANDARD.encode(ca),
        cert = STANDARD.encode(cert),
        key = STANDARD.encode(key),
    )
}
