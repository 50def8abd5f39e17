//! Cluster IPs from the service CIDR (10.43.0.0/16 by default) and node ports from
//! 30000-32767: what is taken is known from the stored Services, read once at start and kept
//! up to date by every create and delete through this server.

use registry::NODE_PORT_RANGE;
use serde_json::Value;
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Mutex;

pub struct ServiceAllocator {
    network: u32,
    size: u32,
    state: Mutex<Taken>,
}

#[derive(Default)]
struct Taken {
    ips: HashSet<u32>,
    ports: HashSet<i32>,
    next_ip: u32,
    next_port: i32,
}

#[derive(Debug, PartialEq, Eq)]
pub enum AllocError {
    IpTaken(String),
    IpOutOfRange(String),
    IpInvalid(String),
    PortTaken(i32),
    Full(&'static str),
}

impl ServiceAllocator {
    /// `cidr` like `10.43.0.0/16`.
    pub fn new(cidr: &str) -> anyhow::Result<Self> {
        let (addr, bits) =
            cidr.split_once('/').ok_or_else(|| anyhow::anyhow!("service CIDR {cidr} needs a /prefix"))?;
        let addr: Ipv4Addr = addr.parse()?;
        let bits: u32 = bits.parse()?;
        anyhow::ensure!((8..=30).contains(&bits), "service CIDR prefix must be between /8 and /30");
        let size = 1u32 << (32 - bits);
        let network = u32::from(addr) & !(size - 1);
        Ok(Self {
            network,
            size,
            state: Mutex::new(Taken { next_ip: 10, next_port: *NODE_PORT_RANGE.start(), ..Default::default() }),
        })
    }

    /// The first usable address: the `kubernetes` Service's.
    pub fn first_ip(&self) -> String {
        Ipv4Addr::from(self.network + 1).to_string()
    }

    /// Marks what a stored Service holds (at start-up).
    pub fn record(&self, svc: &Value) {
        let mut taken = self.state.lock().unwrap();
        if let Some(ip) = cluster_ip(svc).and_then(|ip| self.offset(&ip)) {
            taken.ips.insert(ip);
        }
        taken.ports.extend(node_ports(svc));
    }

    fn offset(&self, ip: &str) -> Option<u32> {
        let ip = u32::from(ip.parse::<Ipv4Addr>().ok()?);
        (ip >= self.network && ip < self.network + self.size).then(|| ip - self.network)
    }

    /// Allocates what a new Service asks for or needs, writing the choices into it. Nothing is
    /// held if any part fails.
    pub fn allocate(&self, svc: &mut Value) -> Result<(), AllocError> {
        self.reserve(svc, &Value::Null)
    }

    /// Brings an updated Service's allocations over from the stored one where the update
    /// leaves them out (an empty clusterIP, a zero nodePort), and drops those its new type
    /// does not use (ExternalName has no cluster IP; only NodePort and LoadBalancer have node
    /// ports). Kubernetes does the same before validating the update.
    pub fn carry_over(new: &mut Value, old: &Value) {
        let new_type = service_type(new).to_string();
        let spec = match new.get_mut("spec").and_then(Value::as_object_mut) {
            Some(s) => s,
            None => return,
        };
        if spec.get("clusterIP").and_then(Value::as_str) == Some("") {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
        if new_type == "ExternalName" {
            for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                spec.remove(field);
            }
        } else if !spec.contains_key("clusterIP") && service_type(old) != "ExternalName" {
            for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                if let Some(v) = old.pointer(&format!("/spec/{field}")) {
                    spec.insert(field.into(), v.clone());
                }
            }
        }
        let node_ports_used = matches!(new_type.as_str(), "NodePort" | "LoadBalancer");
        let old_ports = old.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
        for port in spec.get_mut("ports").and_then(Value::as_array_mut).into_iter().flatten() {
            let Some(port) = port.as_object_mut() else { continue };
            if port.get("nodePort").and_then(Value::as_i64) == Some(0) || !node_ports_used {
                port.remove("nodePort");
            }
            if node_ports_used && !port.contains_key("nodePort") {
                let same = old_ports
                    .iter()
                    .find(|p| p.get("port") == port.get("port") && p.get("protocol") == port.get("protocol"));
                if let Some(np) = same.and_then(|p| p.get("nodePort")) {
                    port.insert("nodePort".into(), np.clone());
                }
            }
        }
    }

