//! The server a benchmark measures: `skiff server` started from this binary in a temporary
//! folder on a free port, and what /proc says about its memory and CPU.

use super::client::Client;
use anyhow::Context;
use bytes::Bytes;
use http::{Method, StatusCode};
use std::time::{Duration, Instant};

pub struct Server {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub pid: u32,
    /// From spawning the process to /readyz answering 200.
    pub ready: Duration,
    /// When the process was spawned.
    pub spawned: Instant,
    /// Killed when the benchmark drops it.
    _process: tokio::process::Child,
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Server {
    /// Starts `skiff server` with `extra` arguments and waits until it is ready. Most
    /// benchmarks measure the control plane against simulated nodes, so it runs without its
    /// node agent.
    pub async fn start(extra: &[&str]) -> anyhow::Result<Server> {
        Server::launch(&[&["--disable-agent"], extra].concat()).await
    }

    /// Starts `skiff server` with its node agent, on a kubelet port of its own.
    pub async fn start_with_agent(node_name: &str) -> anyhow::Result<Server> {
        let kubelet_port = free_port()?.to_string();
        Server::launch(&["--node-name", node_name, "--kubelet-port", &kubelet_port]).await
    }

    async fn launch(extra: &[&str]) -> anyhow::Result<Server> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let started = Instant::now();
        let process = tokio::process::Command::new(std::env::current_exe()?)
            .args(["server", "--bind-address", "127.0.0.1", "--https-port", &port.to_string()])
            .arg("--data-dir")
            .arg(dir.path())
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting skiff server")?;
        let pid = process.id().context("server pid")?;
        loop {
            anyhow::ensure!(started.elapsed() < Duration::from_secs(20), "the server did not become ready in 20 s");
            if let Ok(c) = Client::connect(port, &dir.path().join("tls"), 1).await
                && let Ok((StatusCode::OK, _)) = c.call(Method::GET, "/readyz", Bytes::new()).await
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(Server { ready: started.elapsed(), spawned: started, dir, port, pid, _process: process })
    }

    /// A `kube` client with the server's admin kubeconfig, for the parts that are API clients.
    pub async fn kube_client(&self) -> anyhow::Result<kube::Client> {
        let kubeconfig = kube::config::Kubeconfig::read_from(self.dir.path().join("kubeconfig.yaml"))?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }
}

pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// The most the process's RSS has been since it started.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// A figure in kB from /proc/PID/status, by the name that starts its line.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// CPU time the process has used (user and system), from /proc: a figure the shared host's
/// noise disturbs far less than wall-clock throughput. The kernel counts in USER_HZ (100/s).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name come state, ppid, ... (some may be -1); utime and stime are the 12th
    // and 13th fields from there (fields 14 and 15 of the whole line).
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

pub async fn create_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let body = Bytes::from(format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}"}}}}"#));
    let (status, out) = client.call(Method::POST, "/api/v1/namespaces", body).await?;
    anyhow::ensure!(
        status == StatusCode::CREATED,
        "creating namespace {name}: {status} {}",
        String::from_utf8_lossy(&out)
    );
    Ok(())
}
