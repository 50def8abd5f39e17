//! skiff's own nftables table, `ip skiff`: masquerade for pod traffic leaving the cluster,
//! and the pods' hostPorts.
//!
//! The table is a function of the settings and the pods' port mappings, rebuilt whole in one
//! atomic batch on every change: nothing is looked up or deleted rule by rule, so an agent
//! that restarts and rebuilds it from its records leaves no duplicates.
//!
//! ```text
//! table ip skiff {
//!   chain prerouting  { type nat hook prerouting priority dstnat; jump hostports }
//!   chain output      { type nat hook output priority dstnat; jump hostports }
//!   chain hostports   { [ip daddr HOSTIP | fib daddr type local] meta l4proto tcp th dport 8080 dnat to 10.42.0.5:80 ... }
//!   chain postrouting { type nat hook postrouting priority srcnat;
//!                       ct status dnat ip saddr 127.0.0.0/8 masquerade
//!                       ct status dnat ip saddr PODCIDR ip daddr PODCIDR masquerade
//!                       ip saddr CLUSTER ip daddr != CLUSTER ip daddr != 224.0.0.0/4 masquerade }
//! }
//! ```
//!
//! What this relies on: the hooks of other tables. An accept here cannot overrule a drop in
//! another table on the same hook, so a host whose firewall drops forwarded packets (a
//! FORWARD policy of DROP, as Docker sets) must let the cluster CIDR through itself.

use super::nftables::{Batch, Expr, Header, Hook};
use crate::ipam::Subnet;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// The table's name, in the `ip` family.
pub const TABLE: &str = "skiff";
const HOST_PORTS: &str = "hostports";
/// IP_CT_DST_NAT: the connection's destination was rewritten.
const CT_STATUS_DST_NAT: u32 = 0x20;
/// RTN_LOCAL: the address is one of this host's.
const RTN_LOCAL: u32 = 2;

/// The ranges the rules speak of.
#[derive(Clone, Debug)]
pub struct Settings {
    /// All pods' addresses, on every node (the server's --cluster-cidr).
    pub cluster: Subnet,
    /// This node's pods' addresses (its podCIDR).
    pub pods: Subnet,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

/// A container port published on the node, in the shape of CNI's `portMappings`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostPort {
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
    /// Only this node address, rather than all of them.
    #[serde(rename = "hostIP", default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<Ipv4Addr>,
}

/// The steps that match an IPv4 address field (source at 12, destination at 16) in `net`.
fn address_in(offset: u32, net: &Subnet, equal: bool) -> [Expr; 3] {
    let mask = u32::MAX << (32 - net.prefix);
    [
        Expr::Payload { header: Header::Network, offset, len: 4 },
        Expr::And(mask.to_be_bytes().to_vec()),
        Expr::Cmp { equal, value: net.network.octets().to_vec() },
    ]
}

const SOURCE: u32 = 12;
const DESTINATION: u32 = 16;

fn dnatted() -> [Expr; 3] {
    [Expr::CtStatus, Expr::And(CT_STATUS_DST_NAT.to_ne_bytes().to_vec()), Expr::Cmp { equal: false, value: vec![0; 4] }]
}

/// The rule that sends a node port to a pod.
fn host_port_rule(pod_ip: Ipv4Addr, port: &HostPort) -> Vec<Expr> {
    let mut rule = match port.host_ip {
        Some(ip) if !ip.is_unspecified() => vec![
            Expr::Payload { header: Header::Network, offset: DESTINATION, len: 4 },
            Expr::Cmp { equal: true, value: ip.octets().to_vec() },
        ],
        _ => vec![Expr::FibDaddrType, Expr::Cmp { equal: true, value: RTN_LOCAL.to_ne_bytes().to_vec() }],
    };
    rule.extend([
        Expr::L4Proto,
        Expr::Cmp { equal: true, value: vec![port.protocol.number()] },
        // TCP's and UDP's destination port, both at offset 2.
        Expr::Payload { header: Header::Transport, offset: 2, len: 2 },
        Expr::Cmp { equal: true, value: port.host_port.to_be_bytes().to_vec() },
        Expr::Dnat(pod_ip, port.container_port),
    ]);
    rule
}

/// The rules of the postrouting chain, each a list of steps.
fn masquerade_rules(settings: &Settings) -> Vec<Vec<Expr>> {
    let loopback: Subnet = Subnet { network: Ipv4Addr::new(127, 0, 0, 0), prefix: 8 };
    let multicast: Subnet = Subnet { network: Ipv4Addr::new(224, 0, 0, 0), prefix: 4 };
    vec![
        // The host reaching a hostPort at 127.0.0.1: the pod could not answer a loopback
        // address (this needs route_localnet on the bridge, which the bridge sets).
        [&dnatted()[..], &address_in(SOURCE, &loopback, true)].concat(),
        // A pod reaching a hostPort of this node, maybe its own: without this the answer
        // would come straight from the pod's address, which the caller does not expect.
        [&dnatted()[..], &address_in(SOURCE, &settings.pods, true), &address_in(DESTINATION, &settings.pods, true)]
            .concat(),
        // Pods reaching beyond the cluster, as the node's address.
        [
            &address_in(SOURCE, &settings.cluster, true)[..],
            &address_in(DESTINATION, &settings.cluster, false),
            &address_in(DESTINATION, &multicast, false),
        ]
        .concat(),
    ]
    .into_iter()
    .map(|mut rule| {
        rule.push(Expr::Masquerade);
        rule
    })
    .collect()
}

