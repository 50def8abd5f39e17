//! `skiff server`: the control plane, on the embedded store or on etcd.

use crate::{files, kubeconfig, loopback_client, pki};
use anyhow::Context;
use clap::Args;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Where the cluster keeps its state [default: /var/lib/skiff for root, else ~/.local/share/skiff]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address to serve HTTPS on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// The address the cluster reaches the API server at: the endpoint of the `kubernetes`
    /// Service in default, which pods use. Default: --bind-address if it names one, else this
    /// host's first IPv4 address that is not loopback.
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,
    /// Port to serve HTTPS on.
    #[arg(long, default_value_t = 6443)]
    pub https_port: u16,
    /// Extra names or addresses for the serving certificate (repeatable).
    #[arg(long = "tls-san")]
    pub tls_san: Vec<String>,
    /// Also write the admin kubeconfig here.
    #[arg(long)]
    pub write_kubeconfig: Option<PathBuf>,
    /// Static bearer tokens, in kube-apiserver's CSV format: token,user,uid,"group1,group2".
    #[arg(long)]
    pub token_auth_file: Option<PathBuf>,
    /// Range Service cluster IPs are allocated from.
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cidr: String,
    #[command(flatten)]
    pub datastore: crate::datastore::DatastoreArgs,
    #[command(flatten)]
    pub reset: crate::cluster_reset::ResetArgs,
    #[command(flatten)]
    pub join: crate::join::JoinArgs,
    /// Run the API server without the scheduler (another one places pods).
    #[arg(long)]
    pub disable_scheduler: bool,
    /// Run the API server without the controller manager (another one runs the controllers).
    #[arg(long)]
    pub disable_controller_manager: bool,
    /// Scheduler profiles, in the shape of kube-scheduler's KubeSchedulerConfiguration.
    #[arg(long)]
    pub scheduler_config: Option<PathBuf>,
    /// How long a node may go without renewing its Lease or posting its status before its
    /// conditions become Unknown (a duration: 40s, 1m30s).
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// How long a new node may take to post its first status.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub node_startup_grace_period: Duration,
    /// How often the node lifecycle controller looks at every node's health.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: Duration,
    /// Nodes per second whose pods may be evicted (through their NoExecute taint) in a
    /// healthy zone.
    #[arg(long, default_value_t = 0.1)]
    pub node_eviction_rate: f64,
    /// Nodes per second in a zone past --unhealthy-zone-threshold, if it has more than
    /// --large-cluster-size-threshold nodes (smaller ones stop evicting).
    #[arg(long, default_value_t = 0.01)]
    pub secondary_node_eviction_rate: f64,
    /// The share of not-Ready nodes (of at least three) from which a zone is unhealthy.
    #[arg(long, default_value_t = 0.55)]
    pub unhealthy_zone_threshold: f64,
    /// Zones with more nodes than this keep evicting, more slowly, when unhealthy.
    #[arg(long, default_value_t = 50)]
    pub large_cluster_size_threshold: usize,
    /// Finished pods kept before the oldest are deleted (0: keep them all).
    #[arg(long, default_value_t = 12500)]
    pub terminated_pod_gc_threshold: usize,
    /// The range nodes' podCIDRs are allocated from, one /24 each.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// Run the control plane only, without this machine's node agent.
    #[arg(long)]
    pub disable_agent: bool,
    #[command(flatten)]
    pub agent: crate::agent::AgentArgs,
}

/// A positive duration as kube-controller-manager's flags take them: 40s, 1m30s, 500ms.
fn parse_duration(s: &str) -> Result<Duration, String> {
    match parse_duration_or_zero(s)? {
        d if d.is_zero() => Err(format!("{s:?} must be longer than zero")),
        d => Ok(d),
    }
}

/// A duration that may be zero (`0s`), for flags where none is a choice.
pub(crate) fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    let parsed: jiff::SignedDuration =
        s.parse().map_err(|e| format!("{s:?} is not a duration such as 40s or 1m30s: {e}"))?;
    Duration::try_from(parsed).map_err(|_| format!("{s:?} must not be negative"))
}

/// Reads the scheduler profiles: the configuration file's, or the default.
fn scheduler_profiles(config: Option<&std::path::Path>) -> anyhow::Result<Vec<scheduler::config::Profile>> {
    match config {
        Some(path) => scheduler::config::load(path),
        None => Ok(scheduler::config::default_profiles()),
    }
}

/// Runs `work` as an API client of this server while this server holds the `lease` in
/// kube-system, so that of several servers only one runs it.
async fn run_leading<F, Fut>(client: kube::Client, lease: &'static str, identity: String, work: F)
where
    F: Fn(kube::Client) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let election = election::Election::new(client.clone(), "kube-system", lease, &identity);
    if let Err(e) = election.run(|| work(client.clone())).await {
        tracing::error!(error = %e, component = lease, "stopped");
    }
}

/// What `--advertise-address` defaults to, as kube-apiserver's does.
fn advertise_address(args: &ServerArgs) -> IpAddr {
    args.advertise_address
        .or((!args.bind_address.is_unspecified()).then_some(args.bind_address))
        .unwrap_or_else(crate::host::address)
}

