//! The status the agent reports for a pod, in the kubelet's words: phase, conditions,
//! addresses and each container's state, last state, restart count and readiness.

use crate::pod_worker::Observed;
use crate::runs::{Run, history};
use k8s_openapi::api::core::v1::{Container, Pod};
use runtime::container::RunState;
use serde_json::{Value, json};
use std::path::Path;

/// The most of a termination message file that is reported, as the kubelet's limit.
const MESSAGE_LIMIT: u64 = 4096;
/// How much of the log stands in for an empty message under FallbackToLogsOnError: the
/// kubelet's last 80 lines, at most 2 KiB.
const FALLBACK_LOG_LINES: usize = 80;
const FALLBACK_LOG_BYTES: usize = 2048;

fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A time the API gave, written back as the API writes it.
fn api_time(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> String {
    serde_json::to_value(t).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

fn container_id(pod: &Pod, name: &str, attempt: u32) -> String {
    format!("skiff://{}-{name}-{attempt}", pod.metadata.uid.as_deref().unwrap_or(""))
}

/// What the container wrote to its termination message file; for a container that failed
/// with an empty one under FallbackToLogsOnError, the end of its log instead.
fn termination_message(pod_dir: &Path, c: &Container, run: &Run, exit_code: i32) -> String {
    use std::io::Read;
    let file = crate::container_config::termination_message_file(&run.dir);
    let mut text = String::new();
    if let Ok(f) = std::fs::File::open(file) {
        let _ = f.take(MESSAGE_LIMIT).read_to_string(&mut text);
    }
    if text.is_empty() && exit_code != 0 && c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError") {
        let log = runtime::paths::container_log(pod_dir, &c.name, run.attempt);
        text = runtime::cri_log::tail(&log, FALLBACK_LOG_LINES, FALLBACK_LOG_BYTES).unwrap_or_default();
    }
    text
}

/// A run's state as the API writes it.
fn state(pod: &Pod, pod_dir: &Path, c: &Container, run: &Run) -> Value {
    let name = &c.name;
    match &run.state {
        RunState::Running(s) => json!({"running": {"startedAt": time(&s.started_at)}}),
        RunState::Exited(e) => {
            let mut t = json!({"exitCode": e.exit_code, "reason": e.reason, "finishedAt": time(&e.finished_at),
                               "containerID": container_id(pod, name, run.attempt)});
            t["startedAt"] = e.started_at.as_ref().map_or(Value::Null, |s| json!(time(s)));
            let message = if e.message.is_empty() {
                termination_message(pod_dir, c, run, e.exit_code)
            } else {
                e.message.clone()
            };
            if !message.is_empty() {
                t["message"] = json!(message);
            }
            if let Some(signal) = e.signal {
                t["signal"] = json!(signal);
            }
            json!({"terminated": t})
        }
        RunState::Created => json!({"waiting": {"reason": "ContainerCreating"}}),
    }
}

fn container_status(pod: &Pod, pod_dir: &Path, c: &Container, observed: &Observed) -> Value {
    let h = history(pod_dir, &c.name);
    let image = c.image.clone().unwrap_or_default();
    let waiting = observed.waiting.get(&c.name);
    let running = h.latest.as_ref().is_some_and(Run::running);
    let current = match (waiting, &h.latest) {
        (Some(w), _) if !running => {
            let mut waiting = json!({"reason": w.reason});
            if !w.message.is_empty() {
                waiting["message"] = json!(w.message);
            }
            json!({"waiting": waiting})
        }
        (_, Some(run)) => state(pod, pod_dir, c, run),
        (_, None) => json!({"waiting": {"reason": "ContainerCreating"}}),
    };
    // A container waiting to restart reports its last run as its last state.
    let last = match (&h.latest, waiting) {
        (Some(run), Some(_)) if !running => Some(run),
        _ => h.previous.as_ref(),
    };
    let verdict = observed.verdicts.get(&c.name).copied().unwrap_or(crate::probes::Verdict {
        started: true,
        ready: true,
        ..Default::default()
    });
    let mut status = json!({
        "name": c.name,
        "image": image,
        "imageID": "",
        "ready": running && verdict.ready,
        "started": running && verdict.started,
        "restartCount": h.latest.as_ref().map_or(0, |r| r.attempt),
        "state": current,
        "lastState": last.map_or(json!({}), |r| state(pod, pod_dir, c, r)),
    });
    if let Some(run) = &h.latest {
        status["containerID"] = json!(container_id(pod, &c.name, run.attempt));
    }
    status
}

/// The phase Kubernetes gives a pod from its containers' runs.
fn phase(pod: &Pod, statuses: &[Value], observed: &Observed) -> &'static str {
    let policy = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()).unwrap_or("Always");
    if !observed.initialized {
        let init_failed = statuses.is_empty() && policy == "Never";
        return if init_failed { "Failed" } else { "Pending" };
    }
    let (mut waiting, mut running, mut failed) = (0, 0, 0);
    for s in statuses {
        let state = &s["state"];
        if state.get("running").is_some() {
            running += 1;
        } else if let Some(t) = state.get("terminated") {
            if t["exitCode"] != 0 {
                failed += 1;
            }
        } else if s["lastState"].get("terminated").is_some() {
            // Waiting to restart counts as running, as the kubelet counts it.
            running += 1;
        } else {
            waiting += 1;
        }
    }
    match () {
        _ if waiting > 0 => "Pending",
        _ if running > 0 => "Running",
        _ if failed > 0 && policy != "Always" => "Failed",
        _ if policy == "Always" => "Running",
        _ => "Succeeded",
    }
}

