//! The admin kubeconfig: the cluster's address and CA, and the admin client certificate,
//! inlined so the file works wherever it is copied.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::path::Path;

fn inline(path: &Path) -> anyhow::Result<String> {
    Ok(STANDARD.encode(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?))
}

pub fn render(server_url: &str, pki: &crate::pki::Pki) -> anyhow::Result<String> {
    Ok(format!(
        "apiVersion: v1
kind: Config
clusters:
- name: skiff
  cluster:
    server: {server_url}
    certificate-authority-data: {ca}
users:
- name: skiff-admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: skiff
  context:
    cluster: skiff
    user: skiff-admin
current-context: skiff
preferences: {{}}
",
        ca = inline(&pki.ca_cert)?,
        cert = inline(&pki.admin_cert)?,
        key = inline(&pki.admin_key)?,
    ))
}