/// The batch that replaces the table with one for these settings and pods' host ports.
pub fn table(settings: &Settings, host_ports: &[(Ipv4Addr, Vec<HostPort>)]) -> Batch {
    named(TABLE, settings, host_ports)
}

fn named(table: &str, settings: &Settings, host_ports: &[(Ipv4Addr, Vec<HostPort>)]) -> Batch {
    let mut batch = Batch::new();
    batch.add_table(table);
    batch.delete_table(table);
    batch.add_table(table);
    batch.add_chain(table, HOST_PORTS, None);
    for (chain, hook) in [("prerouting", Hook::PREROUTING_DSTNAT), ("output", Hook::OUTPUT_DSTNAT)] {
        batch.add_chain(table, chain, Some(hook));
        batch.add_rule(table, chain, &[Expr::Jump(HOST_PORTS.into())]);
    }
    for (pod_ip, ports) in host_ports {
        for port in ports {
            batch.add_rule(table, HOST_PORTS, &host_port_rule(*pod_ip, port));
        }
    }
    batch.add_chain(table, "postrouting", Some(Hook::POSTROUTING_SRCNAT));
    for rule in masquerade_rules(settings) {
        batch.add_rule(table, "postrouting", &rule);
    }
    batch
}

/// Removes the table if it is there.
pub fn remove() -> anyhow::Result<()> {
    remove_named(TABLE)
}

fn remove_named(table: &str) -> anyhow::Result<()> {
    let mut batch = Batch::new();
    batch.add_table(table);
    batch.delete_table(table);
    batch.send()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_port_on_every_node_address_matches_local_destinations() {
        let port = HostPort { host_port: 8080, container_port: 80, protocol: Protocol::Udp, host_ip: None };
        let rule = host_port_rule(Ipv4Addr::new(10, 42, 0, 5), &port);
        assert_eq!(
            rule,
            [
                Expr::FibDaddrType,
                Expr::Cmp { equal: true, value: 2u32.to_ne_bytes().to_vec() },
                Expr::L4Proto,
                Expr::Cmp { equal: true, value: vec![17] },
                Expr::Payload { header: Header::Transport, offset: 2, len: 2 },
                Expr::Cmp { equal: true, value: vec![0x1f, 0x90] },
                Expr::Dnat(Ipv4Addr::new(10, 42, 0, 5), 80),
            ]
        );
    }

    #[test]
    fn a_host_port_on_one_address_matches_that_address() {
        let port = HostPort {
            host_port: 53,
            container_port: 5353,
            protocol: Protocol::Tcp,
            host_ip: Some([192, 0, 2, 2].into()),
        };
        let rule = host_port_rule(Ipv4Addr::new(10, 42, 0, 5), &port);
        assert_eq!(
            rule[..2],
            [
                Expr::Payload { header: Header::Network, offset: 16, len: 4 },
                Expr::Cmp { equal: true, value: vec![192, 0, 2, 2] },
            ]
        );
        assert_eq!(rule[3], Expr::Cmp { equal: true, value: vec![6] });
    }

    #[test]
    fn pods_are_masqueraded_beyond_the_cluster_only() {
        let settings = Settings { cluster: "10.42.0.0/16".parse().unwrap(), pods: "10.42.3.0/24".parse().unwrap() };
        let rules = masquerade_rules(&settings);
        let leaving = rules.last().unwrap();
        assert_eq!(
            leaving[..6],
            [
                Expr::Payload { header: Header::Network, offset: 12, len: 4 },
                Expr::And(vec![255, 255, 0, 0]),
                Expr::Cmp { equal: true, value: vec![10, 42, 0, 0] },
                Expr::Payload { header: Header::Network, offset: 16, len: 4 },
                Expr::And(vec![255, 255, 0, 0]),
                Expr::Cmp { equal: false, value: vec![10, 42, 0, 0] },
            ]
        );
        assert_eq!(leaving.last(), Some(&Expr::Masquerade));
        // The hairpin rule: DNATed traffic from this node's pods to this node's pods.
        assert!(rules[1].contains(&Expr::And(vec![255, 255, 255, 0])));
        assert!(rules[1].contains(&Expr::Cmp { equal: true, value: vec![10, 42, 3, 0] }));
    }

    /// Needs root: the kernel checks every expression of a table like the agent's (under
    /// another name, and for addresses no traffic here has), and replacing it twice works.
    #[test]
    fn the_kernel_takes_the_table() {
        let table = format!("skiff_test_{}", std::process::id());
        let settings = Settings { cluster: "203.0.113.0/24".parse().unwrap(), pods: "203.0.113.0/28".parse().unwrap() };
        let ports = vec![
            HostPort { host_port: 1, container_port: 2, protocol: Protocol::Tcp, host_ip: None },
            HostPort {
                host_port: 3,
                container_port: 4,
                protocol: Protocol::Udp,
                host_ip: Some([203, 0, 113, 99].into()),
            },
        ];
        let pods = [(Ipv4Addr::new(203, 0, 113, 2), ports)];
        named(&table, &settings, &pods).send().unwrap();
        named(&table, &settings, &pods[..0]).send().unwrap();
        remove_named(&table).unwrap();
        let mut delete_again = Batch::new();
        delete_again.delete_table(&table);
        let gone = delete_again.send().unwrap_err().to_string();
        assert!(gone.contains("deleting a table"), "{gone}");
    }

    #[test]
    fn host_ports_read_and_write_as_cni_port_mappings() {
        let json = r#"{"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":"127.0.0.1"}"#;
        let port: HostPort = serde_json::from_str(json).unwrap();
        assert_eq!(port.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(serde_json::to_string(&port).unwrap(), json);
    }
}
