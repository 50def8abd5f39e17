//! `skiff bench workloads`: a Deployment's life through the whole control plane. A server
//! runs its API, store, scheduler and controllers as in production; this process runs the
//! simulated nodes (which take pods to Running and Ready) and the user: it creates a
//! Deployment, waits for it to be Available, rolls it to a new template, and deletes its
//! namespace. Every pod is created by the ReplicaSet controller, bound by the scheduler and
//! reported Running by a simulated node: three durable writes, all through the API.

use super::figures::ms;
use super::server::{Server, cpu_time, peak_rss_kib, rss_kib};
use clap::Args;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct WorkloadsArgs {
    /// Simulated nodes (32 cpu, 256Gi, 110 pods each).
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// The Deployment's replicas.
    #[arg(long, default_value_t = 10000)]
    replicas: i32,
}

const NAMESPACE: &str = "bench-workloads";
const NAME: &str = "web";
/// How long any one phase may take before the benchmark gives up.
const PHASE_LIMIT: Duration = Duration::from_secs(900);

fn deployment(replicas: i32) -> anyhow::Result<Deployment> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": NAME},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": NAME}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": NAME}},
                "spec": {"containers": [{"name": "web", "image": "registry.k8s.io/pause:3.10",
                                         "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
            },
        },
    }))?)
}

/// Waits until `done` holds, printing progress every five seconds.
async fn until<F, Fut>(what: &str, mut check: F) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<String>>>,
{
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        match check().await? {
            None => return Ok(started.elapsed()),
            Some(progress) => {
                anyhow::ensure!(
                    started.elapsed() < PHASE_LIMIT,
                    "{what}: not done after {} s ({progress})",
                    PHASE_LIMIT.as_secs()
                );
                if last_report.elapsed() > Duration::from_secs(5) {
                    eprintln!("  {what}: {progress} after {:.0} s", started.elapsed().as_secs_f64());
                    last_report = Instant::now();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// None once the Deployment has every replica updated and available and no old pod left;
/// otherwise how far it got.
async fn rollout_progress(api: &Api<Deployment>, replicas: i32) -> anyhow::Result<Option<String>> {
    let d = api.get(NAME).await?;
    let (generation, status) = (d.metadata.generation, d.status.unwrap_or_default());
    let (updated, available, total) =
        (status.updated_replicas.unwrap_or(0), status.available_replicas.unwrap_or(0), status.replicas.unwrap_or(0));
    let done =
        status.observed_generation == generation && updated == replicas && available == replicas && total == replicas;
    Ok((!done).then(|| format!("{updated} updated, {available} available, {total} in all")))
}

/// The CPU time the server and this process (the simulated nodes) have used so far.
fn cpu_now(server: u32) -> (Duration, Duration) {
    (cpu_time(server), cpu_time(std::process::id()))
}

/// Prints one phase: its pods per second, and the CPU per pod the server and the simulated
/// nodes used over it (from `cpu`, what [`cpu_now`] said when it began).
fn report(what: &str, pods: i32, took: Duration, server: u32, cpu: (Duration, Duration)) {
    let (server_cpu, nodes_cpu) = cpu_now(server);
    let per_pod = |d: Duration| d.as_secs_f64() * 1e6 / pods.max(1) as f64;
    println!(
        "{what:<44} {:>10.0} pods/s   ({pods} pods in {}; CPU per pod: {:.0} µs server, {:.0} µs simulated nodes)",
        pods as f64 / took.as_secs_f64(),
        ms(took),
        per_pod(server_cpu - cpu.0),
        per_pod(nodes_cpu - cpu.1),
    );
}

pub async fn run(args: WorkloadsArgs) -> anyhow::Result<()> {
    let server = Server::start(&[]).await?;
    let pid = server.pid;
    println!(
        "skiff bench workloads: {} nodes, a Deployment of {} replicas; server pid {pid}, port {}",
        args.nodes, args.replicas, server.port
    );
    let kube = server.kube_client().await?;
    let fleet = sim::Fleet::new(sim::NodeTemplate { count: args.nodes, prefix: "node".into(), ..Default::default() });
    let t = Instant::now();
    fleet.register(&kube).await?;
    println!("{:<44} {}", format!("register {} simulated nodes", args.nodes), ms(t.elapsed()));
    let nodes = tokio::spawn({
        let kube = kube.clone();
        async move { fleet.run(kube).await }
    });

    let namespaces: Api<Namespace> = Api::all(kube.clone());
    namespaces
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?)
        .await?;
    let api: Api<Deployment> = Api::namespaced(kube.clone(), NAMESPACE);

    let cpu = cpu_now(pid);
    api.create(&PostParams::default(), &deployment(args.replicas)?).await?;
    let took = until("creation", || rollout_progress(&api, args.replicas)).await?;
    report("create: Deployment created to Available", args.replicas, took, pid, cpu);
    let holding = rss_kib(pid);

    let cpu = cpu_now(pid);
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {"bench.skiff.io/rollout": "2"}}}}});
    api.patch(NAME, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    let took = until("rolling update", || rollout_progress(&api, args.replicas)).await?;
    report("rolling update (maxSurge 25%, maxUnavailable 25%)", args.replicas, took, pid, cpu);

    let cpu = cpu_now(pid);
    namespaces.delete(NAMESPACE, &DeleteParams::default()).await?;
    let took = until("namespace deletion", || async {
        Ok(namespaces
            .get_opt(NAMESPACE)
            .await?
            .map(|ns| format!("namespace {}", ns.status.and_then(|s| s.phase).unwrap_or_default())))
    })
    .await?;
    report("delete the namespace (to gone)", args.replicas, took, pid, cpu);

    nodes.abort();
    let mb = |kib: u64| format!("{:.1} MB", kib as f64 / 1024.0);
    println!("RSS of the server (API, store, scheduler, controllers):");
    println!("{:<44} {}", format!("  holding the {} pods after creation", args.replicas), mb(holding));
    println!("{:<44} {}", "  peak", mb(peak_rss_kib(pid)));
    println!("{:<44} {}", "  at the end, the namespace gone", mb(rss_kib(pid)));
    println!("{:<44} {}", "RSS of this process (simulated nodes)", mb(rss_kib(std::process::id())));
    Ok(())
}
