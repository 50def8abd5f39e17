//! One pod on this node, from its sandbox to its deletion. Each sync looks at the pod as
//! the API has it and at its containers' runs on disk, and does the next thing due:
//! make the sandbox and volumes, run the init containers in order (sidecars stay running),
//! start the containers, restart those that end as the restartPolicy says (with
//! CrashLoopBackOff back-off), report the status, and on deletion stop everything within
//! the grace period and remove the pod.

use crate::pod_events::{NORMAL, WARNING};
use crate::runs::{History, Run, history};
use crate::{Agent, env, images, pod_events, pod_status, probes};
use anyhow::Context;
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use runtime::container::{self, RunState};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// CrashLoopBackOff's first delay and its cap, as the kubelet's.
const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// A run this long resets the back-off.
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// How often configMap and secret volumes are refreshed (Kubernetes promises within a
/// minute or so).
const VOLUME_REFRESH: Duration = Duration::from_secs(10);
/// How long a postStart hook may run.
const POST_START_LIMIT: Duration = Duration::from_secs(120);
/// How often a pod with running containers looks for their exit.
const POLL: Duration = Duration::from_millis(500);

/// Why a container is not running and will not start on this sync.
#[derive(Clone, Debug, PartialEq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// What one sync found, for the status report.
#[derive(Default)]
pub struct Observed {
    pub pod_ip: Option<String>,
    pub sandbox_ready: bool,
    /// Reasons containers wait, by name (those not here and not running wait to be created).
    pub waiting: BTreeMap<String, Waiting>,
    pub initialized: bool,
    /// What the probes of running containers say, by name.
    pub verdicts: BTreeMap<String, probes::Verdict>,
    /// The pod outlived its activeDeadlineSeconds: its containers were stopped and it fails.
    pub deadline_exceeded: bool,
}

pub struct Worker {
    agent: Arc<Agent>,
    uid: String,
    pod_dir: PathBuf,
    /// Failures to get an image or a config, by container, for their back-off.
    failures: BTreeMap<String, Failure>,
    probes: probes::Probes,
    /// When the configMap, secret and downwardAPI volumes were last written.
    volumes_refreshed: Option<tokio::time::Instant>,
    /// Containers a failed probe is stopping, by name and run, with when SIGKILL is due.
    stopping: BTreeMap<(String, u32), tokio::time::Instant>,
}

/// A container that could not be started, and when to try again.
struct Failure {
    count: u32,
    until: tokio::time::Instant,
    waiting: Waiting,
}

impl Failure {
    /// What the container shows while it waits to try again: a failed pull becomes
    /// ImagePullBackOff, as in Kubernetes; other reasons stay.
    fn backing_off(&self, container: &Container) -> Waiting {
        match self.waiting.reason.as_str() {
            "ErrImagePull" => Waiting {
                reason: "ImagePullBackOff".into(),
                message: format!(
                    "Back-off pulling image \"{}\": {}",
                    container.image.as_deref().unwrap_or(""),
                    self.waiting.message
                ),
            },
            _ => self.waiting.clone(),
        }
    }
}

/// When to sync again, or that the pod is gone from the node.
pub enum Next {
    After(Duration),
    Done,
}

impl Worker {
    pub fn new(agent: Arc<Agent>, uid: String) -> Worker {
        let pod_dir = runtime::paths::pod_dir(&agent.config.root, &uid);
        Worker {
            agent,
            uid,
            pod_dir,
            failures: BTreeMap::new(),
            probes: probes::Probes::default(),
            volumes_refreshed: None,
            stopping: BTreeMap::new(),
        }
    }

