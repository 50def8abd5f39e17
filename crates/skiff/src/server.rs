//! `skiff server`: the control plane on the embedded store.

use crate::{files, kubeconfig, pki};
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
    /// How much store history to keep for watches and paginated lists, in seconds.
    #[arg(long, default_value_t = 300)]
    pub history_seconds: u64,
    /// Run the API server without the scheduler (another one places pods).
    #[arg(long)]
    pub disable_scheduler: bool,
}

/// Runs the scheduler as an API client of this server, restarting it if it stops.
async fn run_scheduler(kubeconfig: String) {
    loop {
        let client = async {
            let config = kube::config::Kubeconfig::from_yaml(&kubeconfig)?;
            let config = kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default()).await?;
            anyhow::Ok(kube::Client::try_from(config)?)
        };
        let result = match client.await {
            Ok(client) => scheduler::Scheduler::new(client).run().await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "the scheduler stopped; restarting it");
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

fn default_data_dir() -> PathBuf {
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
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let service_ip = apiserver::kubernetes_service_ip(&args.service_cidr)
        .with_context(|| format!("--service-cidr {} is not a usable IPv4 range", args.service_cidr))?;
    let pki = pki::ensure(&data_dir.join("tls"), &pki::serving_names(&args.tls_san, &service_ip))?;
    let store = store::SqliteStore::open(
        &data_dir.join("state.db"),
        store::SqliteOptions { history: Duration::from_secs(args.history_seconds), ..Default::default() },
    )
    .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    let host = if args.bind_address.is_unspecified() { "127.0.0.1".to_string() } else { args.bind_address.to_string() };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let url = format!("https://{host}:{}", args.https_port);
    let config = apiserver::Config {
        listen: SocketAddr::new(args.bind_address, args.https_port),
        advertise: format!("{host}:{}", args.https_port),
        ca_cert: pki.ca_cert.clone(),
        serving_cert: pki.serving_cert.clone(),
        serving_key: pki.serving_key.clone(),
        token_auth_file: args.token_auth_file.clone(),
        service_cidr: args.service_cidr.clone(),
    };
    let serving = apiserver::start(config, store).await?;
    let kubeconfig = kubeconfig::render(&url, &pki)?;
    let kubeconfig_path = data_dir.join("kubeconfig.yaml");
    files::write_private(&kubeconfig_path, &kubeconfig)?;
    if let Some(extra) = &args.write_kubeconfig {
        files::write_private(extra, &kubeconfig)?;
    }
    if !args.disable_scheduler {
        tokio::spawn(run_scheduler(kubeconfig.clone()));
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
        r = serving => r.context("the API server stopped")?,
        _ = tokio::signal::ctrl_c() => eprintln!("skiff: interrupted, stopping"),
        _ = terminate.recv() => eprintln!("skiff: terminated, stopping"),
    }
    Ok(())
}
