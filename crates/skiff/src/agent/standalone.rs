//! `skiff agent`: a node agent on a machine of its own, joined to the cluster's servers with
//! the join token. It makes a key, has a server sign a `system:node:NAME` client certificate
//! for it, keeps them in a kubeconfig (`DATA_DIR/agent/kubelet.kubeconfig`), and talks to
//! the servers listed, moving to the next when one cannot be reached.

use super::AgentArgs;
use crate::files::write_private;
use anyhow::Context;
use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};
use rcgen::{CertificateParams, DnType, KeyPair};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct StandaloneArgs {
    /// The cluster's API servers (https://HOST:6443), comma-separated, in order of preference,
    /// or one address in front of them: when one cannot be reached, the agent moves to the next.
    #[arg(long, value_delimiter = ',', required = true)]
    pub server: Vec<http::Uri>,
    /// The cluster's join token (DATA_DIR/token on one of its servers).
    #[arg(long, env = "SKIFF_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Where the agent keeps its state [default: /var/lib/skiff for root, else ~/.local/share/skiff]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub agent: AgentArgs,
}

pub async fn run(args: StandaloneArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.clone().unwrap_or_else(crate::server::default_data_dir);
    let agent_dir = data_dir.join("agent");
    std::fs::create_dir_all(&agent_dir).with_context(|| format!("creating {}", agent_dir.display()))?;
    let node_name = args.agent.node_name();
    let user = format!("{}{node_name}", apiserver::NODE_USER_PREFIX);
    let key = KeyPair::generate()?;
    let mut request = CertificateParams::new(Vec::<String>::new())?;
    request.distinguished_name.push(DnType::CommonName, user.as_str());
    let csr = request.serialize_request(&key)?.pem()?;
    let credentials = crate::join::node_credentials(&args.server, &args.token, csr).await?;
    let kubeconfig = crate::kubeconfig::render(
        &args.server[0].to_string(),
        &user,
        credentials.ca_cert.as_bytes(),
        credentials.client_cert.as_bytes(),
        key.serialize_pem().as_bytes(),
    );
    let kubeconfig_path = agent_dir.join("kubelet.kubeconfig");
    write_private(&kubeconfig_path, &kubeconfig)?;
    let config =
        kube::Config::from_custom_kubeconfig(Kubeconfig::from_yaml(&kubeconfig)?, &KubeConfigOptions::default())
            .await
            .with_context(|| format!("loading {}", kubeconfig_path.display()))?;
    let client = crate::failover::client(&config, &args.server)?;
    let kubelet =
        args.agent.config(&data_dir, crate::host::address(), credentials.ca_cert, &credentials.cluster_cidr)?;
    eprintln!("skiff agent: node {node_name} joined the cluster; its credentials are in {}", kubeconfig_path.display());
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = kubelet::run(client, kubelet) => result.context("the node agent stopped"),
        _ = tokio::signal::ctrl_c() => Ok(eprintln!("skiff agent: interrupted, stopping")),
        _ = terminate.recv() => Ok(eprintln!("skiff agent: terminated, stopping")),
    }
}
