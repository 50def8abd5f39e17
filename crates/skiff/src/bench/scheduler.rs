//! `skiff bench scheduler`: kube-scheduler's scheduler_perf workloads through the real API
//! server and store. Simulated nodes are registered (and then stay still), pods are created
//! through the API by many writers, and the scheduler (run in this process, as an API client
//! like any) binds them: every binding is a durable write. A watch sees each pod bound.
//! Throughput is measured on pods already waiting; latency on pods created while it runs.

use super::client::Client;
use super::drive::drive;
use super::figures::{Samples, line, ms};
use super::server::{Server, cpu_time, create_namespace, rss_kib};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use http::Method;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct SchedulerArgs {
    /// Simulated nodes (4 cpu, 32Gi, 110 pods each, over 10 zones).
    #[arg(long, default_value_t = 5000)]
    nodes: usize,
    /// Pods to schedule; the daemonset workload makes one per node whatever this says.
    #[arg(long, default_value_t = 10000)]
    pods: usize,
    /// What the pods ask for.
    #[arg(long, value_enum, default_value_t = Workload::Basic)]
    workload: Workload,
    /// Concurrent writers creating the pods.
    #[arg(long, default_value_t = 16)]
    writers: usize,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Workload {
    /// scheduler_perf's SchedulingBasic: 100m cpu and 500Mi each, nothing else.
    Basic,
    /// Groups of 1,000 pods, each pod refusing a node that holds another of its group.
    AntiAffinity,
    /// Groups of 1,000 pods spread evenly over the zones (maxSkew 1, DoNotSchedule).
    Spread,
    /// One pod per node, pinned to it by node affinity on metadata.name, as DaemonSets do.
    Daemonset,
}

const NAMESPACE: &str = "bench-scheduler";
const GROUP: usize = 1000;

fn pod(workload: Workload, i: usize, nodes: &sim::NodeTemplate) -> Bytes {
    let group = format!("g{}", i / GROUP);
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i}"), "namespace": NAMESPACE, "labels": {"app": "bench", "group": group}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                 "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]},
    });
    let selector = json!({"matchLabels": {"group": group}});
    match workload {
        Workload::Basic => {}
        Workload::AntiAffinity => {
            pod["spec"]["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": selector, "topologyKey": "kubernetes.io/hostname"}]}});
        }
        Workload::Spread => {
            pod["spec"]["topologySpreadConstraints"] = json!([{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                                               "whenUnsatisfiable": "DoNotSchedule", "labelSelector": selector}]);
        }
        Workload::Daemonset => {
            pod["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [nodes.name(i)]}]}]}}});
        }
    }
    Bytes::from(pod.to_string())
}

/// What the watch reads of an event: only the pod's name and node, so that measuring costs
/// this process (whose CPU the scheduler's figure counts) as little as it can.
#[derive(serde::Deserialize)]
struct WatchedEvent {
    object: WatchedPod,
}

#[derive(serde::Deserialize)]
struct WatchedPod {
    metadata: Named,
    #[serde(default)]
    spec: Option<Placement>,
}

#[derive(serde::Deserialize)]
struct Named {
    name: String,
}

#[derive(serde::Deserialize)]
struct Placement {
    #[serde(rename = "nodeName")]
    node_name: Option<String>,
}

/// When each pod was first seen bound, by name, from a watch on the namespace.
async fn watch_bindings(
    client: Arc<Client>,
    from: String,
    bound: Arc<Mutex<HashMap<String, Instant>>>,
) -> anyhow::Result<()> {
    let path = format!("/api/v1/namespaces/{NAMESPACE}/pods?watch=true&resourceVersion={from}&timeoutSeconds=3600");
    let mut body = client.stream(&path).await?;
    let mut pending = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else { continue };
        let now = Instant::now();
        pending.extend_from_slice(&data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let pod = serde_json::from_slice::<WatchedEvent>(&line)?.object;
            if pod.spec.is_some_and(|s| s.node_name.is_some()) {
                bound.lock().unwrap().entry(pod.metadata.name).or_insert(now);
            }
        }
    }
    Ok(())
}

/// Creates pods `range` with the bench's writers, noting when each create was answered.
async fn create_pods(
    client: &Arc<Client>,
    args: &SchedulerArgs,
    template: &Arc<sim::NodeTemplate>,
    range: std::ops::Range<usize>,
    created: &Arc<Mutex<HashMap<String, Instant>>>,
) -> anyhow::Result<(Duration, Samples)> {
    let (c, acked, template, workload, first) =
        (client.clone(), created.clone(), template.clone(), args.workload, range.start);
    drive(args.writers, range.len(), move |i| {
        let i = first + i;
        let (c, acked, body) = (c.clone(), acked.clone(), pod(workload, i, &template));
        async move {
            let answer = c.call(Method::POST, &format!("/api/v1/namespaces/{NAMESPACE}/pods"), body).await;
            acked.lock().unwrap().insert(format!("pod-{i}"), Instant::now());
            answer
        }
    })
    .await
}

