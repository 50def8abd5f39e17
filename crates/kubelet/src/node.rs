//! The agent's Node: registration with what this machine really has, the status it reports,
//! and its Lease, renewed every 10 s as the kubelet renews it.

use crate::Config;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use std::time::Duration;

/// The field manager the agent writes as.
pub const MANAGER: &str = "skiff-kubelet";
const LEASE_NAMESPACE: &str = "kube-node-lease";
const LEASE_RENEW: Duration = Duration::from_secs(10);
const LEASE_DURATION_SECONDS: i32 = 40;
/// How often the full status is posted when nothing in it changed.
const STATUS_REPORT: Duration = Duration::from_secs(60);
/// Pods a node takes, the kubelet's default --max-pods.
const MAX_PODS: &str = "110";

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// MemTotal from /proc/meminfo, in the Ki units the kubelet reports memory in.
fn memory_ki() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The size of the filesystem that holds the agent's data, in Ki.
fn ephemeral_storage_ki(root: &std::path::Path) -> u64 {
    nix::sys::statvfs::statvfs(root).map(|s| s.blocks() * s.fragment_size() / 1024).unwrap_or(0)
}

fn os_image() -> String {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

/// The labels the kubelet puts on its own node.
fn labels(config: &Config) -> Value {
    json!({
        "kubernetes.io/hostname": config.node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": runtime::image::host_arch(),
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": runtime::image::host_arch(),
    })
}

/// The node's status as the kubelet reports it: capacity from this machine, healthy
/// conditions, addresses, nodeInfo, the kubelet's port and the images it holds.
pub fn status(config: &Config, images: Value) -> Value {
    let now = now();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let resources = json!({
        "cpu": cpus.to_string(),
        "memory": format!("{}Ki", memory_ki()),
        "ephemeral-storage": format!("{}Ki", ephemeral_storage_ki(&config.root)),
        "pods": MAX_PODS,
    });
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let uname = nix::sys::utsname::uname().ok();
    let kernel = uname.as_ref().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
    json!({"status": {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "addresses": [
            {"type": "InternalIP", "address": config.node_ip.to_string()},
            {"type": "Hostname", "address": config.node_name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": config.kubelet_port}},
        "nodeInfo": {
            "machineID": read_trimmed("/etc/machine-id"),
            "systemUUID": read_trimmed("/sys/class/dmi/id/product_uuid"),
            "bootID": read_trimmed("/proc/sys/kernel/random/boot_id"),
            "kernelVersion": kernel,
            "osImage": os_image(),
            "containerRuntimeVersion": format!("skiff://{}", env!("CARGO_PKG_VERSION")),
            "kubeletVersion": config.kubelet_version,
            "kubeProxyVersion": config.kubelet_version,
            "operatingSystem": "linux",
            "architecture": runtime::image::host_arch(),
        },
        "images": images,
    }})
}

/// Creates the Node (or takes back the one this agent made before) with its labels, and
/// reports its status. Like the kubelet, it tries again until the API server takes it (the
/// server may be starting, or another one may have to be found).
pub async fn register(client: &kube::Client, config: &Config, images: Value) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node =
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": config.node_name, "labels": labels(config)}});
    let register = || async {
        nodes.patch(&config.node_name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(node.clone())).await?;
        nodes
            .patch_status(&config.node_name, &PatchParams::default(), &Patch::Merge(status(config, images.clone())))
            .await
    };
    let mut delay = Duration::from_millis(100);
    loop {
        match register().await {
            Ok(_) => return Ok(()),
            Err(e) => tracing::warn!(node = config.node_name, error = %e, "could not register the node; retrying"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(REGISTER_RETRY_MAX);
    }
}

/// The longest wait between two attempts to register (the kubelet's).
const REGISTER_RETRY_MAX: Duration = Duration::from_secs(7);

/// The node's podCIDR, once the control plane has allocated one.
pub async fn pod_cidr(client: &kube::Client, node_name: &str) -> String {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut logged = false;
    loop {
        match nodes.get(node_name).await {
            Ok(node) => {
                if let Some(cidr) = node.spec.and_then(|s| s.pod_cidr) {
                    return cidr;
                }
                if !logged {
                    tracing::info!(node = node_name, "waiting for the control plane to allocate the node's podCIDR");
                    logged = true;
                }
            }
            Err(e) => tracing::warn!(node = node_name, error = %e, "could not read the node's podCIDR; retrying"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Renews the node's Lease every 10 s and posts its status every minute, or at the next
/// renewal when its images changed, for ever. A beat that fails (the API server restarting,
/// say) is made again on the next round.
pub async fn heartbeat(client: kube::Client, config: std::sync::Arc<Config>, images: impl Fn() -> Value) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let nodes: Api<Node> = Api::all(client);
    let mut renew = tokio::time::interval(LEASE_RENEW);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_report = tokio::time::Instant::now();
    // Images may have come between registration and now: the first round reports them.
    let mut reported_images = Value::Null;
    loop {
        renew.tick().await;
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": config.node_name, "namespace": LEASE_NAMESPACE},
            "spec": {"holderIdentity": config.node_name, "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                     "renewTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)},
        });
        if let Err(e) =
            leases.patch(&config.node_name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(lease)).await
        {
            tracing::warn!(error = %e, "could not renew the node's Lease; retrying");
        }
        let current_images = images();
        if last_report.elapsed() >= STATUS_REPORT || current_images != reported_images {
            last_report = tokio::time::Instant::now();
            reported_images = current_images.clone();
            let status = status(&config, current_images);
            if let Err(e) = nodes.patch_status(&config.node_name, &PatchParams::default(), &Patch::Merge(status)).await
            {
                tracing::warn!(error = %e, "could not report the node's status; retrying");
            }
        }
    }
}
