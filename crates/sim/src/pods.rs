//! The pods bound to simulated nodes, moved through their lifecycle as a kubelet reports it:
//! Running as soon as they are bound (an IP from the node's range, every container started
//! and ready, init containers completed), Succeeded once the run time their
//! `sim.skiff.io/run-seconds` annotation declares has passed (Failed instead if a
//! `sim.skiff.io/exit-code` annotation gives a non-zero exit code), and stopped when they are
//! deleted: at once, or after the seconds of a `sim.skiff.io/stop-seconds` annotation (within
//! the grace period), they report Failed (exit code 143, as for SIGTERM) if a finalizer will
//! keep them around to be read, and are then removed for good. Their readiness is what the
//! `sim.skiff.io/ready` annotation says (ready unless it is "false"), reported again
//! whenever it changes or something else (the node lifecycle controller, while the node was
//! out of reach) wrote otherwise, as a kubelet's probes would.

use crate::node::{NodeTemplate, node_ip, pod_ip};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a pod's containers run before they exit; absent, they run forever.
pub const RUN_SECONDS_ANNOTATION: &str = "sim.skiff.io/run-seconds";
/// The exit code the containers end with (0 when absent); non-zero makes the pod Failed.
pub const EXIT_CODE_ANNOTATION: &str = "sim.skiff.io/exit-code";
/// "false" makes the running containers fail their readiness probes.
pub const READY_ANNOTATION: &str = "sim.skiff.io/ready";
/// How long the containers take to stop once the pod is deleted (0 when absent); the grace
/// period bounds it.
pub const STOP_SECONDS_ANNOTATION: &str = "sim.skiff.io/stop-seconds";
/// The exit code of containers stopped by the pod's deletion: 128 + SIGTERM.
const STOPPED_EXIT_CODE: i32 = 143;

struct Kubelet {
    client: kube::Client,
    template: Arc<NodeTemplate>,
    /// Pods started per node, for their addresses.
    started: Vec<AtomicUsize>,
    /// Pods (by uid and step) whose run time or stop time is being waited out.
    waiting: Mutex<HashSet<String>>,
}

pub async fn run(client: kube::Client, template: Arc<NodeTemplate>) -> anyhow::Result<()> {
    let all: Api<Pod> = Api::all(client.clone());
    let kubelet = Arc::new(Kubelet {
        client,
        started: (0..template.count).map(|_| AtomicUsize::new(0)).collect(),
        waiting: Mutex::default(),
        template: template.clone(),
    });
    // Neither a broken watch nor a failed write stops the nodes: the watch resumes (the API
    // server may be restarting), and a pod whose write failed is handled again on its
    // next event or relist.
    watcher(all, watcher::Config::default().fields("spec.nodeName!="))
        .default_backoff()
        .applied_objects()
        .for_each_concurrent(template.concurrency.max(1), |pod| {
            let kubelet = kubelet.clone();
            async move {
                let outcome = match pod {
                    Ok(pod) => kubelet.handle(pod).await,
                    Err(e) => Err(e.into()),
                };
                if let Err(e) = outcome {
                    tracing::debug!(error = %e, "simulated pods: retrying after an API error");
                }
            }
        })
        .await;
    Ok(())
}