pub(crate) fn default_data_dir() -> PathBuf {
    let root = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false);
    if root {
        return PathBuf::from("/var/lib/skiff");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/skiff")
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    // A bad scheduler configuration stops the server here rather than later in a log.
    scheduler_profiles(args.scheduler_config.as_deref())?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let service_ip = apiserver::kubernetes_service_ip(&args.service_cidr)
        .with_context(|| format!("--service-cidr {} is not a usable IPv4 range", args.service_cidr))?;
    let tls_dir = data_dir.join("tls");
    crate::join::fetch_ca(&args.join, &args.datastore, &tls_dir).await?;
    let pki = pki::ensure(&tls_dir, &pki::serving_names(&args.tls_san, &service_ip))?;
    let join_token = crate::join::token(&args.join, &pki.ca_cert, &data_dir)?;
    if args.reset.cluster_reset {
        crate::cluster_reset::run(&args.reset, &args.datastore, &data_dir).await?;
        eprintln!("skiff: the datastore has been reset; start the server again without --cluster-reset");
        return Ok(());
    }
    crate::cluster_reset::refuse_unfinished(&data_dir)?;
    let store = crate::datastore::open(&args.datastore, &data_dir).await?;
    crate::join::check_datastore(&*store, &pki.ca_cert).await?;
    let host = if args.bind_address.is_unspecified() { "127.0.0.1".to_string() } else { args.bind_address.to_string() };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let url = format!("https://{host}:{}", args.https_port);
    let config = apiserver::Config {
        listen: SocketAddr::new(args.bind_address, args.https_port),
        advertise: SocketAddr::new(advertise_address(&args), args.https_port),
        ca_cert: pki.ca_cert.clone(),
        ca_key: pki.ca_key.clone(),
        join_password: join_token.password,
        serving_cert: pki.serving_cert.clone(),
        serving_key: pki.serving_key.clone(),
        token_auth_file: args.token_auth_file.clone(),
        service_cidr: args.service_cidr.clone(),
        cluster_cidr: args.cluster_cidr.clone(),
        kubelet_client_cert: pki.kubelet_client_cert.clone(),
        kubelet_client_key: pki.kubelet_client_key.clone(),
    };
    let config_advertise = config.advertise;
    let serving = apiserver::start(config, store).await?;
    let kubeconfig = kubeconfig::admin(&url, &pki)?;
    let kubeconfig_path = data_dir.join("kubeconfig.yaml");
    files::write_private(&kubeconfig_path, &kubeconfig)?;
    if let Some(extra) = &args.write_kubeconfig {
        files::write_private(extra, &kubeconfig)?;
    }
    // Stable across restarts, so that a restarted server takes its own Leases back at once.
    let identity = format!("{}_{}", crate::host::name(), config_advertise);
    if !args.disable_scheduler {
        let config = args.scheduler_config.clone();
        let client = loopback_client::client(&serving.loopback.as_user("system:kube-scheduler"));
        tokio::spawn(run_leading(client, "kube-scheduler", identity.clone(), move |client| {
            let config = config.clone();
            async move { scheduler::Scheduler::new(client, scheduler_profiles(config.as_deref())?).run().await }
        }));
    }
    if !args.disable_controller_manager {
        let root_ca =
            std::fs::read_to_string(&pki.ca_cert).with_context(|| format!("reading {}", pki.ca_cert.display()))?;
        let node_lifecycle = controllers::node_lifecycle::Settings {
            monitor_period: args.node_monitor_period,
            monitor_grace_period: args.node_monitor_grace_period,
            startup_grace_period: args.node_startup_grace_period,
            eviction_rate: args.node_eviction_rate,
            secondary_eviction_rate: args.secondary_node_eviction_rate,
            unhealthy_zone_threshold: args.unhealthy_zone_threshold,
            large_cluster_size_threshold: args.large_cluster_size_threshold,
        };
        let terminated_pod_gc_threshold = args.terminated_pod_gc_threshold;
        let cluster_cidr = args.cluster_cidr.parse().map_err(|e: String| anyhow::anyhow!("--cluster-cidr: {e}"))?;
        let settings = std::sync::Arc::new(controllers::Settings {
            root_ca,
            node_lifecycle,
            terminated_pod_gc_threshold,
            cluster_cidr,
        });
        let client = loopback_client::client(&serving.loopback.as_user("system:kube-controller-manager"));
        tokio::spawn(run_leading(client, "kube-controller-manager", identity, move |client| {
            controllers::run(client, settings.clone())
        }));
    }
    if !args.disable_agent {
        let client = loopback_client::client(&serving.loopback.as_node(&args.agent.node_name()));
        let ca = std::fs::read_to_string(&pki.ca_cert).with_context(|| format!("reading {}", pki.ca_cert.display()))?;
        let config = args.agent.config(&data_dir, config_advertise.ip(), ca, &args.cluster_cidr)?;
        tokio::spawn(async move {
            if let Err(e) = kubelet::run(client, config).await {
                tracing::error!(error = format!("{e:#}"), "the node agent stopped");
            }
        });
    }
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "skiff {} is serving Kubernetes {} at {url}",
        env!("CARGO_PKG_VERSION"),
        apiserver::KUBERNETES_VERSION
    );
    eprintln!(
        "skiff is ready at {url}\n  export KUBECONFIG={}\n  kubectl get namespaces",
        args.write_kubeconfig.as_ref().unwrap_or(&kubeconfig_path).display()
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = serving.task => r.context("the API server stopped")?,
        _ = tokio::signal::ctrl_c() => eprintln!("skiff: interrupted, stopping"),
        _ = terminate.recv() => eprintln!("skiff: terminated, stopping"),
    }
    Ok(())
}
