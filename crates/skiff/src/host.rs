//! This machine: its name and the address the cluster reaches it at.

use std::net::IpAddr;

/// This machine's host name, or empty if the kernel does not say.
pub fn name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// This host's first IPv4 address that is not loopback, else loopback: what the API server
/// advertises and what a node reports when told nothing else, as Kubernetes' components pick.
pub fn address() -> IpAddr {
    let addresses = if_addrs::get_if_addrs().unwrap_or_default();
    addresses
        .into_iter()
        .map(|iface| iface.ip())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
}