fn condition(pod: &Pod, type_: &str, ok: bool, reason: Option<&str>, message: Option<String>) -> Value {
    let status = if ok { "True" } else { "False" };
    // The transition time moves only when the condition's status does.
    let old =
        pod.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|cs| cs.iter().find(|c| c.type_ == type_));
    let since = match old {
        Some(c) if c.status == status => c.last_transition_time.as_ref().map(api_time),
        _ => None,
    }
    .unwrap_or_else(|| time(&chrono::Utc::now()));
    let mut c = json!({"type": type_, "status": status, "lastProbeTime": null, "lastTransitionTime": since});
    if let Some(reason) = reason {
        c["reason"] = json!(reason);
    }
    if let Some(message) = message {
        c["message"] = json!(message);
    }
    c
}

/// The pod's whole status from what the sync observed and the runs on disk.
pub fn build(pod: &Pod, pod_dir: &Path, observed: &Observed, host_ip: &str) -> Value {
    let spec = pod.spec.as_ref();
    let init: Vec<Value> = spec
        .into_iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .map(|c| container_status(pod, pod_dir, c, observed))
        .collect();
    let main: Vec<Value> =
        spec.into_iter().flat_map(|s| &s.containers).map(|c| container_status(pod, pod_dir, c, observed)).collect();
    let phase = if observed.deadline_exceeded { "Failed" } else { phase(pod, &main, observed) };
    let unready: Vec<&str> = main.iter().filter(|s| s["ready"] != true).filter_map(|s| s["name"].as_str()).collect();
    let done = matches!(phase, "Succeeded" | "Failed");
    let ready_reason = if done { Some("PodCompleted") } else { (!unready.is_empty()).then_some("ContainersNotReady") };
    let unready_message =
        (!unready.is_empty() && !done).then(|| format!("containers with unready status: [{}]", unready.join(" ")));
    let incomplete: Vec<&str> = init
        .iter()
        .filter(|s| s["state"]["terminated"]["exitCode"] != 0 && s["started"] != true)
        .filter_map(|s| s["name"].as_str())
        .collect();
    let mut conditions = vec![
        condition(pod, "PodReadyToStartContainers", observed.sandbox_ready && !done, None, None),
        condition(
            pod,
            "Initialized",
            observed.initialized,
            (!observed.initialized).then_some("ContainersNotInitialized"),
            (!observed.initialized).then(|| format!("containers with incomplete status: [{}]", incomplete.join(" "))),
        ),
        condition(
            pod,
            "Ready",
            unready.is_empty() && !done,
            ready_reason.filter(|_| !unready.is_empty() || done),
            unready_message.clone(),
        ),
        condition(
            pod,
            "ContainersReady",
            unready.is_empty() && !done,
            ready_reason.filter(|_| !unready.is_empty() || done),
            unready_message,
        ),
    ];
    // Conditions others own (PodScheduled, DisruptionTarget, readiness gates) are kept.
    let ours = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"];
    for c in pod.status.as_ref().and_then(|s| s.conditions.as_ref()).into_iter().flatten() {
        if !ours.contains(&c.type_.as_str()) {
            conditions.push(serde_json::to_value(c).unwrap_or_default());
        }
    }
    let start =
        pod.status.as_ref().and_then(|s| s.start_time.as_ref()).map_or_else(|| time(&chrono::Utc::now()), api_time);
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": start,
        "containerStatuses": main,
    });
    if let Some(ip) = &observed.pod_ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    if !init.is_empty() {
        status["initContainerStatuses"] = json!(init);
    }
    if observed.deadline_exceeded {
        status["reason"] = json!("DeadlineExceeded");
        status["message"] = json!("Pod was active on the node longer than the specified deadline");
    }
    status
}

/// Whether the pod already reports this status (so that nothing need be written).
pub fn same(pod: &Pod, status: &Value) -> bool {
    let Some(current) = pod.status.as_ref().and_then(|s| serde_json::to_value(s).ok()) else { return false };
    status.as_object().is_some_and(|fields| fields.iter().all(|(k, v)| equal(&current[k], v)))
}

/// Equal as the API returns it: conditions in any order.
fn equal(current: &Value, wanted: &Value) -> bool {
    match (current.as_array(), wanted.as_array()) {
        (Some(a), Some(b)) if a.len() == b.len() => b.iter().all(|w| a.iter().any(|c| equal(c, w))),
        (Some(_), Some(_)) => false,
        _ => match (current.as_object(), wanted.as_object()) {
            (Some(a), Some(b)) => {
                b.iter().all(|(k, v)| a.get(k).is_some_and(|c| equal(c, v)) || (v.is_null() && a.get(k).is_none()))
                    && a.keys().all(|k| b.contains_key(k))
            }
            _ => current == wanted,
        },
    }
}
