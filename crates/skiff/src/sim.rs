//! `skiff sim`: simulated nodes against any skiff or Kubernetes API server.

use anyhow::Context;
use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};

#[derive(Args, Debug)]
pub struct SimArgs {
    /// How many nodes to simulate.
    #[arg(long, default_value_t = 10)]
    nodes: usize,
    /// Nodes are named <prefix>-0, <prefix>-1, ...
    #[arg(long, default_value = "sim-node")]
    prefix: String,
    /// Each node's cpu capacity.
    #[arg(long, default_value = "32")]
    cpu: String,
    /// Each node's memory capacity.
    #[arg(long, default_value = "256Gi")]
    memory: String,
    /// Each node's pod capacity.
    #[arg(long, default_value = "110")]
    pods: String,
    /// A label on every node, key=value (repeatable).
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// A taint on every node, key=value:Effect (repeatable).
    #[arg(long = "taint")]
    taints: Vec<sim::Taint>,
    /// Spread the nodes over this many zones (topology.kubernetes.io/zone=zone-N).
    #[arg(long, default_value_t = 0)]
    zones: usize,
    /// The kubeconfig to reach the API with; by default $KUBECONFIG or ~/.kube/config.
    #[arg(long)]
    kubeconfig: Option<std::path::PathBuf>,
    /// The cluster's API servers, comma-separated, in order of preference, instead of the
    /// kubeconfig's server: when one cannot be reached, the nodes move to the next.
    #[arg(long, value_delimiter = ',')]
    server: Vec<http::Uri>,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("label {s:?} is not key=value"))
}

pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer().await.context("no kubeconfig found: pass --kubeconfig or set KUBECONFIG")?,
    };
    let client = if args.server.is_empty() {
        kube::Client::try_from(config)?
    } else {
        crate::failover::client(&config, &args.server)?
    };
    let template = sim::NodeTemplate {
        count: args.nodes,
        prefix: args.prefix,
        cpu: args.cpu,
        memory: args.memory,
        pods: args.pods,
        labels: args.labels,
        taints: args.taints,
        zones: args.zones,
        ..Default::default()
    };
    let fleet = sim::Fleet::new(template);
    tokio::select! {
        result = fleet.run(client) => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
