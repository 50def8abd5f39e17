//! The pods' hostPorts on this node: a record per pod in the agent's folder (its address and
//! ports, named after its uid), from which skiff's nftables table is rebuilt whenever one
//! comes or goes, and when the agent starts.

use super::nat::{self, HostPort, Settings};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Serialize, Deserialize)]
struct Record {
    pod_ip: Ipv4Addr,
    ports: Vec<HostPort>,
}

pub struct HostPorts {
    dir: PathBuf,
    settings: Settings,
    /// Held from changing a record to sending the table, so the last table sent has every
    /// change before it.
    changing: Mutex<()>,
}

impl HostPorts {
    /// Opens the records and builds the table from them (masquerade included, with or
    /// without host ports).
    pub fn open(dir: &Path, settings: Settings) -> anyhow::Result<HostPorts> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let host_ports = HostPorts { dir: dir.to_path_buf(), settings, changing: Mutex::new(()) };
        host_ports.send_table(None)?;
        Ok(host_ports)
    }

    fn record(&self, pod_uid: &str) -> PathBuf {
        self.dir.join(format!("{pod_uid}.json"))
    }

    /// Publishes the pod's ports (none: nothing to do).
    pub fn add(&self, pod_uid: &str, pod_ip: Ipv4Addr, ports: Vec<HostPort>) -> anyhow::Result<()> {
        if ports.is_empty() {
            return Ok(());
        }
        let _turn = self.changing.lock().unwrap();
        let tmp = self.dir.join(format!(".{pod_uid}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec(&Record { pod_ip, ports })?)?;
        std::fs::rename(&tmp, self.record(pod_uid))?;
        self.send_table(None)
    }

    /// Withdraws the pod's ports, if it had any. Safe to repeat: the record goes only once
    /// the table without them is in place, so a failure is retried in full.
    pub fn remove(&self, pod_uid: &str) -> anyhow::Result<()> {
        let _turn = self.changing.lock().unwrap();
        let record = self.record(pod_uid);
        if !record.exists() {
            return Ok(());
        }
        self.send_table(Some(pod_uid))?;
        std::fs::remove_file(record)?;
        Ok(())
    }

    /// Replaces the table with one for the records, but that of the pod `leaving`.
    fn send_table(&self, leaving: Option<&str>) -> anyhow::Result<()> {
        let mut records = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let uid = path.file_stem().and_then(|s| s.to_str());
            if path.extension().is_some_and(|e| e == "json") && uid != leaving {
                let record: Record = serde_json::from_slice(&std::fs::read(&path)?)
                    .with_context(|| format!("reading {}", path.display()))?;
                records.push((record.pod_ip, record.ports));
            }
        }
        nat::table(&self.settings, &records).send().context("writing skiff's nftables table")
    }
}