    /// Runs the pod's syncs: on each change of the pod, and when the last sync asked.
    pub async fn run(mut self, mut updates: tokio::sync::watch::Receiver<Option<Pod>>) {
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                changed = updates.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(wait) => {}
            }
            let pod = updates.borrow_and_update().clone();
            let next = match pod {
                Some(pod) if pod.metadata.deletion_timestamp.is_none() => self.sync(&pod).await,
                terminating => self.terminate(terminating.as_ref()).await,
            };
            match next {
                Ok(Next::After(after)) => wait = after,
                Ok(Next::Done) => {
                    self.agent.forget(&self.uid);
                    return;
                }
                Err(e) => {
                    tracing::warn!(pod = self.uid, error = format!("{e:#}"), "pod sync failed; retrying");
                    wait = Duration::from_secs(2);
                }
            }
        }
    }

    async fn sync(&mut self, api_pod: &Pod) -> anyhow::Result<Next> {
        let mut observed = Observed::default();
        let phase = api_pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            // A finished pod keeps its record until it is deleted; its containers are gone.
            return Ok(Next::After(Duration::from_secs(3600)));
        }
        let deadline = deadline_left(api_pod);
        if deadline.is_some_and(|left| left.is_zero()) {
            return self.exceed_deadline(api_pod).await;
        }
        let pod_ip = self.agent.ensure_sandbox(api_pod, &self.pod_dir).await?;
        // The containers' fieldRefs read the addresses before the status reports them.
        let pod = &with_addresses(api_pod, &pod_ip, &self.agent.config.node_ip.to_string());
        observed.pod_ip = Some(pod_ip);
        observed.sandbox_ready = true;
        if let Err(message) = self.prepare_volumes(pod).await {
            self.event(pod, WARNING, "FailedMount", message.clone());
            for c in all_containers(pod) {
                observed
                    .waiting
                    .insert(c.name.clone(), Waiting { reason: "ContainerCreating".into(), message: message.clone() });
            }
            self.report(api_pod, &observed).await?;
            return Ok(Next::After(Duration::from_secs(2)));
        }
        let spec = pod.spec.as_ref().context("the pod has no spec")?;
        let policy = spec.restart_policy.as_deref().unwrap_or("Always");
        let mut wake = deadline.unwrap_or(Duration::MAX).min(Duration::from_secs(60));
        let mut any_running = false;
        observed.initialized = true;
        for init in spec.init_containers.iter().flatten() {
            let sidecar = init.restart_policy.as_deref() == Some("Always");
            let history = history(&self.pod_dir, &init.name);
            let latest = history.latest.as_ref();
            let done = latest.is_some_and(|r| r.exit_code() == Some(0)) && !sidecar;
            if done {
                continue;
            }
            let restart = sidecar || policy != "Never";
            if let Some(after) = self.advance(pod, init, &history, restart, &mut observed).await? {
                wake = wake.min(after);
            }
            let now_running = self.probe(pod, init, &mut observed, &mut wake).await;
            any_running |= now_running;
            if sidecar && now_running {
                continue;
            }
            observed.initialized = false;
            break;
        }
        if observed.initialized {
            for c in &spec.containers {
                let history = history(&self.pod_dir, &c.name);
                let restart = match policy {
                    "Always" => true,
                    "OnFailure" => history.latest.as_ref().is_none_or(|r| r.exit_code() != Some(0)),
                    _ => false,
                };
                if let Some(after) = self.advance(pod, c, &history, restart, &mut observed).await? {
                    wake = wake.min(after);
                }
                any_running |= self.probe(pod, c, &mut observed, &mut wake).await;
            }
        } else {
            for c in &spec.containers {
                observed
                    .waiting
                    .insert(c.name.clone(), Waiting { reason: "PodInitializing".into(), message: String::new() });
            }
        }
        self.report(api_pod, &observed).await?;
        if any_running {
            wake = wake.min(POLL);
        }
        Ok(Next::After(wake))
    }

    /// Starts or restarts one container if it is due; returns when to look again if it is
    /// waiting for a back-off.
    async fn advance(
        &mut self,
        pod: &Pod,
        container: &Container,
        history: &History,
        restart: bool,
        observed: &mut Observed,
    ) -> anyhow::Result<Option<Duration>> {
        let attempt = match &history.latest {
            None => 0,
            Some(Run { state: RunState::Running(_), .. }) => return Ok(None),
            // A start that never finished (the shim failed, or the agent stopped midway) is
            // made again in the same run.
            Some(Run { attempt, state: RunState::Created, .. }) => *attempt,
            Some(_) if !restart => return Ok(None),
            Some(Run { attempt, state: RunState::Exited(exited), .. }) => {
                let lasted =
                    exited.started_at.map(|s| exited.finished_at - s).and_then(|d| d.to_std().ok()).unwrap_or_default();
                let delay = if lasted >= BACKOFF_RESET { BACKOFF_START } else { backoff(*attempt + 1) };
                let due = exited.finished_at + chrono::Duration::from_std(delay)?;
                let left = (due - chrono::Utc::now()).to_std().unwrap_or_default();
                if !left.is_zero() {
                    let (name, namespace) =
                        (pod.metadata.name.as_deref().unwrap_or(""), pod.metadata.namespace.as_deref().unwrap_or(""));
                    let message = format!(
                        "back-off {} restarting failed container={} pod={name}_{namespace}({})",
                        humanize(delay),
                        container.name,
                        self.uid
                    );
                    observed
                        .waiting
                        .insert(container.name.clone(), Waiting { reason: "CrashLoopBackOff".into(), message });
                    let event = format!(
                        "Back-off restarting failed container {} in pod {name}_{namespace}({})",
                        container.name, self.uid
                    );
                    self.event(pod, WARNING, "BackOff", event);
                    return Ok(Some(left));
                }
                attempt + 1
            }
        };
        if let Some(failure) = self.failures.get(&container.name)
            && tokio::time::Instant::now() < failure.until
        {
            let waiting = failure.backing_off(container);
            if waiting.reason == "ImagePullBackOff" {
                let image = container.image.as_deref().unwrap_or("");
                self.event(pod, NORMAL, "BackOff", format!("Back-off pulling image \"{image}\""));
                self.event(pod, WARNING, "Failed", "Error: ImagePullBackOff".into());
            }
            observed.waiting.insert(container.name.clone(), waiting);
            return Ok(Some(failure.until - tokio::time::Instant::now()));
        }
        match self.start(pod, container, attempt).await {
            Ok(()) => {
                self.failures.remove(&container.name);
                Ok(None)
            }
            Err(waiting) => {
                let error = if waiting.reason == "ErrImagePull" { &waiting.reason } else { &waiting.message };
                self.event(pod, WARNING, "Failed", format!("Error: {error}"));
                let count = self.failures.get(&container.name).map_or(0, |f| f.count) + 1;
                let delay = backoff(count);
                observed.waiting.insert(container.name.clone(), waiting.clone());
                self.failures.insert(
                    container.name.clone(),
                    Failure { count, until: tokio::time::Instant::now() + delay, waiting },
                );
                Ok(Some(delay))
            }
        }
    }

    /// Makes the pod's volumes, and fills (or, every VOLUME_REFRESH, refreshes) those whose
    /// files come from the API. Once containers have started, a failed refresh keeps the
    /// files they have and is only logged, as the kubelet does.
    async fn prepare_volumes(&mut self, pod: &Pod) -> Result<(), String> {
        tokio::task::block_in_place(|| crate::volumes::prepare(&self.pod_dir, pod)).map_err(|e| format!("{e:#}"))?;
        crate::claim_volumes::mount(&self.agent.client, &self.pod_dir, pod).await?;
        if self.volumes_refreshed.is_some_and(|at| at.elapsed() < VOLUME_REFRESH) {
            return Ok(());
        }
        match crate::api_volumes::write(&self.agent.client, &self.pod_dir, pod, &self.agent.allocatable).await {
            Ok(()) => {
                self.volumes_refreshed = Some(tokio::time::Instant::now());
                Ok(())
            }
            Err(message) if self.volumes_refreshed.is_some() => {
                tracing::warn!(pod = self.uid, message, "could not refresh the pod's volumes");
                Ok(())
            }
            Err(message) => Err(message),
        }
    }

    /// Runs a running container's probes that are due and acts on them: a failed liveness
    /// or startup probe stops the container (SIGTERM, then SIGKILL after the grace period),
    /// and the restart policy takes it from there. Returns whether the container runs.
    async fn probe(&mut self, pod: &Pod, container: &Container, observed: &mut Observed, wake: &mut Duration) -> bool {
        let Some(run) = history(&self.pod_dir, &container.name).latest else { return false };
        let RunState::Running(started) = &run.state else { return false };
        let key = (container.name.clone(), run.attempt);
        self.stopping.retain(|(name, attempt), _| name != &container.name || *attempt == run.attempt);
        if let Some(deadline) = self.stopping.get(&key) {
            if tokio::time::Instant::now() >= *deadline {
                let _ = container::signal(started, nix::sys::signal::Signal::SIGKILL);
            }
            return true;
        }
        let age = (chrono::Utc::now() - started.started_at).to_std().unwrap_or_default();
        let since = tokio::time::Instant::now().checked_sub(age).unwrap_or_else(tokio::time::Instant::now);
        let pod_ip = observed.pod_ip.clone().unwrap_or_default();
        let target =
            probes::Target { pod_ip: &pod_ip, shim_program: &self.agent.config.shim_program, run_dir: &run.dir };
        let client = &self.agent.client;
        let unhealthy = |kind: probes::Kind, why: String| {
            pod_events::record(client, pod, WARNING, "Unhealthy", format!("{kind:?} probe failed: {why}"));
        };
        let verdict = self.probes.check(container, run.attempt, since, &target, unhealthy).await;
        if let Some(kind) = verdict.kill {
            tracing::info!(
                pod = self.uid,
                container = container.name,
                "probe failed its threshold; restarting the container"
            );
            let probe = format!("{kind:?}").to_lowercase();
            let message = format!("Container {} failed {probe} probe, will be restarted", container.name);
            self.event(pod, NORMAL, "Killing", message);
            let grace = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30).max(0) as u64;
            let _ = container::signal(started, nix::sys::signal::Signal::SIGTERM);
            self.stopping.retain(|(name, _), _| name != &container.name);
            self.stopping.insert(key, tokio::time::Instant::now() + Duration::from_secs(grace));
        }
        if let Some(next) = verdict.next {
            *wake = (*wake).min(next.saturating_duration_since(tokio::time::Instant::now()));
        }
        observed.verdicts.insert(container.name.clone(), verdict);
        true
    }

    /// Starts run `attempt` of a container: its image, its environment, then the runtime.
    async fn start(&self, pod: &Pod, container: &Container, attempt: u32) -> Result<(), Waiting> {
        let image = images::ensure(&self.agent, pod, container)
            .await
            .map_err(|u| Waiting { reason: u.reason.into(), message: u.message })?;
        let config_error = |message: String| Waiting { reason: "CreateContainerConfigError".into(), message };
        crate::container_config::verify_run_as_non_root(pod, container, &image).map_err(config_error)?;
        let sources = self.agent.env_sources(pod, container).await.map_err(config_error)?;
        // Container runtimes give every container its pod's HOSTNAME; the image may override it.
        let hostname = crate::pod_files::hostname(pod, &self.agent.config.node_name);
        let base_env: Vec<String> =
            std::iter::once(format!("HOSTNAME={hostname}")).chain(image.config.env.iter().cloned()).collect();
        let env = env::build(pod, container, &base_env, &sources, &self.agent.allocatable).map_err(config_error)?;
        let layers = self.agent.images.layer_dirs(&image);
        let spec = crate::container_config::spec(pod, container, &image, layers, env, &self.pod_dir, attempt);
        let run_dir = runtime::paths::container_dir(&self.pod_dir, &container.name, attempt);
        let shim = self.agent.config.shim_program.clone();
        let started = tokio::task::block_in_place(|| -> anyhow::Result<RunState> {
            std::fs::create_dir_all(&run_dir)?;
            std::fs::File::create(crate::container_config::termination_message_file(&run_dir))?;
            container::start(&shim, &run_dir, &spec)
        });
        match started {
            Ok(state) => {
                tracing::info!(pod = self.uid, container = container.name, attempt, ?state, "container started");
                self.event(pod, NORMAL, "Created", format!("Created container: {}", container.name));
                if matches!(state, RunState::Running(_)) {
                    self.event(pod, NORMAL, "Started", format!("Started container {}", container.name));
                }
                if let (RunState::Running(started), Some(hook)) =
                    (&state, container.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()))
                {
                    let pod_ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default();
                    let target = probes::Target { pod_ip: &pod_ip, shim_program: &shim, run_dir: &run_dir };
                    if let Err(why) = crate::hooks::run(hook, container, &target, POST_START_LIMIT).await {
                        // As the kubelet does: the container is killed, and its restart
                        // policy decides what comes next.
                        tracing::warn!(pod = self.uid, container = container.name, why, "the postStart hook failed");
                        let _ = container::signal(started, nix::sys::signal::Signal::SIGKILL);
                    }
                }
                Ok(())
            }
            Err(e) => Err(Waiting { reason: "RunContainerError".into(), message: format!("{e:#}") }),
        }
    }

    /// Stops a pod that has run longer than its activeDeadlineSeconds (within its grace
    /// period, preStop hooks first) and reports it Failed with reason DeadlineExceeded.
    async fn exceed_deadline(&mut self, pod: &Pod) -> anyhow::Result<Next> {
        tracing::info!(pod = self.uid, "the pod passed its activeDeadlineSeconds; stopping it");
        self.event(
            pod,
            NORMAL,
            "DeadlineExceeded",
            "Pod was active on the node longer than the specified deadline".into(),
        );
        self.stopping_events(pod);
        let grace = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30).max(0) as u64;
        let pod_ip = crate::pod_files::address(&self.pod_dir);
        let shim = &self.agent.config.shim_program;
        stop_all(&self.pod_dir, Duration::from_secs(grace), Some(pod), shim, pod_ip.as_deref().unwrap_or("")).await;
        let observed = Observed { pod_ip, deadline_exceeded: true, initialized: true, ..Default::default() };
        self.report(pod, &observed).await?;
        Ok(Next::After(Duration::from_secs(3600)))
    }

    fn event(&self, pod: &Pod, type_: &'static str, reason: &'static str, message: String) {
        pod_events::record(&self.agent.client, pod, type_, reason, message);
    }

    /// `Killing` for each container about to be stopped with its pod.
    fn stopping_events(&self, pod: &Pod) {
        for (name, _, _) in running_runs(&self.pod_dir) {
            self.event(pod, NORMAL, "Killing", format!("Stopping container {name}"));
        }
    }

    async fn report(&self, pod: &Pod, observed: &Observed) -> anyhow::Result<()> {
        let status = pod_status::build(pod, &self.pod_dir, observed, &self.agent.config.node_ip.to_string());
        if pod_status::same(pod, &status) {
            return Ok(());
        }
        let api: Api<Pod> =
            Api::namespaced(self.agent.client.clone(), pod.metadata.namespace.as_deref().unwrap_or("default"));
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(serde_json::json!({"status": status})))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Stops the pod's containers within its grace period, removes its sandbox, and, if the
    /// API still has the pod, reports the containers' ends and deletes it for good.
    async fn terminate(&mut self, pod: Option<&Pod>) -> anyhow::Result<Next> {
        let grace = pod.map_or(Duration::ZERO, grace_left);
        let pod_ip = crate::pod_files::address(&self.pod_dir).unwrap_or_default();
        if let Some(pod) = pod {
            self.stopping_events(pod);
        }
        stop_all(&self.pod_dir, grace, pod, &self.agent.config.shim_program, &pod_ip).await;
        self.agent.remove_sandbox(&self.uid, &self.pod_dir).await?;
        let Some(pod) = pod else { return Ok(Next::Done) };
        let api: Api<Pod> =
            Api::namespaced(self.agent.client.clone(), pod.metadata.namespace.as_deref().unwrap_or("default"));
        let name = pod.metadata.name.clone().unwrap_or_default();
        let preconditions = Preconditions { uid: pod.metadata.uid.clone(), resource_version: None };
        let params =
            DeleteParams { grace_period_seconds: Some(0), preconditions: Some(preconditions), ..Default::default() };
        match api.delete(&name, &params).await {
            Ok(_) => Ok(Next::Done),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(Next::Done),
            Err(e) => Err(e.into()),
        }
    }
}

