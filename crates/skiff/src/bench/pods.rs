//! `skiff bench pods`: the single-node cluster with real containers. Starts `skiff server`
//! with its node agent and measures: start to node Ready; the idle cluster's memory (server
//! and agent are one process); pod startup latency as Kubernetes' SLI defines it (from
//! creation to every container running, as a watch sees it) for pods created at once; and
//! the memory each running pod costs the agent and its container's shim.

use super::figures::{Samples, ms};
use super::server::{Server, rss_kib};
use clap::Args;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct PodsArgs {
    /// Pods created at once.
    #[arg(long, default_value_t = 100)]
    pods: usize,
}

const NODE: &str = "bench-node";
const LIMIT: Duration = Duration::from_secs(300);

fn pod(name: &str) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        // With a grace period, a deleted pod stays in the API until its node has taken it down
        // (grace 0 would remove it at once), so the benchmark can wait for a clean machine.
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "sleep", "image": super::busybox_image::NAME, "command": ["sleep", "3600"],
        }]},
    }))?)
}

fn all_running(pod: &Pod) -> bool {
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    statuses.is_some_and(|s| !s.is_empty() && s.iter().all(|c| c.state.as_ref().is_some_and(|st| st.running.is_some())))
}

/// The proportional set size of a process (its private pages, and its share of pages it
/// shares, such as the skiff binary's text with every other shim), in KiB.
fn pss_kib(pid: u32) -> u64 {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The memory of every container shim under the server's folder: how many, and their PSS
/// in KiB.
fn shims_pss_kib(data_dir: &std::path::Path) -> (usize, u64) {
    let needle = data_dir.to_string_lossy().into_owned();
    let mut count = 0;
    let mut total = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let words: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if words.get(1) == Some(&&b"shim"[..]) && String::from_utf8_lossy(&cmdline).contains(&needle) {
            count += 1;
            total += pss_kib(pid);
        }
    }
    (count, total)
}

pub async fn run(args: PodsArgs) -> anyhow::Result<()> {
    let server = Server::start_with_agent(NODE).await?;
    let client = server.kube_client().await?;
    let nodes: Api<Node> = Api::all(client.clone());
    loop {
        anyhow::ensure!(server.spawned.elapsed() < LIMIT, "the node did not become Ready");
        let ready = nodes
            .get_opt(NODE)
            .await?
            .and_then(|n| n.status?.conditions)
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let node_ready = server.spawned.elapsed();
    println!("start to ready /readyz                       {:>10}", ms(server.ready));
    println!("start to node Ready                          {:>10}", ms(node_ready));
    let archive = server.dir.path().join("busybox.tar");
    super::busybox_image::write(&archive)?;
    runtime::image::ImageStore::open(&server.dir.path().join("agent/images"))?.import(&archive)?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = rss_kib(server.pid);
    println!("idle cluster RSS (server and agent)          {:>10.1} MiB", idle as f64 / 1024.0);

    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let watching = api.clone();
    let watch = tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher(watching, watcher::Config::default()));
        while let Some(Ok(event)) = events.next().await {
            if let watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) = event
                && all_running(&pod)
            {
                let _ = seen_tx.send((pod.metadata.name.unwrap_or_default(), Instant::now()));
            }
        }
    });
    let mut created = HashMap::new();
    let creates = (0..args.pods).map(|i| {
        let (api, name) = (&api, format!("startup-{i}"));
        async move {
            let body = pod(&name)?;
            let at = Instant::now();
            api.create(&PostParams::default(), &body).await?;
            anyhow::Ok((name, at))
        }
    });
    let started = Instant::now();
    for result in futures::future::join_all(creates).await {
        let (name, at) = result?;
        created.insert(name, at);
    }
    let mut latencies = HashMap::new();
    while latencies.len() < args.pods {
        let left = LIMIT.saturating_sub(started.elapsed());
        let Ok(Some((name, at))) = tokio::time::timeout(left, seen_rx.recv()).await else {
            anyhow::bail!("only {} of {} pods started within {LIMIT:?}", latencies.len(), args.pods);
        };
        if let Some(created_at) = created.get(&name) {
            latencies.entry(name).or_insert(at - *created_at);
        }
    }
    let all = started.elapsed();
    watch.abort();
    let samples = Samples::new(latencies.into_values().collect());
    println!(
        "pod startup, {} pods at once                 p50 {:>10}   p99 {:>10}   all in {}",
        args.pods,
        ms(samples.percentile(0.5)),
        ms(samples.percentile(0.99)),
        ms(all)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let busy = rss_kib(server.pid);
    let (shims, shim_kib) = shims_pss_kib(server.dir.path());
    println!(
        "agent memory per running pod                 {:>10.1} KiB   (server RSS {:.1} MiB with {} pods)",
        busy.saturating_sub(idle) as f64 / args.pods as f64,
        busy as f64 / 1024.0,
        args.pods
    );
    println!(
        "shim memory (PSS) per container              {:>10.1} KiB   ({shims} shims)",
        shim_kib as f64 / shims.max(1) as f64
    );
    // Every pod is taken down (containers, mounts, veths, cgroups) before the server stops.
    api.delete_collection(&DeleteParams::default(), &ListParams::default()).await?;
    let deadline = Instant::now() + LIMIT;
    while !api.list(&ListParams::default()).await?.items.is_empty() {
        anyhow::ensure!(Instant::now() < deadline, "the pods were not deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
