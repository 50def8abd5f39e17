//! The files the agent writes for each pod and binds into its containers: /etc/hosts,
//! /etc/hostname and /etc/resolv.conf, and the pod's address. They are written last when the
//! sandbox is made, so their presence says the sandbox is complete.

use k8s_openapi::api::core::v1::Pod;
use std::path::Path;

/// The pod's hostname: spec.hostname, else its name; a pod on the host's network has the
/// node's.
pub fn hostname(pod: &Pod, node_name: &str) -> String {
    let spec = pod.spec.as_ref();
    if spec.and_then(|s| s.host_network).unwrap_or(false) {
        return node_name.to_string();
    }
    spec.and_then(|s| s.hostname.clone()).or_else(|| pod.metadata.name.clone()).unwrap_or_default()
}

/// The pod's address, as the sandbox was given it.
pub fn address(pod_dir: &Path) -> Option<String> {
    std::fs::read_to_string(pod_dir.join("ip")).ok().map(|ip| ip.trim().to_string()).filter(|ip| !ip.is_empty())
}

/// Whether the sandbox was completed.
pub fn ready(pod_dir: &Path) -> bool {
    pod_dir.join("resolv.conf").exists()
}

/// Writes the pod's /etc files: hosts with the pod's own name and address (and its
/// subdomain name, and hostAliases), its hostname, and the node's resolver configuration.
pub fn write(pod_dir: &Path, pod: &Pod, hostname: &str, ip: &str) -> anyhow::Result<()> {
    let spec = pod.spec.as_ref();
    let mut hosts = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    match spec.and_then(|s| s.subdomain.as_deref()) {
        Some(sub) if !sub.is_empty() => {
            hosts.push_str(&format!("{ip}\t{hostname}.{sub}.{namespace}.svc.cluster.local\t{hostname}\n"))
        }
        _ => hosts.push_str(&format!("{ip}\t{hostname}\n")),
    }
    for alias in spec.and_then(|s| s.host_aliases.as_ref()).into_iter().flatten() {
        let names = alias.hostnames.clone().unwrap_or_default().join("\t");
        hosts.push_str(&format!("\n# Entries added by HostAliases.\n{}\t{names}\n", alias.ip));
    }
    std::fs::write(pod_dir.join("hosts"), hosts)?;
    std::fs::write(pod_dir.join("hostname"), format!("{hostname}\n"))?;
    std::fs::write(pod_dir.join("ip"), ip)?;
    // Cluster DNS is not built yet: pods resolve names as the node does.
    let resolv = std::fs::read("/etc/resolv.conf").unwrap_or_default();
    let tmp = pod_dir.join("resolv.conf.tmp");
    std::fs::write(&tmp, resolv)?;
    std::fs::rename(tmp, pod_dir.join("resolv.conf"))?;
    Ok(())
}
