//! An etcd a benchmark measures against: one member started from `--etcd` on free loopback
//! ports, its data in a folder of the benchmark's, killed when dropped.

use super::server::free_port;
use anyhow::Context;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct EtcdProcess {
    pub url: String,
    _process: tokio::process::Child,
}

impl EtcdProcess {
    pub async fn start(binary: &Path, data: &Path) -> anyhow::Result<EtcdProcess> {
        let (client, peer) =
            (format!("http://127.0.0.1:{}", free_port()?), format!("http://127.0.0.1:{}", free_port()?));
        let process = tokio::process::Command::new(binary)
            .args(["--name", "bench", "--data-dir"])
            .arg(data)
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("bench={peer}")])
            // Room for a million updates between compactions.
            .args(["--quota-backend-bytes", &(8u64 << 30).to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} (install etcd-server, or name it with --etcd)", binary.display()))?;
        let started = Instant::now();
        loop {
            let answer = etcd_client::Client::connect([&client], None).await;
            if let Ok(mut answering) = answer
                && answering.get("/", None).await.is_ok()
            {
                return Ok(EtcdProcess { url: client, _process: process });
            }
            anyhow::ensure!(started.elapsed() < Duration::from_secs(20), "etcd did not answer within 20 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
