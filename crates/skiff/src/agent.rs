//! The node agent's settings, shared by `skiff server` (which runs an agent for its own
//! machine unless told not to).

use clap::Args;
use std::net::IpAddr;
use std::path::Path;

#[derive(Args, Debug, Clone)]
pub struct AgentArgs {
    /// The node's name [default: this machine's host name].
    #[arg(long)]
    pub node_name: Option<String>,
    /// The node's address [default: the API server's advertised address].
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// The port of the kubelet API (logs, exec), which the API server connects to.
    #[arg(long, default_value_t = kubelet::server::DEFAULT_PORT)]
    pub kubelet_port: u16,
    /// Where images are pulled from: registry mirrors, rewrites, credentials and TLS, in the
    /// shape of k3s's registries.yaml. A file that does not exist means none.
    #[arg(long, default_value = "/etc/skiff/registries.yaml")]
    pub private_registry: std::path::PathBuf,
}

impl AgentArgs {
    /// The node's name: as given, else the host name in lower case, as the kubelet names it.
    pub fn node_name(&self) -> String {
        self.node_name.clone().unwrap_or_else(|| crate::pki::hostname().to_lowercase())
    }

    pub fn config(
        &self,
        data_dir: &Path,
        default_ip: IpAddr,
        client_ca_pem: String,
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
        })
    }
}
