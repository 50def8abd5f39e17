//! Pod networks from standard CNI plugins (the CNI specification, v1.0), instead of skiff's
//! bridge: the runtime runs each plugin of the network configuration list in turn with ADD
//! when a pod's sandbox is made, takes the pod's address from the result, and keeps the
//! configuration and result so that DEL (plugins in reverse order, the result as
//! `prevResult`) undoes exactly that when the pod goes, whatever the folder holds by then.
//!
//! ```no_run
//! # use runtime::network::cni::{Cni, PodRef, Plugins};
//! let plugins = Plugins { conf_dir: "/etc/cni/net.d".into(), bin_dirs: vec!["/usr/lib/cni".into()] };
//! let cni = Cni::new(plugins, "/var/lib/skiff/agent/cni".into());
//! let pod = PodRef { uid: "3f2a", namespace: "default", name: "web" };
//! let ip = cni.add(&pod, "/var/lib/skiff/agent/pods/3f2a/ns/net".as_ref(), &[]).unwrap();
//! cni.del("3f2a", None).unwrap();
//! ```

mod config;

use super::nat::HostPort;
use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The pod's interface, as the kubelet names it.
const IFNAME: &str = "eth0";

/// Where the network configuration and the plugins are.
#[derive(Clone, Debug)]
pub struct Plugins {
    pub conf_dir: PathBuf,
    /// Searched in order for a plugin's executable; also the plugins' CNI_PATH.
    pub bin_dirs: Vec<PathBuf>,
}

/// The pod, as plugins are told of it (CNI_CONTAINERID and the kubelet's CNI_ARGS).
pub struct PodRef<'a> {
    pub uid: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// What ADD leaves for DEL.
#[derive(Serialize, Deserialize)]
struct Attachment {
    config: Value,
    result: Value,
    args: String,
}

pub struct Cni {
    plugins: Plugins,
    /// One attachment per pod uid.
    cache_dir: PathBuf,
}

/// One run of a plugin.
struct Call<'a> {
    command: &'a str,
    container_id: &'a str,
    netns: Option<&'a Path>,
    args: &'a str,
}

impl Cni {
    pub fn new(plugins: Plugins, cache_dir: PathBuf) -> Cni {
        Cni { plugins, cache_dir }
    }

    fn cached(&self, pod_uid: &str) -> PathBuf {
        self.cache_dir.join(format!("{pod_uid}.json"))
    }

