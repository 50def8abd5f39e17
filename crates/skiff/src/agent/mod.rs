//! The node agent's settings, shared by `skiff server` (which runs an agent for its own
//! machine unless told not to) and `skiff agent` ([`standalone`], an agent on a machine of its
//! own).

mod standalone;

pub use standalone::{StandaloneArgs, run};

use clap::Args;
use std::net::IpAddr;
use std::path::Path;

#[derive(Args, Debug, Clone)]
pub struct AgentArgs {
    /// The node's name [default: this machine's host name].
    #[arg(long)]
    pub node_name: Option<String>,
    /// The node's address [default: the API server's advertised address in `skiff server`,
    /// else this host's first IPv4 address that is not loopback].
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// The port of the kubelet API (logs, exec), which the API server connects to.
    #[arg(long, default_value_t = kubelet::server::DEFAULT_PORT)]
    pub kubelet_port: u16,
    /// Where images are pulled from: registry mirrors, rewrites, credentials and TLS, in the
    /// shape of k3s's registries.yaml. A file that does not exist means none.
    #[arg(long, default_value = "/etc/skiff/registries.yaml")]
    pub private_registry: std::path::PathBuf,
    /// The most processes each pod may run, all its containers together; -1 for no limit
    /// (the kubelet's --pod-max-pids).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub pod_max_pids: i64,
    /// A folder of static pod manifests (YAML or JSON, one pod a file) that the node runs
    /// without the API server, each shown in the API by a mirror pod.
    #[arg(long)]
    pub pod_manifest_path: Option<std::path::PathBuf>,
    /// Make the pods' network with standard CNI plugins instead of skiff's bridge: the
    /// network configuration is the first .conflist, .conf or .json file here by name.
    #[arg(long)]
    pub cni_conf_dir: Option<std::path::PathBuf>,
    /// Where the CNI plugins are (comma-separated folders, searched in order).
    #[arg(long, default_value = "/opt/cni/bin,/usr/lib/cni", value_delimiter = ',')]
    pub cni_bin_dir: Vec<std::path::PathBuf>,
    /// The disk usage (percent) at which unused images start being removed.
    #[arg(long, default_value_t = 85, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub image_gc_high_threshold: u8,
    /// The disk usage (percent) image garbage collection brings it down to.
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub image_gc_low_threshold: u8,
    /// How long an image stays, used or not, before it may be collected.
    #[arg(long, default_value = "2m", value_parser = crate::server::parse_duration_or_zero)]
    pub minimum_image_ttl_duration: std::time::Duration,
}

impl AgentArgs {
    /// The node's name: as given, else the host name in lower case, as the kubelet names it.
    pub fn node_name(&self) -> String {
        self.node_name.clone().unwrap_or_else(|| crate::host::name().to_lowercase())
    }

    /// The kubelet refuses a low threshold above the high one.
    fn image_gc_policy(&self) -> anyhow::Result<kubelet::image_gc::Policy> {
        if self.image_gc_low_threshold > self.image_gc_high_threshold {
            anyhow::bail!(
                "--image-gc-low-threshold ({}) must not be above --image-gc-high-threshold ({})",
                self.image_gc_low_threshold,
                self.image_gc_high_threshold
            );
        }
        Ok(kubelet::image_gc::Policy {
            high_percent: self.image_gc_high_threshold,
            low_percent: self.image_gc_low_threshold,
            minimum_age: self.minimum_image_ttl_duration,
        })
    }

    pub fn config(
        &self,
        data_dir: &Path,
        default_ip: IpAddr,
        client_ca_pem: String,
        cluster_cidr: &str,
    ) -> anyhow::Result<kubelet::Config> {
        Ok(kubelet::Config {
            node_name: self.node_name(),
            node_ip: self.node_ip.unwrap_or(default_ip),
            kubelet_port: self.kubelet_port,
            root: data_dir.join("agent"),
            shim_program: std::env::current_exe()?,
            client_ca_pem,
            kubelet_version: apiserver::KUBERNETES_VERSION.to_string(),
            registries: runtime::registry::RegistriesConfig::load(&self.private_registry)?,
            pod_max_pids: (self.pod_max_pids >= 0).then_some(self.pod_max_pids),
            pod_manifest_path: self.pod_manifest_path.clone(),
            image_gc: self.image_gc_policy()?,
            cluster_cidr: cluster_cidr.to_string(),
            cni: self
                .cni_conf_dir
                .clone()
                .map(|conf_dir| runtime::network::cni::Plugins { conf_dir, bin_dirs: self.cni_bin_dir.clone() }),
        })
    }
}
