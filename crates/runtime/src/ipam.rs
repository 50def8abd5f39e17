//! Pod addresses from the node's podCIDR. Each address in use is a file named after it in the
//! IPAM folder, made with O_EXCL and holding the pod's uid, so two pods never get the same
//! address, and the record survives an agent restart.
//!
//! Addresses are handed out in turn after the last one given (`last` in the folder), as CNI's
//! host-local IPAM does, not lowest first: an address just freed is not given again at once,
//! while the host and other pods may still have the old pod's MAC address cached for it.

use anyhow::{Context, anyhow, bail};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// An IPv4 network such as 10.42.0.0/24.
#[derive(Clone, Debug, PartialEq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl std::str::FromStr for Subnet {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Subnet> {
        let (ip, prefix) = s.split_once('/').ok_or_else(|| anyhow!("{s:?} is not a CIDR such as 10.42.0.0/24"))?;
        let ip: Ipv4Addr = ip.parse().with_context(|| format!("{s:?} is not an IPv4 CIDR"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (1..=30).contains(p))
            .ok_or_else(|| anyhow!("{s:?} has no usable prefix length"))?;
        let mask = u32::MAX << (32 - prefix);
        Ok(Subnet { network: Ipv4Addr::from(u32::from(ip) & mask), prefix })
    }
}

impl Subnet {
    /// The first address, which the node's bridge holds.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// The addresses pods may have: all but the network, the gateway and the broadcast.
    fn pod_addresses(&self) -> impl Iterator<Item = Ipv4Addr> {
        let first = u32::from(self.network) + 2;
        let broadcast = u32::from(self.network) | (u32::MAX >> self.prefix);
        (first..broadcast).map(Ipv4Addr::from)
    }
}

/// The file that holds the last address given.
const LAST: &str = "last";

pub struct Ipam {
    dir: PathBuf,
    subnet: Subnet,
}

impl Ipam {
    pub fn open(dir: &Path, subnet: Subnet) -> anyhow::Result<Ipam> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Ipam { dir: dir.to_path_buf(), subnet })
    }

    /// The pod's address: the one it already holds, else the next free one after the last
    /// given.
    pub fn allocate(&self, pod_uid: &str) -> anyhow::Result<Ipv4Addr> {
        if let Some(ip) = self.held_by(pod_uid)? {
            return Ok(ip);
        }
        let last_file = self.dir.join(LAST);
        let last: Option<Ipv4Addr> = std::fs::read_to_string(&last_file).ok().and_then(|l| l.trim().parse().ok());
        let all: Vec<Ipv4Addr> = self.subnet.pod_addresses().collect();
        let start = last.and_then(|l| all.iter().position(|ip| *ip == l)).map_or(0, |i| i + 1);
        for ip in all[start..].iter().chain(&all[..start]) {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(self.dir.join(ip.to_string())) {
                Ok(mut file) => {
                    std::io::Write::write_all(&mut file, pod_uid.as_bytes())?;
                    // Only a hint: losing it costs nothing but the turn.
                    let _ = std::fs::write(&last_file, ip.to_string());
                    return Ok(*ip);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            }
        }
        bail!("no free pod address is left in {}/{}", self.subnet.network, self.subnet.prefix)
    }

    /// The address the pod holds, if any.
    pub fn held_by(&self, pod_uid: &str) -> anyhow::Result<Option<Ipv4Addr>> {
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if std::fs::read_to_string(entry.path()).is_ok_and(|owner| owner == pod_uid) {
                return Ok(entry.file_name().to_str().and_then(|n| n.parse().ok()));
            }
        }
        Ok(None)
    }

    /// Frees the pod's address. Safe to repeat.
    pub fn release(&self, pod_uid: &str) -> anyhow::Result<()> {
        while let Some(ip) = self.held_by(pod_uid)? {
            std::fs::remove_file(self.dir.join(ip.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_handed_out_once_and_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let subnet: Subnet = "10.42.3.77/30".parse().unwrap();
        assert_eq!(subnet.network, Ipv4Addr::new(10, 42, 3, 76));
        assert_eq!(subnet.gateway(), Ipv4Addr::new(10, 42, 3, 77));
        let ipam = Ipam::open(dir.path(), subnet).unwrap();
        // A /30 has one address for a pod: .78 (.79 is the broadcast).
        assert_eq!(ipam.allocate("a").unwrap(), Ipv4Addr::new(10, 42, 3, 78));
        assert_eq!(ipam.allocate("a").unwrap(), Ipv4Addr::new(10, 42, 3, 78), "a pod keeps its address");
        assert!(ipam.allocate("b").unwrap_err().to_string().contains("no free pod address"));
        ipam.release("a").unwrap();
        assert_eq!(ipam.allocate("b").unwrap(), Ipv4Addr::new(10, 42, 3, 78));
        assert_eq!(ipam.held_by("b").unwrap(), Some(Ipv4Addr::new(10, 42, 3, 78)));
        assert!("10.42.0.0".parse::<Subnet>().is_err());
        assert!("10.42.0.0/31".parse::<Subnet>().is_err());
    }

    #[test]
    fn a_freed_address_waits_its_turn() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::open(dir.path(), "10.42.0.0/29".parse().unwrap()).unwrap();
        let first: Vec<Ipv4Addr> = ["a", "b", "c"].iter().map(|p| ipam.allocate(p).unwrap()).collect();
        assert_eq!(first, [Ipv4Addr::new(10, 42, 0, 2), Ipv4Addr::new(10, 42, 0, 3), Ipv4Addr::new(10, 42, 0, 4)]);
        ipam.release("a").unwrap();
        // .2 is free again, but .5 comes first; after .6, the turn wraps around to .2.
        assert_eq!(ipam.allocate("d").unwrap(), Ipv4Addr::new(10, 42, 0, 5));
        assert_eq!(ipam.allocate("e").unwrap(), Ipv4Addr::new(10, 42, 0, 6));
        assert_eq!(ipam.allocate("f").unwrap(), Ipv4Addr::new(10, 42, 0, 2));
    }
}
