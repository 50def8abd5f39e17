//! How the agent connects pods to the network: skiff's bridge, with addresses from the node's
//! podCIDR and masquerade and hostPorts in skiff's nftables table; or, with `--cni-conf-dir`,
//! standard CNI plugins, which then do all of that (hostPorts through plugins that declare
//! the `portMappings` capability, as CNI's portmap does).

use crate::Config;
use k8s_openapi::api::core::v1::Pod;
use runtime::ipam::{Ipam, Subnet};
use runtime::network::cni::{Cni, PodRef};
use runtime::network::host_ports::HostPorts;
use runtime::network::nat::{self, HostPort, Protocol};
use std::net::Ipv4Addr;
use std::path::Path;

pub enum PodNetwork {
    Bridge { subnet: Subnet, host_ports: HostPorts },
    Cni(Cni),
}

impl PodNetwork {
    /// Sets the node up for its pods: the bridge and skiff's table, or, for CNI plugins, no
    /// table of skiff's (one left from running without them is removed).
    pub async fn start(config: &Config, subnet: Subnet) -> anyhow::Result<PodNetwork> {
        if let Some(plugins) = &config.cni {
            if let Err(e) = tokio::task::block_in_place(nat::remove) {
                tracing::warn!(error = format!("{e:#}"), "could not remove skiff's nftables table");
            }
            return Ok(PodNetwork::Cni(Cni::new(plugins.clone(), config.root.join("cni"))));
        }
        runtime::network::ensure_bridge(&subnet).await?;
        let cluster: Subnet = config.cluster_cidr.parse()?;
        let settings = nat::Settings { cluster, pods: subnet.clone() };
        let host_ports = tokio::task::block_in_place(|| HostPorts::open(&config.root.join("hostports"), settings))?;
        Ok(PodNetwork::Bridge { subnet, host_ports })
    }

    /// Connects the pod's network namespace at `netns` and publishes its hostPorts; returns
    /// its address.
    pub async fn attach(&self, ipam: &Ipam, pod: &Pod, netns: &Path) -> anyhow::Result<Ipv4Addr> {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        match self {
            PodNetwork::Bridge { subnet, host_ports: published } => {
                let ip = ipam.allocate(uid)?;
                runtime::network::attach(uid, netns, ip, subnet).await?;
                tokio::task::block_in_place(|| published.add(uid, ip, host_ports(pod)))?;
                Ok(ip)
            }
            PodNetwork::Cni(cni) => tokio::task::block_in_place(|| {
                // A sandbox made again after a failure: what the last ADD made goes first.
                cni.del(uid, None)?;
                let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
                let name = pod.metadata.name.as_deref().unwrap_or_default();
                let ip = cni.add(&PodRef { uid, namespace, name }, netns, &host_ports(pod))?;
                runtime::network::loopback_up(netns)?;
                Ok(ip)
            }),
        }
    }

    /// Disconnects the pod and withdraws its hostPorts. Safe to repeat.
    pub async fn detach(&self, ipam: &Ipam, uid: &str, pod_dir: &Path) -> anyhow::Result<()> {
        match self {
            PodNetwork::Bridge { host_ports, .. } => {
                tokio::task::block_in_place(|| host_ports.remove(uid))?;
                runtime::network::detach(uid).await?;
                ipam.release(uid)
            }
            PodNetwork::Cni(cni) => {
                let netns = runtime::sandbox::existing(pod_dir, "net");
                tokio::task::block_in_place(|| cni.del(uid, netns.as_deref()))
            }
        }
    }
}

/// The ports the pod's containers publish on the node, as the kubelet gathers them: those
/// with a hostPort, TCP unless UDP is asked for, on every node address unless `hostIP` names
/// one. SCTP and IPv6 host addresses are not supported and are left out, with a warning.
fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let containers = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
    let mut ports = Vec::new();
    for port in containers.iter().flat_map(|c| c.ports.iter().flatten()) {
        let Some(host_port) = port.host_port.filter(|p| *p > 0) else { continue };
        let protocol = match port.protocol.as_deref() {
            None | Some("TCP") => Protocol::Tcp,
            Some("UDP") => Protocol::Udp,
            Some(other) => {
                tracing::warn!(pod = ?pod.metadata.name, protocol = other, host_port, "hostPort protocol not supported");
                continue;
            }
        };
        let host_ip = match port.host_ip.as_deref().filter(|ip| !ip.is_empty()).map(str::parse::<Ipv4Addr>) {
            None => None,
            Some(Ok(ip)) => Some(ip).filter(|ip| !ip.is_unspecified()),
            Some(Err(_)) => {
                tracing::warn!(pod = ?pod.metadata.name, host_ip = ?port.host_ip, "hostIP is not an IPv4 address");
                continue;
            }
        };
        ports.push(HostPort {
            host_port: host_port as u16,
            container_port: port.container_port as u16,
            protocol,
            host_ip,
        });
    }
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports_come_from_container_ports_with_a_host_port() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [
                {"name": "a", "ports": [
                    {"containerPort": 80, "hostPort": 8080},
                    {"containerPort": 81},
                    {"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "127.0.0.1"},
                ]},
                {"name": "b", "ports": [
                    {"containerPort": 9, "hostPort": 9, "protocol": "SCTP"},
                    {"containerPort": 10, "hostPort": 10, "hostIP": "0.0.0.0"},
                ]},
            ]},
        }))
        .unwrap();
        assert_eq!(
            host_ports(&pod),
            [
                HostPort { host_port: 8080, container_port: 80, protocol: Protocol::Tcp, host_ip: None },
                HostPort {
                    host_port: 5353,
                    container_port: 53,
                    protocol: Protocol::Udp,
                    host_ip: Some(Ipv4Addr::LOCALHOST)
                },
                HostPort { host_port: 10, container_port: 10, protocol: Protocol::Tcp, host_ip: None },
            ]
        );
    }
}