/// The pod with its own and its node's addresses in its status.
fn with_addresses(pod: &Pod, pod_ip: &str, host_ip: &str) -> Pod {
    use k8s_openapi::api::core::v1::{HostIP, PodIP};
    let mut pod = pod.clone();
    let status = pod.status.get_or_insert_with(Default::default);
    status.pod_ip = Some(pod_ip.to_string());
    status.pod_ips = Some(vec![PodIP { ip: pod_ip.to_string() }]);
    status.host_ip = Some(host_ip.to_string());
    status.host_ips = Some(vec![HostIP { ip: host_ip.to_string() }]);
    pod
}

/// Every container of the pod, init containers first.
pub fn all_containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    let spec = pod.spec.as_ref();
    spec.into_iter().flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers))
}

/// The back-off before the `n`th retry: 10 s doubling to 5 min.
fn backoff(n: u32) -> Duration {
    let doubled = BACKOFF_START.saturating_mul(1u32 << n.saturating_sub(1).min(16));
    doubled.min(BACKOFF_CAP)
}

/// A duration as the kubelet's messages write them: 10s, 1m20s, 5m0s.
fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 { format!("{s}s") } else { format!("{}m{}s", s / 60, s % 60) }
}

/// What is left of the pod's activeDeadlineSeconds, counted from its start time; `None`
/// for a pod without one (or not started yet).
fn deadline_left(pod: &Pod) -> Option<Duration> {
    let seconds = pod.spec.as_ref()?.active_deadline_seconds?;
    let started = pod.status.as_ref()?.start_time.as_ref()?.0.as_second();
    let left = started.saturating_add(seconds).saturating_sub(chrono::Utc::now().timestamp());
    Some(Duration::from_secs(left.max(0) as u64))
}