/// Waits until `count` pods have been seen bound; returns when the last one was.
async fn until_bound(bound: &Mutex<HashMap<String, Instant>>, count: usize, since: Instant) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut last_report = Instant::now();
    loop {
        let done = bound.lock().unwrap().len();
        if done >= count {
            return Ok(bound.lock().unwrap().values().max().copied().unwrap_or(since));
        }
        anyhow::ensure!(Instant::now() < deadline, "only {done} of {count} pods were bound after 10 minutes");
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!("  {done} of {count} pods bound after {:.0} s", since.elapsed().as_secs_f64());
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

pub async fn run(args: SchedulerArgs) -> anyhow::Result<()> {
    // The server without its scheduler: this process runs one, started once the first pods
    // wait, so that its throughput is measured apart from how fast pods can be created.
    // Without controllers either, as scheduler_perf runs kube-scheduler against an API
    // server alone: nothing here needs them, and they would share the server's CPU.
    let server = Server::start(&["--disable-scheduler", "--disable-controller-manager"]).await?;
    let pid = server.pid;
    let pods = match args.workload {
        Workload::Daemonset => args.nodes,
        _ => args.pods,
    };
    // Pods created while the scheduler runs, for latency: a fifth more (none for
    // daemonset, whose nodes are all taken).
    let more = match args.workload {
        Workload::Daemonset => 0,
        _ => pods / 5,
    };
    println!(
        "skiff bench scheduler: {:?}, {} nodes, {pods} pods, then {more} more; server pid {pid}, port {}",
        args.workload, args.nodes, server.port
    );
    let template = sim::NodeTemplate {
        count: args.nodes,
        prefix: "node".into(),
        cpu: "4".into(),
        memory: "32Gi".into(),
        pods: "110".into(),
        zones: 10,
        ..Default::default()
    };
    let kube = server.kube_client().await?;
    let t = Instant::now();
    sim::Fleet::new(template.clone()).register(&kube).await?;
    println!("{:<52} {}", format!("register {} simulated nodes", args.nodes), ms(t.elapsed()));

    let client = Arc::new(Client::connect(server.port, &server.dir.path().join("tls"), 4).await?);
    create_namespace(&client, NAMESPACE).await?;
    let (_, list) = client.call(Method::GET, &format!("/api/v1/namespaces/{NAMESPACE}/pods"), Bytes::new()).await?;
    let from =
        serde_json::from_slice::<Value>(&list)?["metadata"]["resourceVersion"].as_str().unwrap_or("0").to_string();
    let bound: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watch = tokio::spawn(watch_bindings(client.clone(), from, bound.clone()));
    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let template = Arc::new(template);

    let (elapsed, samples) = create_pods(&client, &args, &template, 0..pods, &created).await?;
    line(&format!("create pods (no scheduler), {} writers", args.writers), samples.len(), elapsed, &samples);

    let started = Instant::now();
    let scheduler = tokio::spawn(scheduler::Scheduler::new(kube, scheduler::config::default_profiles()).run());
    // Throughput and CPU count from the first binding, as scheduler_perf measures a scheduler
    // that has already synced: before it, the scheduler lists the nodes and pods into its cache.
    until_bound(&bound, 1, started).await?;
    let (server_cpu, own_cpu) = (cpu_time(pid), cpu_time(std::process::id()));
    let first = bound.lock().unwrap().values().min().copied().unwrap_or(started);
    println!("{:<52} {}", "start the scheduler until its first binding", ms(first - started));
    let last = until_bound(&bound, pods, started).await?;
    let took = last - first;
    println!(
        "{:<52} {:>10.0}/s   ({pods} pods in {})",
        "schedule and bind waiting pods",
        pods as f64 / took.as_secs_f64(),
        ms(took)
    );
    let per_pod = |cpu: Duration| cpu.as_secs_f64() * 1e6 / pods as f64;
    println!(
        "{:<52} {:>10.0} µs scheduler, {:.0} µs server CPU per pod",
        "",
        per_pod(cpu_time(std::process::id()) - own_cpu),
        per_pod(cpu_time(pid) - server_cpu)
    );

    if more > 0 {
        let started = Instant::now();
        let (elapsed, samples) = create_pods(&client, &args, &template, pods..pods + more, &created).await?;
        line(&format!("create pods while scheduling, {} writers", args.writers), samples.len(), elapsed, &samples);
        let last = until_bound(&bound, pods + more, started).await?;
        let (bound, created) = (bound.lock().unwrap(), created.lock().unwrap());
        let latencies: Vec<Duration> = (pods..pods + more)
            .map(|i| format!("pod-{i}"))
            .filter_map(|name| Some(bound.get(&name)?.saturating_duration_since(*created.get(&name)?)))
            .collect();
        let samples = Samples::new(latencies);
        line("  created to bound (first create to last bind)", more, last - started, &samples);
        println!("{:<52} p90 {:>10}", "", ms(samples.percentile(0.90)));
    }
    watch.abort();
    scheduler.abort();
    println!("{:<52} {:.1} MB", "RSS of the scheduler (this process)", rss_kib(std::process::id()) as f64 / 1024.0);
    println!("{:<52} {:.1} MB", "RSS of the server (API and store)", rss_kib(pid) as f64 / 1024.0);
    Ok(())
}
