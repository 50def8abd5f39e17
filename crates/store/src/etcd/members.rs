//! The etcd members a store talks to, and moving to another when one cannot serve.
//!
//! The etcd client balances requests over all its endpoints, and keeps picking a member that is
//! down: each request routed there fails with "connection refused". So each member gets a client
//! of its own, requests go to one member at a time, and a request that member could not serve is
//! sent to the next one. A read or a watch is retried on any unavailability (a member restarting,
//! a leader changing: then first on the same member, once the election is over); a write only
//! when etcd cannot have begun it (the member was unreachable, or had no leader), so that no
//! write is applied twice. A member that fails is left for good,
//! until another fails in turn, as etcd's Go client pins one. A member that hangs without
//! closing its connections is noticed only by the requests' timeouts and the keep-alive pings
//! (`connect`), tens of seconds later.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use etcd_client::{
    Client, CompactionResponse, Error, GetOptions, GetResponse, StatusResponse, Txn, TxnResponse, WatchOptions,
    WatchStream,
};
use tracing::warn;

/// etcd's refusal of a request on a member without a leader (`rpctypes.ErrNoLeader`), which
/// clients started with `require_leader` get before etcd starts the request.
const NO_LEADER: &str = "etcdserver: no leader";
/// etcd's answer to a request a leader election interrupted (`rpctypes.ErrLeaderChanged`).
const LEADER_CHANGED: &str = "etcdserver: leader changed";
/// How long a request a leader election interrupted waits before it is tried again: etcd
/// elects a leader in about a second (its default election timeout).
const ELECTION_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

pub(super) struct Members {
    /// One client per member, in the order of the endpoints given.
    clients: Vec<Client>,
    endpoints: Vec<String>,
    /// The member requests go to first.
    current: AtomicUsize,
}

impl Members {
    /// `clients[i]` talks to `endpoints[i]`.
    pub fn new(clients: Vec<Client>, endpoints: Vec<String>) -> Self {
        assert!(!clients.is_empty() && clients.len() == endpoints.len(), "one client per etcd endpoint");
        Members { clients, endpoints, current: AtomicUsize::new(0) }
    }

    /// Runs `request` on the current member, and on each of the others in turn while the member
    /// tried fails in a way that, `elsewhere` says, another member may serve. The error is the
    /// last member's.
    async fn call<T, F, Fut>(&self, elsewhere: fn(&Error) -> bool, mut request: F) -> Result<T, Error>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let first = self.current.load(Ordering::Relaxed);
        let mut attempt = 0;
        let mut waited_for_leader = false;
        loop {
            let member = (first + attempt) % self.clients.len();
            match request(self.clients[member].clone()).await {
                // The member is well: the cluster elected a leader while it served the request.
                // Trying again there, once the election is over, beats leaving it for one that
                // may be the leader that died.
                Err(e) if !waited_for_leader && elsewhere(&e) && is_grpc_message(&e, LEADER_CHANGED) => {
                    waited_for_leader = true;
                    tokio::time::sleep(ELECTION_PAUSE).await;
                }
                Err(e) if attempt + 1 < self.clients.len() && elsewhere(&e) => {
                    // Concurrent requests that met the same failure move on only once.
                    let next = (member + 1) % self.clients.len();
                    if self.current.compare_exchange(member, next, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
                        let (from, to) = (&self.endpoints[member], &self.endpoints[next]);
                        warn!(error = %e, from, to, "moving to another etcd member");
                    }
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }
}

/// The requests the store makes, each run by [`Members::call`].
impl Members {
    pub async fn get(&self, key: &[u8], options: GetOptions) -> Result<GetResponse, Error> {
        self.call(unavailable, |client| {
            let (key, options) = (key.to_vec(), options.clone());
            async move { client.kv_client().get(key, Some(options)).await }
        })
        .await
    }

    pub async fn txn(&self, txn: &Txn) -> Result<TxnResponse, Error> {
        self.call(not_started, |client| {
            let txn = txn.clone();
            async move { client.kv_client().txn(txn).await }
        })
        .await
    }

    /// The status of the member that answers, with its etcd version.
    pub async fn status(&self) -> Result<StatusResponse, Error> {
        self.call(unavailable, |client| async move { client.maintenance_client().status().await }).await
    }

    /// Compacting twice at one revision is harmless, so a compaction moves on like a read.
    pub async fn compact(&self, revision: i64) -> Result<CompactionResponse, Error> {
        self.call(unavailable, |client| async move { client.kv_client().compact(revision, None).await }).await
    }

    pub async fn watch(&self, key: &[u8], options: &WatchOptions) -> Result<WatchStream, Error> {
        self.call(unavailable, |client| {
            let (key, options) = (key.to_vec(), options.clone());
            async move { client.watch_client().watch(key, Some(options)).await }
        })
        .await
    }
}

/// Whether the member could not serve a request that failed with `e`, which another may.
fn unavailable(e: &Error) -> bool {
    matches!(e, Error::GRpcStatus(status) if status.code() == tonic::Code::Unavailable)
}

fn is_grpc_message(e: &Error, message: &str) -> bool {
    matches!(e, Error::GRpcStatus(status) if status.message() == message)
}

/// Whether etcd did not start a request that failed with `e`, so that another member may serve
/// it: the member could not be reached (the error's causes include the transport's connect
/// error), or it has no leader.
fn not_started(e: &Error) -> bool {
    let Error::GRpcStatus(status) = e else { return false };
    if status.code() != tonic::Code::Unavailable {
        return false;
    }
    if is_grpc_message(e, NO_LEADER) {
        return true;
    }
    let mut cause = std::error::Error::source(status);
    while let Some(e) = cause {
        if e.downcast_ref::<tonic::ConnectError>().is_some() {
            return true;
        }
        cause = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_go_elsewhere_only_when_etcd_cannot_have_begun_them() {
        assert!(not_started(&Error::GRpcStatus(tonic::Status::unavailable(NO_LEADER))));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let connect = tonic::Status::from_error(Box::new(tonic::ConnectError(Box::new(refused))));
        assert_eq!(connect.code(), tonic::Code::Unavailable);
        assert!(not_started(&Error::GRpcStatus(connect)));
        // A request cut off mid-way, or a proposal overtaken by a new leader, may have been
        // carried out; a read of either goes elsewhere all the same.
        for maybe_done in ["error reading a body from connection", "etcdserver: leader changed"] {
            let e = Error::GRpcStatus(tonic::Status::unavailable(maybe_done));
            assert!(!not_started(&e) && unavailable(&e));
        }
        assert!(!not_started(&Error::GRpcStatus(tonic::Status::invalid_argument(NO_LEADER))));
        assert!(!unavailable(&Error::GRpcStatus(tonic::Status::invalid_argument("etcdserver: too many requests"))));
    }
}
