//! Lifecycle hooks: postStart, run once a container has started (a failure kills it, and its
//! restart policy decides what next), and preStop, run before a container is sent SIGTERM,
//! within its grace period. Handlers: exec (in the container), httpGet (to the pod) and
//! sleep.

use crate::probes::Target;
use k8s_openapi::api::core::v1::{Container, LifecycleHandler};
use std::time::Duration;

/// Runs one hook within `timeout`: Ok if it succeeded, else the kubelet's message.
pub async fn run(
    handler: &LifecycleHandler,
    container: &Container,
    target: &Target<'_>,
    timeout: Duration,
) -> Result<(), String> {
    let attempt = async {
        if let Some(exec) = &handler.exec {
            return crate::probes::run_in_container(exec, target, timeout).await;
        }
        if let Some(http) = &handler.http_get {
            let host = http.host.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| target.pod_ip.to_string());
            let port = crate::probes::port(container, &http.port)?;
            let headers: Vec<(String, String)> =
                http.http_headers.iter().flatten().map(|h| (h.name.clone(), h.value.clone())).collect();
            return crate::probes::http_get(&host, port, http.path.as_deref().unwrap_or("/"), &headers).await;
        }
        if let Some(sleep) = &handler.sleep {
            tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0) as u64)).await;
            return Ok(());
        }
        Err("the hook has no handler".to_string())
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("timed out after {}s", timeout.as_secs())))
}
