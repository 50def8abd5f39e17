//! Container probes, as the kubelet runs them: startup, liveness and readiness, each with
//! its initialDelaySeconds, periodSeconds, timeoutSeconds, successThreshold and
//! failureThreshold. httpGet and tcpSocket probes are made from the node to the pod's
//! address, as are grpc probes (`grpc.rs`); exec probes run their command in the container.

mod grpc;

use k8s_openapi::api::core::v1::{Container, ExecAction, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

/// What the probes of one run of one container have found so far.
#[derive(Debug)]
struct Tally {
    successes: i32,
    failures: i32,
    /// The probe's verdict: passed its success threshold (and not since failed its failure
    /// threshold).
    passing: bool,
    next: Instant,
}

/// The probes of a pod's containers, by container, run and kind.
#[derive(Default)]
pub struct Probes {
    tallies: BTreeMap<(String, u32, Kind), Tally>,
}

/// Where a container's probes reach it: the pod's address, and for exec probes its run.
pub struct Target<'a> {
    pub pod_ip: &'a str,
    pub shim_program: &'a Path,
    pub run_dir: &'a Path,
}

/// What a container's probes say on this sync.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Verdict {
    /// The startup probe has passed (or there is none).
    pub started: bool,
    /// The readiness probe passes (or there is none), once started.
    pub ready: bool,
    /// The liveness or startup probe that has failed its threshold: the container is to be
    /// restarted.
    pub kill: Option<Kind>,
    /// When a probe is next due.
    pub next: Option<Instant>,
}

fn probe_of(container: &Container, kind: Kind) -> Option<&Probe> {
    match kind {
        Kind::Startup => container.startup_probe.as_ref(),
        Kind::Liveness => container.liveness_probe.as_ref(),
        Kind::Readiness => container.readiness_probe.as_ref(),
    }
}

fn seconds(value: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(value.unwrap_or(default).max(0) as u64)
}

impl Probes {
    /// Runs the probes of a running container that are due, and says what they found.
    /// `running_since` is when this run started (the initial delays count from it); each
    /// failed probe is told to `unhealthy`.
    pub async fn check(
        &mut self,
        container: &Container,
        attempt: u32,
        running_since: Instant,
        target: &Target<'_>,
        mut unhealthy: impl FnMut(Kind, String),
    ) -> Verdict {
        // Runs before this one are over: their tallies go.
        self.tallies.retain(|(name, run, _), _| name != &container.name || *run == attempt);
        let mut verdict = Verdict { started: true, ready: true, ..Default::default() };
        for kind in [Kind::Startup, Kind::Liveness, Kind::Readiness] {
            let Some(probe) = probe_of(container, kind) else { continue };
            // Liveness and readiness wait for the startup probe.
            if kind != Kind::Startup && !verdict.started {
                verdict.ready = false;
                continue;
            }
            let key = (container.name.clone(), attempt, kind);
            let tally = self.tallies.entry(key).or_insert_with(|| Tally {
                successes: 0,
                failures: 0,
                // Readiness starts failed; liveness starts passing.
                passing: kind == Kind::Liveness,
                next: running_since + seconds(probe.initial_delay_seconds, 0),
            });
            if Instant::now() >= tally.next {
                let outcome = run(probe, container, target).await;
                tally.next = Instant::now() + seconds(probe.period_seconds, 10).max(Duration::from_secs(1));
                match outcome {
                    Ok(()) => {
                        tally.successes += 1;
                        tally.failures = 0;
                        if tally.successes >= probe.success_threshold.unwrap_or(1) {
                            tally.passing = true;
                        }
                    }
                    Err(why) => {
                        tracing::info!(container = container.name, ?kind, why, "probe failed");
                        unhealthy(kind, why);
                        tally.failures += 1;
                        tally.successes = 0;
                        if tally.failures >= probe.failure_threshold.unwrap_or(3) {
                            tally.passing = false;
                        }
                    }
                }
            }
            verdict.next = Some(verdict.next.map_or(tally.next, |n| n.min(tally.next)));
            match kind {
                Kind::Startup => {
                    verdict.started = tally.passing;
                    if !tally.passing && tally.failures >= probe.failure_threshold.unwrap_or(3) {
                        verdict.kill = Some(kind);
                    }
                }
                Kind::Liveness if !tally.passing => verdict.kill = Some(kind),
                Kind::Liveness => {}
                Kind::Readiness => verdict.ready = tally.passing,
            }
        }
        verdict.ready &= verdict.started;
        verdict
    }
}

/// A probe's port: a number, or the name of one of the container's ports.
pub(crate) fn port(container: &Container, port: &IntOrString) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port {n}")),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| format!("port {name:?} is not one of the container's named ports")),
    }
}

/// One probe, within its timeout: Ok if it passed, else why not.
async fn run(probe: &Probe, container: &Container, target: &Target<'_>) -> Result<(), String> {
    let pod_ip = target.pod_ip;
    let timeout = seconds(probe.timeout_seconds, 1).max(Duration::from_secs(1));
    let attempt = async {
        if let Some(http) = &probe.http_get {
            let host = http.host.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| pod_ip.to_string());
            let port = port(container, &http.port)?;
            if http.scheme.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("HTTPS")) {
                return Err("HTTPS probes are not supported by this node yet".to_string());
            }
            let headers: Vec<(String, String)> =
                http.http_headers.iter().flatten().map(|h| (h.name.clone(), h.value.clone())).collect();
            return http_get(&host, port, http.path.as_deref().unwrap_or("/"), &headers).await;
        }
        if let Some(tcp) = &probe.tcp_socket {
            let host = tcp.host.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| pod_ip.to_string());
            let port = port(container, &tcp.port)?;
            return tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map(drop)
                .map_err(|e| format!("dial tcp {host}:{port}: {e}"));
        }
        if let Some(exec) = &probe.exec {
            return run_in_container(exec, target, timeout).await;
        }
        if let Some(action) = &probe.grpc {
            let port = u16::try_from(action.port).map_err(|_| format!("invalid port {}", action.port))?;
            return grpc::check(pod_ip, port, action.service.as_deref().unwrap_or("")).await;
        }
        Err("the probe has no handler".to_string())
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("timed out after {}s", timeout.as_secs())),
    }
}

/// An exec handler (of a probe or a hook): its command in the container, passing with exit
/// code 0.
pub(crate) async fn run_in_container(exec: &ExecAction, target: &Target<'_>, timeout: Duration) -> Result<(), String> {
    let command = exec.command.clone().unwrap_or_default();
    let outcome = runtime::container::exec_in(target.shim_program, target.run_dir, &command, timeout)
        .await
        .map_err(|e| format!("{e:#}"))?;
    match outcome.exit_code {
        0 => Ok(()),
        code => Err(format!("command {command:?} exited with {code}: {}", outcome.output.trim())),
    }
}

/// A GET that passes with a status from 200 to 399, as the kubelet's HTTP probe.
pub(crate) async fn http_get(host: &str, port: u16, path: &str, headers: &[(String, String)]) -> Result<(), String> {
    use http_body_util::Empty;
    let stream =
        tokio::net::TcpStream::connect((host, port)).await.map_err(|e| format!("dial tcp {host}:{port}: {e}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let mut request = http::Request::get(path)
        .header(http::header::HOST, format!("{host}:{port}"))
        .header(http::header::USER_AGENT, "kube-probe/1.37");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request.body(Empty::<bytes::Bytes>::new()).map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    if (200..400).contains(&status) { Ok(()) } else { Err(format!("HTTP probe failed with statuscode: {status}")) }
}