    /// Reserves what an updated Service holds that the stored one (`old`) does not, choosing
    /// an address or ports where it needs them and has none.
    pub fn reallocate(&self, new: &mut Value, old: &Value) -> Result<(), AllocError> {
        self.reserve(new, old)
    }

    /// Reserves what `svc` asks for or needs beyond what `held` (its stored form, or null)
    /// already holds, writing the choices into it. Nothing new is held if any part fails.
    fn reserve(&self, svc: &mut Value, held: &Value) -> Result<(), AllocError> {
        let mut taken = self.state.lock().unwrap();
        let held_ip = cluster_ip(held).and_then(|ip| self.offset(&ip));
        let held_ports = node_ports(held);
        let spec_type = service_type(svc).to_string();
        let mut new_ip = None;
        if spec_type != "ExternalName" {
            match cluster_ip(svc).as_deref() {
                Some("None") => {}
                Some(ip) => {
                    let off = self.offset(ip).ok_or_else(|| {
                        if ip.parse::<Ipv4Addr>().is_err() {
                            AllocError::IpInvalid(ip.into())
                        } else {
                            AllocError::IpOutOfRange(ip.into())
                        }
                    })?;
                    if Some(off) != held_ip {
                        if taken.ips.contains(&off) {
                            return Err(AllocError::IpTaken(ip.into()));
                        }
                        new_ip = Some(off);
                    }
                }
                None => {
                    let usable = self.size - 2;
                    let start = taken.next_ip;
                    let off = (0..usable)
                        .map(|i| 1 + (start + i) % usable)
                        .find(|o| !taken.ips.contains(o))
                        .ok_or(AllocError::Full("no cluster IPs are left in the service CIDR"))?;
                    taken.next_ip = off;
                    new_ip = Some(off);
                }
            }
        }
        let mut new_ports = Vec::new();
        if matches!(spec_type.as_str(), "NodePort" | "LoadBalancer") {
            let ports = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut);
            for port in ports.into_iter().flatten() {
                let requested = port.get("nodePort").and_then(Value::as_i64).unwrap_or(0) as i32;
                if requested != 0 && held_ports.contains(&requested) && !new_ports.contains(&requested) {
                    continue;
                }
                let chosen = if requested != 0 {
                    if taken.ports.contains(&requested) || new_ports.contains(&requested) {
                        return Err(AllocError::PortTaken(requested));
                    }
                    requested
                } else {
                    let span = NODE_PORT_RANGE.end() - NODE_PORT_RANGE.start() + 1;
                    let start = taken.next_port - NODE_PORT_RANGE.start();
                    (0..span)
                        .map(|i| NODE_PORT_RANGE.start() + (start + i) % span)
                        .find(|p| !taken.ports.contains(p) && !new_ports.contains(p))
                        .ok_or(AllocError::Full("no node ports are left in 30000-32767"))?
                };
                port["nodePort"] = Value::from(chosen);
                new_ports.push(chosen);
            }
        }
        if let Some(off) = new_ip {
            taken.ips.insert(off);
            let ip = Ipv4Addr::from(self.network + off).to_string();
            svc["spec"]["clusterIP"] = Value::String(ip.clone());
            svc["spec"]["clusterIPs"] = Value::from(vec![ip]);
        }
        if spec_type != "ExternalName" && cluster_ip(svc).is_some() {
            if cluster_ip(svc).as_deref() == Some("None") {
                svc["spec"]["clusterIPs"] = Value::from(vec!["None"]);
            }
            svc["spec"]["ipFamilies"] = Value::from(vec!["IPv4"]);
            if svc.pointer("/spec/ipFamilyPolicy").is_none() {
                svc["spec"]["ipFamilyPolicy"] = Value::from("SingleStack");
            }
        }
        if let Some(p) = new_ports.last() {
            taken.next_port = *p + 1;
        }
        taken.ports.extend(new_ports);
        Ok(())
    }

    /// Returns what a Service held (after its delete, or a failed create).
    pub fn release(&self, svc: &Value) {
        self.release_difference(svc, &Value::Null);
    }

    /// Returns what `a` holds and `b` does not: after an update is stored, what the old form
    /// held and the new one dropped; after it failed, what the new form had newly reserved.
    pub fn release_difference(&self, a: &Value, b: &Value) {
        let mut taken = self.state.lock().unwrap();
        let kept_ip = cluster_ip(b);
        if let Some(ip) = cluster_ip(a).filter(|ip| Some(ip) != kept_ip.as_ref())
            && let Some(off) = self.offset(&ip)
        {
            taken.ips.remove(&off);
        }
        let kept_ports = node_ports(b);
        for p in node_ports(a).into_iter().filter(|p| !kept_ports.contains(p)) {
            taken.ports.remove(&p);
        }
    }
}

