//! `skiff bench api`: starts `skiff server` in a temporary folder and measures it from
//! outside, as clients would: start to ready, idle memory, OpenAPI and discovery, durable
//! creates at several concurrencies, gets, patches and applies, lists, and watch event
//! delivery to many watchers.

use super::client::Client;
use super::drive::drive;
use super::figures::{Samples, cpu_line, line, ms};
use super::server::{Server, cpu_time, create_namespace, rss_kib};
use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct ApiArgs {
    /// ConfigMaps created at each concurrency.
    #[arg(long, default_value_t = 20000)]
    creates: usize,
    /// Concurrent writers, one run each.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64")]
    writers: Vec<usize>,
    /// Watchers that each receive every watch event.
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Events sent to the watchers.
    #[arg(long, default_value_t = 200)]
    watch_events: usize,
}

fn config_map(ns: &str, name: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","namespace":"{ns}"}},"data":{{"key":"value"}}}}"#
    ))
}

/// Starts `watchers` watches on a namespace, then creates `events` ConfigMaps there at a steady
/// pace; returns the latency from each create being sent to each watcher receiving it.
async fn watch_delivery(client: Arc<Client>, watchers: usize, events: usize) -> anyhow::Result<Samples> {
    create_namespace(&client, "bench-watch").await?;
    // Watch from the current revision, as a client does after its list.
    let (_, list) = client.call(Method::GET, "/api/v1/namespaces/bench-watch/configmaps", Bytes::new()).await?;
    let list: serde_json::Value = serde_json::from_slice(&list)?;
    let rv = list.pointer("/metadata/resourceVersion").and_then(serde_json::Value::as_str).unwrap_or("0").to_string();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let mut body = client
            .stream(&format!(
                "/api/v1/namespaces/bench-watch/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=600"
            ))
            .await?;
        let (sent, latencies) = (sent.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = 0;
            let mut pending = Vec::new();
            while seen < events {
                let Some(Ok(frame)) = body.frame().await else { break };
                let Ok(data) = frame.into_data() else { continue };
                let now = Instant::now();
                pending.extend_from_slice(&data);
                while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    let text = String::from_utf8_lossy(&line);
                    if let Some(name) = text.split("\"name\":\"").nth(1).and_then(|s| s.split('"').next())
                        && let Some(t) = sent.lock().unwrap().get(name)
                    {
                        latencies.lock().unwrap().push(now - *t);
                        seen += 1;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..events {
        let name = format!("w{i}");
        sent.lock().unwrap().insert(name.clone(), Instant::now());
        let (status, _) = client
            .call(Method::POST, "/api/v1/namespaces/bench-watch/configmaps", config_map("bench-watch", &name))
            .await?;
        anyhow::ensure!(status == StatusCode::CREATED, "watch event create answered {status}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deadline = tokio::time::sleep(Duration::from_secs(30));
    tokio::pin!(deadline);
    for t in tasks {
        tokio::select! {
            _ = t => {}
            _ = &mut deadline => break,
        }
    }
    let all = std::mem::take(&mut *latencies.lock().unwrap());
    anyhow::ensure!(
        all.len() == watchers * events,
        "only {} of {} watch deliveries arrived",
        all.len(),
        watchers * events
    );
    Ok(Samples::new(all))
}

/// Requests per discovery and OpenAPI serving phase: enough for the CPU clock's 10 ms ticks
/// to resolve a few microseconds per request.
const SERVING_REQUESTS: usize = 20_000;

const AGGREGATED_DISCOVERY: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";

/// The OpenAPI documents: the first fetch of all of them (which builds them), the memory they
/// then hold, and the cost of serving them and discovery from memory, as kubectl fetches them.
async fn openapi_and_discovery(client: &Arc<Client>, pid: u32) -> anyhow::Result<()> {
    let gzip = [("accept-encoding", "gzip")];
    let cpu = cpu_time(pid);
    let t = Instant::now();
    let (_, root) = client.call(Method::GET, "/openapi/v3", Bytes::new()).await?;
    let root: serde_json::Value = serde_json::from_slice(&root)?;
    let urls: Vec<String> = root["paths"]
        .as_object()
        .context("the OpenAPI v3 root has no paths")?
        .values()
        .filter_map(|p| p["serverRelativeURL"].as_str().map(String::from))
        .collect();
    for url in &urls {
        client.call_with(Method::GET, url, Bytes::new(), &gzip).await?;
    }
    client.call_with(Method::GET, "/openapi/v2", Bytes::new(), &gzip).await?;
    let protobuf = [("accept", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"), gzip[0]];
    client.call_with(Method::GET, "/openapi/v2", Bytes::new(), &protobuf).await?;
    println!(
        "{:<44} {}   ({} v3 documents, v2 JSON and protobuf)",
        "first OpenAPI fetch (builds them)",
        ms(t.elapsed()),
        urls.len()
    );
    println!("{:<44} {:>10} ms of server CPU in all", "", (cpu_time(pid) - cpu).as_millis());
    println!("{:<44} {:.1} MB", "RSS with OpenAPI loaded", rss_kib(pid) as f64 / 1024.0);

    let c = client.clone();
    let cpu = cpu_time(pid);
    let (elapsed, samples) = drive(8, SERVING_REQUESTS, move |i| {
        let c = c.clone();
        let path = if i % 2 == 0 { "/api" } else { "/apis" };
        async move { c.call_with(Method::GET, path, Bytes::new(), &[("accept", AGGREGATED_DISCOVERY)]).await }
    })
    .await?;
    line("aggregated discovery (/api, /apis)", samples.len(), elapsed, &samples);
    cpu_line(samples.len(), cpu_time(pid) - cpu);

    let (c, docs) = (client.clone(), Arc::new(urls));
    let cpu = cpu_time(pid);
    let (elapsed, samples) = drive(8, SERVING_REQUESTS, move |i| {
        let (c, url) = (c.clone(), docs[i % docs.len()].clone());
        async move { c.call_with(Method::GET, &url, Bytes::new(), &[("accept-encoding", "gzip")]).await }
    })
    .await?;
    line("OpenAPI v3 document, cached, gzip", samples.len(), elapsed, &samples);
    cpu_line(samples.len(), cpu_time(pid) - cpu);

    let root_etag = {
        let url = root["paths"]["api/v1"]["serverRelativeURL"].as_str().unwrap_or_default().to_string();
        let hash = url.rsplit_once("hash=").map(|(_, h)| h.to_string()).unwrap_or_default();
        (url, format!("\"{hash}\""))
    };
    let c = client.clone();
    let cpu = cpu_time(pid);
    let (elapsed, samples) = drive(8, SERVING_REQUESTS, move |_| {
        let (c, (url, etag)) = (c.clone(), root_etag.clone());
        async move { c.call_with(Method::GET, &url, Bytes::new(), &[("if-none-match", etag.as_str())]).await }
    })
    .await?;
    line("OpenAPI v3 revalidation (304)", samples.len(), elapsed, &samples);
    cpu_line(samples.len(), cpu_time(pid) - cpu);
    Ok(())
}

/// Patches and server-side applies of ConfigMaps: the three patch types on existing objects,
/// then applies that create and applies that change.
async fn patches_and_applies(client: &Arc<Client>, pid: u32, ns: &str, objects: usize) -> anyhow::Result<()> {
    let kinds = [
        ("merge patch", "application/merge-patch+json", r#"{"metadata":{"labels":{"patched":"m"}}}"#),
        ("strategic merge patch", "application/strategic-merge-patch+json", r#"{"data":{"extra":"s"}}"#),
        ("JSON patch", "application/json-patch+json", r#"[{"op":"replace","path":"/data/key","value":"j"}]"#),
    ];
    for (what, content_type, body) in kinds {
        let (c, ns) = (client.clone(), ns.to_string());
        let cpu = cpu_time(pid);
        let (elapsed, samples) = drive(16, objects, move |i| {
            let (c, path) = (c.clone(), format!("/api/v1/namespaces/{ns}/configmaps/cm-{i}"));
            async move { c.call_with(Method::PATCH, &path, Bytes::from(body), &[("content-type", content_type)]).await }
        })
        .await?;
        line(&format!("{what} ConfigMap, 16 writers"), samples.len(), elapsed, &samples);
        cpu_line(samples.len(), cpu_time(pid) - cpu);
    }
    for (what, value) in [("server-side apply, creating", "a"), ("server-side apply, changing", "b")] {
        let (c, ns) = (client.clone(), ns.to_string());
        let cpu = cpu_time(pid);
        let (elapsed, samples) = drive(16, objects, move |i| {
            let c = c.clone();
            let path = format!("/api/v1/namespaces/{ns}/configmaps/ap-{i}?fieldManager=bench");
            let body = format!(
                r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"ap-{i}","namespace":"{ns}","labels":{{"app":"bench"}}}},"data":{{"key":"{value}"}}}}"#
            );
            async move { c.call_with(Method::PATCH, &path, Bytes::from(body), &[("content-type", "application/apply-patch+yaml")]).await }
        })
        .await?;
        line(&format!("{what} ConfigMap, 16 writers"), samples.len(), elapsed, &samples);
        cpu_line(samples.len(), cpu_time(pid) - cpu);
    }
    Ok(())
}

pub async fn run(args: ApiArgs) -> anyhow::Result<()> {
    let server = Server::start(&[]).await?;
    let (pid, port, dir) = (server.pid, server.port, server.dir.path());
    println!("skiff bench api: server pid {pid}, port {port}, data in {}", dir.display());
    println!("{:<44} {}", "start to ready (spawn to /readyz 200)", ms(server.ready));
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("{:<44} {:.1} MB", "idle RSS", rss_kib(pid) as f64 / 1024.0);

    let client = Arc::new(Client::connect(port, &dir.join("tls"), 8).await?);
    openapi_and_discovery(&client, pid).await?;
    for &writers in &args.writers {
        let ns = format!("bench-create-{writers}");
        create_namespace(&client, &ns).await?;
        let c = client.clone();
        let path = format!("/api/v1/namespaces/{ns}/configmaps");
        let cpu = cpu_time(pid);
        let (elapsed, samples) = drive(writers, args.creates, move |i| {
            let (c, path, body) = (c.clone(), path.clone(), config_map(&ns, &format!("cm-{i}")));
            async move { c.call(Method::POST, &path, body).await }
        })
        .await?;
        line(&format!("create ConfigMap, durable, {writers} writers"), samples.len(), elapsed, &samples);
        cpu_line(samples.len(), cpu_time(pid) - cpu);
    }
    let ns = format!("bench-create-{}", args.writers[0]);
    let c = client.clone();
    let creates = args.creates;
    let cpu = cpu_time(pid);
    let (elapsed, samples) = drive(16, args.creates, move |i| {
        let (c, path) = (c.clone(), format!("/api/v1/namespaces/{ns}/configmaps/cm-{}", i % creates));
        async move { c.call(Method::GET, &path, Bytes::new()).await }
    })
    .await?;
    line("get ConfigMap, 16 readers", samples.len(), elapsed, &samples);
    cpu_line(samples.len(), cpu_time(pid) - cpu);
    patches_and_applies(&client, pid, &format!("bench-create-{}", args.writers[0]), args.creates / 4).await?;

    create_namespace(&client, "bench-list").await?;
    let c = client.clone();
    drive(16, 500, move |i| {
        let c = c.clone();
        async move {
            c.call(Method::POST, "/api/v1/namespaces/bench-list/configmaps", config_map("bench-list", &format!("l{i}")))
                .await
        }
    })
    .await?;
    let c = client.clone();
    let (elapsed, samples) = drive(4, 200, move |_| {
        let c = c.clone();
        async move { c.call(Method::GET, "/api/v1/namespaces/bench-list/configmaps", Bytes::new()).await }
    })
    .await?;
    line("list 500 ConfigMaps, 4 readers", samples.len(), elapsed, &samples);

    let t = Instant::now();
    let samples = watch_delivery(client.clone(), args.watchers, args.watch_events).await?;
    line(&format!("watch event delivery to {} watchers", args.watchers), samples.len(), t.elapsed(), &samples);
    println!("{:<44} {:.1} MB", "RSS after the benchmark", rss_kib(pid) as f64 / 1024.0);
    Ok(())
}
