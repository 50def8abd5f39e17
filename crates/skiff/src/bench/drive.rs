//! Load from many concurrent clients: each worker takes the next request number until all
//! are sent, and every answer's latency is kept.

use super::figures::Samples;
use bytes::Bytes;
use http::StatusCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs `total` requests from `workers` concurrent tasks; returns the elapsed time and each
/// request's latency. Fails on the first non-2xx answer.
pub async fn drive<F, Fut>(workers: usize, total: usize, request: F) -> anyhow::Result<(Duration, Samples)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<(StatusCode, Bytes)>> + Send,
{
    concurrently(workers, total, move |i| {
        let answer = request(i);
        async move {
            let (status, body) = answer.await?;
            anyhow::ensure!(
                status.is_success() || status == StatusCode::NOT_MODIFIED,
                "request {i} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
            Ok(())
        }
    })
    .await
}

/// Runs operations 0..`total` from `workers` concurrent tasks; returns the elapsed time and each
/// operation's latency. Fails on the first failed operation.
pub async fn concurrently<F, Fut>(workers: usize, total: usize, operation: F) -> anyhow::Result<(Duration, Samples)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let operation = Arc::new(operation);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // Set by the first failure, so that the other workers stop rather than run to the end.
    let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (operation, next, failed) = (operation.clone(), next.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total || failed.load(std::sync::atomic::Ordering::Relaxed) {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let t = Instant::now();
                if let Err(e) = operation(i).await {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Err(e);
                }
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok((started.elapsed(), Samples::new(all)))
}
