//! Leader election on a `coordination.k8s.io` Lease, as client-go does it: one holder at a
//! time renews the Lease every 2 s; another takes it over once the holder's record has
//! stayed unchanged for the lease duration, measured on the taker's own clock so that clock
//! skew between servers does not matter. Work runs only while leading and is stopped when
//! leadership is lost.
//!
//! The lease lasts 11 s rather than client-go's default 15 s, so that a dead holder is replaced
//! within 15 s: its last renewal was at most 2 s before it died, a taker sees it up to 2 s late,
//! and tries every 2 s. A holder that cannot renew stops its work after 8 s, before any taker
//! can start.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> anyhow::Result<()> {
//! let election = election::Election::new(client.clone(), "kube-system", "kube-scheduler", "server-a");
//! election.run(|| async { /* schedule */ Ok(()) }).await
//! # }
//! ```

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};
use std::future::Future;
use std::time::{Duration, Instant};

pub const LEASE_DURATION: Duration = Duration::from_secs(11);
const RENEW_DEADLINE: Duration = Duration::from_secs(8);
const RETRY_PERIOD: Duration = Duration::from_secs(2);

pub struct Election {
    api: Api<Lease>,
    name: String,
    identity: String,
}

/// The holder's record as last seen, and when it was first seen so.
struct Observed {
    record: Option<(String, Option<MicroTime>)>,
    since: Instant,
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

impl Election {
    pub fn new(client: kube::Client, namespace: &str, name: &str, identity: &str) -> Election {
        Election { api: Api::namespaced(client, namespace), name: name.to_string(), identity: identity.to_string() }
    }

    /// Takes the lease when free or expired, or renews it when held; true while leading.
    async fn try_acquire_or_renew(&self, observed: &mut Observed) -> kube::Result<bool> {
        let current = match self.api.get_opt(&self.name).await? {
            Some(lease) => lease,
            None => {
                let lease = Lease {
                    metadata: kube::api::ObjectMeta { name: Some(self.name.clone()), ..Default::default() },
                    spec: Some(self.spec(None)),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                    Err(e) => Err(e),
                };
            }
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let record = Some((holder.clone(), spec.renew_time.clone()));
        if observed.record != record {
            *observed = Observed { record, since: Instant::now() };
        }
        let duration = spec.lease_duration_seconds.map_or(LEASE_DURATION, |s| Duration::from_secs(s.max(1) as u64));
        let ours = holder == self.identity;
        if !ours && !holder.is_empty() && observed.since.elapsed() < duration {
            return Ok(false);
        }
        let mut lease = current;
        lease.spec = Some(self.spec(Some((&spec, ours))));
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The lease as this candidate writes it: renewed now, acquired now unless already ours.
    fn spec(&self, previous: Option<(&LeaseSpec, bool)>) -> LeaseSpec {
        let (acquired, transitions) = match previous {
            Some((spec, true)) => (spec.acquire_time.clone(), spec.lease_transitions.unwrap_or(0)),
            Some((spec, false)) => (Some(now()), spec.lease_transitions.unwrap_or(0) + 1),
            None => (Some(now()), 0),
        };
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: acquired,
            renew_time: Some(now()),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// Waits to lead, runs `work` while leading, and starts over when leadership is lost or
    /// the work ends with an error. Returns only if the work finishes successfully.
    pub async fn run<F, Fut>(&self, work: F) -> anyhow::Result<()>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let mut observed = Observed { record: None, since: Instant::now() };
        loop {
            match self.try_acquire_or_renew(&mut observed).await {
                Ok(true) => {}
                Ok(false) => {
                    tokio::time::sleep(RETRY_PERIOD).await;
                    continue;
                }
                Err(e) => {
                    tracing::debug!(lease = self.name, error = %e, "leader election");
                    tokio::time::sleep(RETRY_PERIOD).await;
                    continue;
                }
            }
            tracing::info!(lease = self.name, identity = self.identity, "became the leader");
            tokio::select! {
                result = work() => match result {
                    Ok(()) => return Ok(()),
                    Err(e) => tracing::error!(lease = self.name, error = %e, "stopped while leading; starting over"),
                },
                () = self.keep_leading(&mut observed) => {
                    tracing::warn!(lease = self.name, identity = self.identity, "lost the lease; stopping");
                }
            }
            tokio::time::sleep(RETRY_PERIOD).await;
        }
    }

    /// Renews every retry period; returns when no renewal succeeded for the renew deadline.
    async fn keep_leading(&self, observed: &mut Observed) {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(RETRY_PERIOD).await;
            match self.try_acquire_or_renew(observed).await {
                Ok(true) => renewed = Instant::now(),
                Ok(false) => return,
                Err(e) => tracing::debug!(lease = self.name, error = %e, "renewing the lease"),
            }
            if renewed.elapsed() > RENEW_DEADLINE {
                return;
            }
        }
    }
}