/// What is left of a deleted pod's grace period.
fn grace_left(pod: &Pod) -> Duration {
    pod.metadata.deletion_timestamp.as_ref().map_or(Duration::ZERO, |t| {
        Duration::from_secs(t.0.as_second().saturating_sub(chrono::Utc::now().timestamp()).max(0) as u64)
    })
}

/// Every container of the pod that is running, by name, with its run.
fn running_runs(pod_dir: &Path) -> Vec<(String, Run, container::Started)> {
    let Ok(names) = std::fs::read_dir(pod_dir.join("containers")) else { return Vec::new() };
    names
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|name| {
            let run = history(pod_dir, &name).latest?;
            match &run.state {
                RunState::Running(started) if container::shim_alive(started) => {
                    let started = started.clone();
                    Some((name, run, started))
                }
                _ => None,
            }
        })
        .collect()
}

/// Stops every running container of the pod: its preStop hook first (within the grace
/// period), then SIGTERM, then SIGKILL for those still running when the grace period is
/// over. Returns once all have ended.
pub async fn stop_all(pod_dir: &Path, grace: Duration, pod: Option<&Pod>, shim_program: &Path, pod_ip: &str) {
    use nix::sys::signal::Signal;
    let deadline = tokio::time::Instant::now() + grace;
    let running = running_runs(pod_dir);
    let hooks = running.iter().filter_map(|(name, run, _)| {
        let container = pod.and_then(|p| all_containers(p).find(|c| &c.name == name))?;
        let handler = container.lifecycle.as_ref()?.pre_stop.as_ref()?;
        Some(async move {
            let target = probes::Target { pod_ip, shim_program, run_dir: &run.dir };
            if let Err(why) = crate::hooks::run(handler, container, &target, grace).await {
                tracing::warn!(container = name, why, "the preStop hook failed");
            }
        })
    });
    futures::future::join_all(hooks).await;
    for (_, _, started) in &running {
        let _ = container::signal(started, Signal::SIGTERM);
    }
    let mut killed = false;
    loop {
        let running = running_runs(pod_dir);
        if running.is_empty() {
            return;
        }
        if !killed && tokio::time::Instant::now() >= deadline {
            for (_, _, started) in &running {
                let _ = container::signal(started, Signal::SIGKILL);
            }
            killed = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_from_ten_seconds_to_five_minutes() {
        let delays: Vec<u64> = (1..=7).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(humanize(Duration::from_secs(80)), "1m20s");
    }
}
