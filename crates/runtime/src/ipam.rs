//! Pod addresses from the node's podCIDR. Each address in use is a file named after it in the
//! IPAM folder, made with O_EXCL and holding the pod's uid, so two pods never get the same
//! address, and the record survives an agent restart.

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

pub struct Ipam {
    dir: PathBuf,
    subnet: Subnet,
}

impl Ipam {
    pub fn open(dir: &Path, subnet: Subnet) -> anyhow::Result<Ipam> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Ipam { dir: dir.to_path_buf(), subnet })
    }

    /// The pod's address: the one it already holds, else the lowest free one.
    pub fn allocate(&self, pod_uid: &str) -> anyhow::Result<Ipv4Addr> {
        if let Some(ip) = self.held_by(pod_uid)? {
            return Ok(ip);
        }
        for ip in self.subnet.pod_addresses() {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(self.dir.join(ip.to_string())) {
                Ok(mut file) => {
                    std::io::Write::write_all(&mut file, pod_uid.as_bytes())?;
                    return Ok(ip);
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
        assert!("10.42.0.0".parse::<Subnet>().is_err());
        assert!("10.42.0.0/31".parse::<Subnet>().is_err());
    }
}