fn service_type(svc: &Value) -> &str {
    svc.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP")
}

fn cluster_ip(svc: &Value) -> Option<String> {
    svc.pointer("/spec/clusterIP").and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from)
}

fn node_ports(svc: &Value) -> Vec<i32> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
        .map(|p| p as i32)
        .filter(|p| *p != 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn allocates_and_detects_conflicts() {
        let a = ServiceAllocator::new("10.43.0.0/16").unwrap();
        let mut s1 = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        a.allocate(&mut s1).unwrap();
        let ip = s1["spec"]["clusterIP"].as_str().unwrap().to_string();
        assert!(ip.starts_with("10.43."));
        let port = s1["spec"]["ports"][0]["nodePort"].as_i64().unwrap() as i32;
        assert!(NODE_PORT_RANGE.contains(&port));
        let mut s2 = json!({"spec": {"clusterIP": ip, "ports": [{"port": 80}]}});
        assert_eq!(a.allocate(&mut s2), Err(AllocError::IpTaken(s1["spec"]["clusterIP"].as_str().unwrap().into())));
        let mut s3 = json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": port}]}});
        assert_eq!(a.allocate(&mut s3), Err(AllocError::PortTaken(port)));
        a.release(&s1);
        assert!(a.allocate(&mut s3).is_ok());
        let mut s4 = json!({"spec": {"clusterIP": "192.168.0.1", "ports": [{"port": 80}]}});
        assert!(matches!(a.allocate(&mut s4), Err(AllocError::IpOutOfRange(_))));
    }

    #[test]
    fn type_changes_allocate_and_release() {
        let a = ServiceAllocator::new("10.43.0.0/16").unwrap();
        let mut old = json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80, "protocol": "TCP"}]}});
        a.allocate(&mut old).unwrap();
        // ClusterIP -> NodePort: keeps its address, gains a node port.
        let mut new = json!({"spec": {"type": "NodePort", "clusterIP": "", "ports": [{"port": 80, "protocol": "TCP", "nodePort": 0}]}});
        ServiceAllocator::carry_over(&mut new, &old);
        a.reallocate(&mut new, &old).unwrap();
        a.release_difference(&old, &new);
        assert_eq!(new["spec"]["clusterIP"], old["spec"]["clusterIP"]);
        let port = new["spec"]["ports"][0]["nodePort"].as_i64().unwrap() as i32;
        // Another Service cannot take that port.
        let mut other = json!({"spec": {"type": "NodePort", "ports": [{"port": 81, "nodePort": port}]}});
        assert_eq!(a.allocate(&mut other), Err(AllocError::PortTaken(port)));
        // NodePort -> ClusterIP: the node port is dropped and released.
        let mut back =
            json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80, "protocol": "TCP", "nodePort": port}]}});
        ServiceAllocator::carry_over(&mut back, &new);
        assert!(back["spec"]["ports"][0].get("nodePort").is_none());
        a.reallocate(&mut back, &new).unwrap();
        a.release_difference(&new, &back);
        assert!(a.allocate(&mut other).is_ok());
        // -> ExternalName: the address is released.
        let mut external = json!({"spec": {"type": "ExternalName", "externalName": "example.com"}});
        ServiceAllocator::carry_over(&mut external, &back);
        a.reallocate(&mut external, &back).unwrap();
        a.release_difference(&back, &external);
        assert!(external["spec"].get("clusterIP").is_none());
        let mut reuse = json!({"spec": {"clusterIP": back["spec"]["clusterIP"], "ports": [{"port": 80}]}});
        assert!(a.allocate(&mut reuse).is_ok());
    }

    #[test]
    fn out_of_range() {
        let a = ServiceAllocator::new("10.43.0.0/16").unwrap();
        let mut s4 = json!({"spec": {"clusterIP": "192.168.0.1", "ports": [{"port": 80}]}});
        assert!(matches!(a.allocate(&mut s4), Err(AllocError::IpOutOfRange(_))));
    }
}
