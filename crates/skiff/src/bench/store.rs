//! `skiff bench store`: the embedded store and etcd, side by side on this machine, under the same
//! load through the same `Store` interface, and raw etcd (the etcd client's own transactions, as
//! the backend sends them) to show what the etcd backend adds. Figures: durable writes per second
//! and p99 latency at each concurrency, watch delivery, and disk growth over many updates with
//! compaction on.

use super::drive::concurrently;
use super::etcd_process::EtcdProcess;
use super::figures::{Samples, line, ms};
use super::store_load::{Load, RawEtcd, growth};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use store::Store;

#[derive(Args, Debug)]
pub struct StoreArgs {
    /// Writes (creates) at each concurrency, on each store.
    #[arg(long, default_value_t = 5000)]
    writes: usize,
    /// Concurrent writers, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    writers: Vec<usize>,
    /// Updates of the disk-growth run, on each store.
    #[arg(long, default_value_t = 1_000_000)]
    updates: usize,
    /// Bytes in each value written (a small Kubernetes object's size).
    #[arg(long, default_value_t = 1024)]
    value_size: usize,
    /// Where the stores keep their files: on the disk to measure, not tmpfs.
    #[arg(long, default_value = "/var/tmp")]
    dir: PathBuf,
    /// The etcd server binary.
    #[arg(long, default_value = "etcd")]
    etcd: PathBuf,
}

/// How often both stores compact, each keeping this much history, during the growth run.
const COMPACTION: Duration = Duration::from_secs(10);
/// Concurrent writers of the watch and growth runs.
const STEADY_WRITERS: usize = 16;
/// Keys the growth run updates over and over.
const GROWTH_KEYS: usize = 1000;

pub async fn run(args: StoreArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(&args.dir).with_context(|| format!("making a folder in {}", args.dir.display()))?;
    let etcd = EtcdProcess::start(&args.etcd, &dir.path().join("etcd")).await?;
    let embedded_dir = dir.path().join("embedded");
    std::fs::create_dir_all(&embedded_dir)?;
    let options = store::SqliteOptions { compaction_interval: COMPACTION, history: COMPACTION };
    let embedded: Arc<dyn Store> = store::SqliteStore::open(&embedded_dir.join("state.db"), options)?;
    let options =
        store::EtcdOptions { endpoints: vec![etcd.url.clone()], compaction_interval: COMPACTION, ..Default::default() };
    let backend: Arc<dyn Store> = store::EtcdStore::connect(options).await?;
    let raw = RawEtcd::connect(&etcd.url).await?;
    let value = bytes::Bytes::from(vec![b'x'; args.value_size]);
    let loads = [
        ("embedded", Load::Store(embedded.clone())),
        ("etcd backend", Load::Store(backend.clone())),
        ("raw etcd", Load::Raw(raw)),
    ];
    println!("skiff bench store: {}-byte values, files in {}", args.value_size, args.dir.display());

    println!("\ndurable writes (creates)");
    for &writers in &args.writers {
        let mut runs = Vec::new();
        for (name, load) in &loads {
            let load = load.clone();
            let (prefix, value) = (format!("/registry/bench/{}/writes-{writers}/", slug(name)), value.clone());
            let (elapsed, samples) =
                concurrently(writers, args.writes, move |i| load.clone().create(format!("{prefix}{i}"), value.clone()))
                    .await
                    .with_context(|| format!("{name}, {writers} writers"))?;
            line(&format!("{name}, {writers} writers"), args.writes, elapsed, &samples);
            runs.push((args.writes as f64 / elapsed.as_secs_f64(), samples));
        }
        ratios(&runs);
    }

    println!("\nwatch delivery, from a write's acknowledgement to a watcher's receipt ({STEADY_WRITERS} writers)");
    for (name, load) in &loads {
        let prefix = format!("/registry/bench/{}/watch/", slug(name));
        let samples = load.watch_delivery(&prefix, STEADY_WRITERS, args.writes, value.clone()).await.context(*name)?;
        println!(
            "{name:<44} p50 {:>10}   p99 {:>10}   (n={})",
            ms(samples.percentile(0.5)),
            ms(samples.percentile(0.99)),
            samples.len()
        );
    }

    println!("\ndisk growth over {} updates of {GROWTH_KEYS} keys, compacting every {COMPACTION:?}", args.updates);
    for (name, store, files) in
        [("embedded", embedded, embedded_dir), ("etcd backend", backend, dir.path().join("etcd"))]
    {
        let (before, after, elapsed) =
            growth(store, GROWTH_KEYS, args.updates, STEADY_WRITERS, value.clone(), &files).await.context(name)?;
        println!(
            "{name:<44} {:>8.1} MiB -> {:>8.1} MiB   ({:.0} updates/s)",
            mib(before),
            mib(after),
            args.updates as f64 / elapsed.as_secs_f64()
        );
    }
    Ok(())
}

/// The embedded store against the etcd backend, and the backend against raw etcd.
fn ratios(runs: &[(f64, Samples)]) {
    let [(embedded_rate, embedded), (backend_rate, backend), (_, raw)] = runs else { return };
    let p99 = |samples: &Samples| samples.percentile(0.99).as_secs_f64();
    println!(
        "{:<44} embedded/etcd: {:.2}x writes/s, {:.2}x p99;   etcd backend p99 / raw etcd p99: {:.2}",
        "",
        embedded_rate / backend_rate,
        p99(embedded) / p99(backend),
        p99(backend) / p99(raw)
    );
}

/// A store's name as a key segment: the etcd backend and raw etcd write to one etcd.
fn slug(name: &str) -> String {
    name.replace(' ', "-")
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