    /// Connects the pod's network namespace with ADD and returns its IPv4 address. A failed
    /// ADD is undone with DEL before the error is returned.
    pub fn add(&self, pod: &PodRef, netns: &Path, ports: &[HostPort]) -> anyhow::Result<Ipv4Addr> {
        let config = config::load(&self.plugins.conf_dir)?;
        let args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
            pod.namespace, pod.name, pod.uid, pod.uid
        );
        let call = Call { command: "ADD", container_id: pod.uid, netns: Some(netns), args: &args };
        let added = self.add_all(&config, &call, ports).and_then(|result| Ok((pod_ip(&result)?, result)));
        let (ip, result) = match added {
            Ok(added) => added,
            Err(e) => {
                let undo = Call { command: "DEL", ..call };
                if let Err(del) = self.del_all(&config, None, &undo) {
                    tracing::warn!(pod = pod.uid, error = format!("{del:#}"), "undoing a failed CNI ADD");
                }
                return Err(e);
            }
        };
        std::fs::create_dir_all(&self.cache_dir)?;
        let attachment = serde_json::to_vec(&Attachment { config, result, args })?;
        let tmp = self.cache_dir.join(format!(".{}.tmp", pod.uid));
        std::fs::write(&tmp, attachment)?;
        std::fs::rename(&tmp, self.cached(pod.uid))?;
        Ok(ip)
    }

    fn add_all(&self, config: &Value, call: &Call, ports: &[HostPort]) -> anyhow::Result<Value> {
        let mut result = None;
        for plugin in config["plugins"].as_array().into_iter().flatten() {
            let input = config::plugin_input(config, plugin, result.as_ref(), ports);
            result = Some(self.run(plugin, &input, call)?);
        }
        result.ok_or_else(|| anyhow!("the CNI network has no plugins"))
    }

    /// Disconnects the pod with DEL, if ADD connected it. Safe to repeat.
    pub fn del(&self, pod_uid: &str, netns: Option<&Path>) -> anyhow::Result<()> {
        let path = self.cached(pod_uid);
        let attachment: Attachment = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let call = Call { command: "DEL", container_id: pod_uid, netns, args: &attachment.args };
        self.del_all(&attachment.config, Some(&attachment.result), &call)?;
        std::fs::remove_file(path)?;
        Ok(())
    }

    fn del_all(&self, config: &Value, result: Option<&Value>, call: &Call) -> anyhow::Result<()> {
        for plugin in config["plugins"].as_array().into_iter().flatten().rev() {
            self.run(plugin, &config::plugin_input(config, plugin, result, &[]), call)?;
        }
        Ok(())
    }

    /// Runs one plugin and returns what it printed (for ADD, its result).
    fn run(&self, plugin: &Value, input: &Value, call: &Call) -> anyhow::Result<Value> {
        let kind = plugin["type"].as_str().unwrap_or_default();
        let program = self
            .plugins
            .bin_dirs
            .iter()
            .map(|dir| dir.join(kind))
            .find(|p| p.is_file())
            .ok_or_else(|| anyhow!("no CNI plugin {kind:?} in {}", self.path()))?;
        let mut child = Command::new(&program)
            .env("CNI_COMMAND", call.command)
            .env("CNI_CONTAINERID", call.container_id)
            .env("CNI_NETNS", call.netns.map(|p| p.as_os_str()).unwrap_or_default())
            .env("CNI_IFNAME", IFNAME)
            .env("CNI_ARGS", call.args)
            .env("CNI_PATH", self.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {}", program.display()))?;
        child.stdin.take().expect("piped").write_all(&serde_json::to_vec(input)?)?;
        let output = child.wait_with_output()?;
        if !output.status.success() {
            bail!("CNI plugin {kind} {}: {}", call.command, plugin_error(&output.stdout, &output.stderr));
        }
        if output.stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&output.stdout).with_context(|| format!("CNI plugin {kind} printed no JSON result"))
    }

    fn path(&self) -> String {
        let dirs: Vec<_> = self.plugins.bin_dirs.iter().map(|d| d.display().to_string()).collect();
        dirs.join(":")
    }
}

/// A failed plugin's error: its JSON error's msg, details and code, else whatever it said.
fn plugin_error(stdout: &[u8], stderr: &[u8]) -> String {
    match serde_json::from_slice::<Value>(stdout) {
        Ok(e) if e["msg"].is_string() => {
            let details = e["details"].as_str().filter(|d| !d.is_empty()).map(|d| format!(": {d}")).unwrap_or_default();
            format!("{}{details} (error code {})", e["msg"].as_str().unwrap_or_default(), e["code"])
        }
        _ => String::from_utf8_lossy(if stdout.is_empty() { stderr } else { stdout }).trim().to_string(),
    }
}

/// The first IPv4 address of a result (`ips[].address`, in CIDR form).
fn pod_ip(result: &Value) -> anyhow::Result<Ipv4Addr> {
    result["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|ip| ip["address"].as_str()?.split('/').next()?.parse().ok())
        .next()
        .ok_or_else(|| anyhow!("the CNI result has no IPv4 address: {result}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pod_ip_is_the_results_first_ipv4_address() {
        let result = serde_json::json!({"cniVersion": "1.0.0", "ips": [
            {"address": "fd00::5/64", "gateway": "fd00::1"},
            {"address": "10.88.0.5/16", "gateway": "10.88.0.1", "interface": 1},
        ]});
        assert_eq!(pod_ip(&result).unwrap(), Ipv4Addr::new(10, 88, 0, 5));
        assert!(pod_ip(&serde_json::json!({"ips": []})).is_err());
    }

    #[test]
    fn a_plugins_error_reads_as_its_message() {
        let stdout = br#"{"cniVersion": "1.0.0", "code": 11, "msg": "failed to allocate", "details": "range full"}"#;
        assert_eq!(plugin_error(stdout, b""), "failed to allocate: range full (error code 11)");
        assert_eq!(plugin_error(b"", b"panic: oops\n"), "panic: oops");
    }
}
