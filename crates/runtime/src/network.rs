//! The pod network, built in: a bridge on the node holding the first address of the node's
//! podCIDR, and for each pod a veth pair whose far end is the pod's `eth0`, with an address
//! from the podCIDR and a default route through the bridge. Addresses are handed out by
//! `ipam.rs`; masquerade and hostPorts are skiff's nftables table (`nat.rs`, `host_ports.rs`).
//! Or, instead of all this, standard CNI plugins (`cni.rs`).

pub mod cni;
pub mod host_ports;
pub mod nat;
pub mod nftables;

use crate::ipam::Subnet;
use anyhow::{Context, anyhow};
use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

/// The node's bridge, as k3s's flannel calls its own cni0.
pub const BRIDGE: &str = "skiff0";
/// The pod's end of its veth pair.
const POD_INTERFACE: &str = "eth0";

async fn connect() -> anyhow::Result<Handle> {
    let (connection, handle, _) = rtnetlink::new_connection().context("opening a netlink socket")?;
    tokio::spawn(connection);
    Ok(handle)
}

async fn index_of(handle: &Handle, name: &str) -> anyhow::Result<Option<u32>> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link.map(|l| l.header.index)),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn exists_already(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -libc::EEXIST)
}

/// Makes the bridge with the gateway address of `subnet` (if it is not there yet), brings it
/// up, and lets the node forward the pods' traffic.
pub async fn ensure_bridge(subnet: &Subnet) -> anyhow::Result<()> {
    let handle = connect().await?;
    let index = match index_of(&handle, BRIDGE).await? {
        Some(index) => index,
        None => {
            match handle.link().add(LinkBridge::new(BRIDGE).up().build()).execute().await {
                Ok(()) => {}
                Err(e) if exists_already(&e) => {}
                Err(e) => return Err(anyhow!("making the bridge {BRIDGE}: {e}")),
            }
            index_of(&handle, BRIDGE).await?.ok_or_else(|| anyhow!("the bridge {BRIDGE} vanished"))?
        }
    };
    match handle.address().add(index, IpAddr::V4(subnet.gateway()), subnet.prefix).execute().await {
        Ok(()) => {}
        Err(e) if exists_already(&e) => {}
        Err(e) => return Err(anyhow!("giving {BRIDGE} the address {}: {e}", subnet.gateway())),
    }
    handle.link().set(LinkUnspec::new_with_index(index).up().build()).execute().await?;
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").context("enabling IP forwarding")?;
    // A hostPort reached at 127.0.0.1 is sent on to the pod through the bridge with its
    // loopback source (masqueraded only after routing), which the kernel otherwise refuses.
    std::fs::write(format!("/proc/sys/net/ipv4/conf/{BRIDGE}/route_localnet"), "1")
        .context("letting the bridge route loopback sources")?;
    Ok(())
}

/// The host's end of a pod's veth pair, named from the pod's uid (at most 15 bytes).
pub fn host_veth(pod_uid: &str) -> String {
    let id: String = pod_uid.chars().filter(|c| c.is_ascii_hexdigit()).take(8).collect();
    format!("veth{id}")
}

/// Connects the network namespace at `netns` to the bridge: a veth pair, the pod's end named
/// eth0 with `ip`, and a default route through the bridge's address.
pub async fn attach(pod_uid: &str, netns: &Path, ip: Ipv4Addr, subnet: &Subnet) -> anyhow::Result<()> {
    let handle = connect().await?;
    let host_name = host_veth(pod_uid);
    if let Some(stale) = index_of(&handle, &host_name).await? {
        handle.link().del(stale).execute().await?;
    }
    let ns = std::fs::File::open(netns).with_context(|| format!("opening {}", netns.display()))?;
    // The pod's end is made inside the pod's namespace: moving an interface between
    // namespaces afterwards waits for the kernel's RCU grace periods under its global
    // network lock, which serializes pod starts (about 20 ms each).
    let peer = LinkMessageBuilder::<LinkUnspec>::new().name(POD_INTERFACE).setns_by_fd(ns.as_raw_fd()).build();
    let veth = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(host_name.clone())
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
    handle.link().add(veth).execute().await.context("making the pod's veth pair")?;
    let bridge = index_of(&handle, BRIDGE).await?.ok_or_else(|| anyhow!("the bridge {BRIDGE} is missing"))?;
    let host_index = index_of(&handle, &host_name).await?.ok_or_else(|| anyhow!("the veth {host_name} vanished"))?;
    handle.link().set(LinkUnspec::new_with_index(host_index).controller(bridge).up().build()).execute().await?;
    let subnet = subnet.clone();
    in_namespace(ns, move || async move { configure_pod_side(ip, &subnet).await })
}

/// Runs `work` in the network namespace `ns`. Netlink speaks for the namespace its socket was
/// opened in: this opens it from a thread that has joined the pod's namespace.
fn in_namespace<F, Fut>(ns: std::fs::File, work: F) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    std::thread::spawn(move || -> anyhow::Result<()> {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(work())
    })
    .join()
    .map_err(|_| anyhow!("the thread configuring the pod's network panicked"))?
}

/// Brings up the loopback interface of the network namespace at `netns`: for pods whose
/// network CNI plugins make, which leave loopback to the runtime.
pub fn loopback_up(netns: &Path) -> anyhow::Result<()> {
    let ns = std::fs::File::open(netns).with_context(|| format!("opening {}", netns.display()))?;
    in_namespace(ns, || async { set_loopback_up(&connect().await?).await })
}

async fn set_loopback_up(handle: &Handle) -> anyhow::Result<()> {
    let lo = index_of(handle, "lo").await?.ok_or_else(|| anyhow!("the pod has no loopback"))?;
    handle.link().set(LinkUnspec::new_with_index(lo).up().build()).execute().await?;
    Ok(())
}

async fn configure_pod_side(ip: Ipv4Addr, subnet: &Subnet) -> anyhow::Result<()> {
    let handle = connect().await?;
    set_loopback_up(&handle).await?;
    let index = index_of(&handle, POD_INTERFACE).await?.ok_or_else(|| anyhow!("the pod has no {POD_INTERFACE}"))?;
    handle.address().add(index, IpAddr::V4(ip), subnet.prefix).execute().await.context("giving the pod its address")?;
    handle.link().set(LinkUnspec::new_with_index(index).up().build()).execute().await?;
    let route = RouteMessageBuilder::<Ipv4Addr>::new().gateway(subnet.gateway()).build();
    handle.route().add(route).execute().await.context("adding the pod's default route")?;
    Ok(())
}

/// Removes the host's end of a pod's veth pair (which takes the pod's end with it). Safe to
/// repeat.
pub async fn detach(pod_uid: &str) -> anyhow::Result<()> {
    let handle = connect().await?;
    if let Some(index) = index_of(&handle, &host_veth(pod_uid)).await? {
        handle.link().del(index).execute().await?;
    }
    Ok(())
}