fn start_time(pod: &Pod) -> Option<chrono::DateTime<chrono::Utc>> {
    let t = pod.status.as_ref()?.start_time.as_ref()?;
    chrono::DateTime::from_timestamp(t.0.as_second(), 0)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Kubelet {
    async fn handle(self: Arc<Self>, pod: Pod) -> anyhow::Result<()> {
        let Some(index) =
            pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).and_then(|n| self.template.index_of(n))
        else {
            return Ok(());
        };
        let (Some(namespace), Some(name), Some(uid)) =
            (pod.metadata.namespace.clone(), pod.metadata.name.clone(), pod.metadata.uid.clone())
        else {
            return Ok(());
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        if pod.metadata.deletion_timestamp.is_some() {
            let delay = stop_delay(&pod);
            if delay.is_zero() {
                return stop(&api, &pod).await;
            }
            self.after(&uid.clone(), "stop", delay, async move {
                if let Ok(pod) = api.get(&name).await
                    && pod.metadata.uid.as_deref() == Some(uid.as_str())
                    && let Err(e) = stop(&api, &pod).await
                {
                    tracing::warn!(pod = name, error = %e, "could not stop a simulated pod");
                }
            });
            return Ok(());
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
        let run_seconds: Option<u64> =
            pod.metadata.annotations.as_ref().and_then(|a| a.get(RUN_SECONDS_ANNOTATION)).and_then(|s| s.parse().ok());
        match phase {
            "Pending" => {
                let n = self.started[index].fetch_add(1, Ordering::Relaxed);
                let status = running_status(&pod, &node_ip(index), &pod_ip(index, n));
                patch_status(&api, &name, status).await?;
                if let Some(seconds) = run_seconds {
                    self.finish_later(api, name, uid, Duration::from_secs(seconds));
                }
            }
            "Running" => {
                if let Some(status) = readiness_report(&pod) {
                    patch_status(&api, &name, status).await?;
                }
                // After a restart of the simulator: wait out what is left of the run time.
                if let Some(seconds) = run_seconds {
                    let started = start_time(&pod);
                    let elapsed = started.map_or(0, |t| (chrono::Utc::now() - t).num_seconds().max(0) as u64);
                    self.finish_later(api, name, uid, Duration::from_secs(seconds.saturating_sub(elapsed)));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Marks the pod finished after `delay`, once per pod.
    fn finish_later(self: &Arc<Self>, api: Api<Pod>, name: String, uid: String, delay: Duration) {
        self.after(&uid.clone(), "finish", delay, async move {
            if let Ok(pod) = api.get(&name).await
                && pod.metadata.uid.as_deref() == Some(uid.as_str())
                && pod.metadata.deletion_timestamp.is_none()
                && let Err(e) = patch_status(&api, &name, finished_status(&pod)).await
            {
                tracing::warn!(pod = name, error = %e, "could not report a simulated pod's completion");
            }
        });
    }

    /// Runs `step` of the pod `uid` after `delay`, unless that step is already waiting.
    fn after(
        self: &Arc<Self>,
        uid: &str,
        step: &str,
        delay: Duration,
        work: impl Future<Output = ()> + Send + 'static,
    ) {
        let key = format!("{uid}/{step}");
        if !self.waiting.lock().unwrap().insert(key.clone()) {
            return;
        }
        let kubelet = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            work.await;
            kubelet.waiting.lock().unwrap().remove(&key);
        });
    }
}

/// How long the deleted pod's containers still run: what its stop-seconds annotation says,
/// within what is left of its grace period.
fn stop_delay(pod: &Pod) -> Duration {
    let annotations = pod.metadata.annotations.as_ref();
    let wanted: u64 =
        annotations.and_then(|a| a.get(STOP_SECONDS_ANNOTATION)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let grace_left = pod.metadata.deletion_timestamp.as_ref().map_or(0, |t| {
        let left = t.0.as_second() - chrono::Utc::now().timestamp();
        left.max(0) as u64
    });
    Duration::from_secs(wanted.min(grace_left))
}

/// Stops a deleted pod's containers and removes the pod. A pod that a finalizer keeps first
/// reports how its containers ended, as a kubelet does before the final deletion; one that
/// goes at once is not written twice.
async fn stop(api: &Api<Pod>, pod: &Pod) -> anyhow::Result<()> {
    let (name, uid) = (pod.metadata.name.clone().unwrap_or_default(), pod.metadata.uid.clone());
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let held = pod.metadata.finalizers.as_ref().is_some_and(|f| !f.is_empty());
    if held && !matches!(phase, Some("Succeeded" | "Failed")) {
        patch_status(api, &name, stopped_status(pod)).await?;
    }
    let preconditions = Preconditions { uid, resource_version: None };
    let params =
        DeleteParams { grace_period_seconds: Some(0), preconditions: Some(preconditions), ..Default::default() };
    match api.delete(&name, &params).await {
        Ok(_) => Ok(()),
        // Already gone, or another pod by that name now.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn patch_status(api: &Api<Pod>, name: &str, status: Value) -> Result<(), kube::Error> {
    match api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

fn condition(type_: &str, status: &str, reason: Option<&str>, now: &str) -> Value {
    let mut c = json!({"type": type_, "status": status, "lastProbeTime": null, "lastTransitionTime": now});
    if let Some(reason) = reason {
        c["reason"] = json!(reason);
    }
    c
}

fn containers(pod: &Pod, init: bool) -> Vec<(String, String)> {
    let spec = pod.spec.as_ref();
    let list = if init { spec.and_then(|s| s.init_containers.as_ref()) } else { spec.map(|s| &s.containers) };
    list.into_iter().flatten().map(|c| (c.name.clone(), c.image.clone().unwrap_or_default())).collect()
}

fn container_status(pod: &Pod, name: &str, image: &str, ready: bool, state: Value) -> Value {
    let uid = pod.metadata.uid.as_deref().unwrap_or("");
    json!({"name": name, "image": image, "imageID": format!("sim://{image}"),
           "containerID": format!("sim://{uid}/{name}"), "ready": ready, "started": state.get("running").is_some(),
           "restartCount": 0, "state": state})
}

fn running_status(pod: &Pod, host_ip: &str, ip: &str) -> Value {
    let now = now();
    let done = json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}});
    let running = json!({"running": {"startedAt": now}});
    let init: Vec<Value> =
        containers(pod, true).iter().map(|(n, i)| container_status(pod, n, i, false, done.clone())).collect();
    let ready = probes_pass(pod);
    let main: Vec<Value> =
        containers(pod, false).iter().map(|(n, i)| container_status(pod, n, i, ready, running.clone())).collect();
    let mut status = json!({
        "phase": "Running",
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "podIP": ip, "podIPs": [{"ip": ip}],
        "startTime": now,
        "conditions": [
            condition("PodReadyToStartContainers", "True", None, &now),
            condition("Initialized", "True", None, &now),
            readiness_condition(pod, "Ready", ready, &now),
            readiness_condition(pod, "ContainersReady", ready, &now),
            condition("PodScheduled", "True", None, &now),
        ],
        "containerStatuses": main,
    });
    if !init.is_empty() {
        status["initContainerStatuses"] = json!(init);
    }
    status
}

/// Whether the pod's containers pass their (simulated) readiness probes.
fn probes_pass(pod: &Pod) -> bool {
    pod.metadata.annotations.as_ref().and_then(|a| a.get(READY_ANNOTATION)).is_none_or(|v| v != "false")
}

/// The Ready or ContainersReady condition as a kubelet words it.
fn readiness_condition(pod: &Pod, type_: &str, ready: bool, now: &str) -> Value {
    if ready {
        return condition(type_, "True", None, now);
    }
    let unready: Vec<String> = containers(pod, false).into_iter().map(|(name, _)| name).collect();
    let mut c = condition(type_, "False", Some("ContainersNotReady"), now);
    c["message"] = json!(format!("containers with unready status: [{}]", unready.join(" ")));
    c
}

/// The status that reports a running pod's readiness, if the pod says otherwise.
fn readiness_report(pod: &Pod) -> Option<Value> {
    let ready = probes_pass(pod);
    let status = pod.status.as_ref()?;
    let conditions = status.conditions.as_ref()?;
    let reported = conditions.iter().find(|c| c.type_ == "Ready")?.status == "True";
    if reported == ready {
        return None;
    }
    let now = now();
    let mut conditions = serde_json::to_value(conditions).ok()?;
    for c in conditions.as_array_mut()?.iter_mut() {
        if c["type"] == "Ready" || c["type"] == "ContainersReady" {
            *c = readiness_condition(pod, c["type"].as_str().unwrap_or_default(), ready, &now);
        }
    }
    let mut containers = serde_json::to_value(status.container_statuses.as_ref()?).ok()?;
    for c in containers.as_array_mut()?.iter_mut() {
        c["ready"] = json!(ready);
    }
    Some(json!({"conditions": conditions, "containerStatuses": containers}))
}

/// Succeeded, or Failed with the containers' exit code from the exit-code annotation.
fn finished_status(pod: &Pod) -> Value {
    let now = now();
    let annotations = pod.metadata.annotations.as_ref();
    let code: i32 = annotations.and_then(|a| a.get(EXIT_CODE_ANNOTATION)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut status = terminal_status(pod, code, &now);
    status["conditions"] = json!([
        condition("PodReadyToStartContainers", "False", None, &now),
        condition("Initialized", "True", Some("PodCompleted"), &now),
        condition("Ready", "False", Some("PodCompleted"), &now),
        condition("ContainersReady", "False", Some("PodCompleted"), &now),
        condition("PodScheduled", "True", None, &now),
    ]);
    status
}

/// Failed, the containers stopped by the deletion; the pod's other conditions (a
/// DisruptionTarget, say) are kept.
fn stopped_status(pod: &Pod) -> Value {
    let now = now();
    let mut status = terminal_status(pod, STOPPED_EXIT_CODE, &now);
    let mut conditions: Vec<Value> = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| serde_json::to_value(c).ok())
        .filter(|c| !matches!(c["type"].as_str(), Some("Ready" | "ContainersReady")))
        .collect();
    conditions.push(condition("Ready", "False", Some("PodFailed"), &now));
    conditions.push(condition("ContainersReady", "False", Some("PodFailed"), &now));
    status["conditions"] = json!(conditions);
    status
}

/// The phase and container statuses of a pod whose containers ended with `code`.
fn terminal_status(pod: &Pod, code: i32, now: &str) -> Value {
    let started = start_time(pod).map_or(now.to_string(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let (phase, reason) = if code == 0 { ("Succeeded", "Completed") } else { ("Failed", "Error") };
    let done = json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now}});
    let main: Vec<Value> =
        containers(pod, false).iter().map(|(n, i)| container_status(pod, n, i, false, done.clone())).collect();
    json!({"phase": phase, "containerStatuses": main})
}
