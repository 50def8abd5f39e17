//! Watches: each store watch is one etcd watch stream, followed by a task that turns etcd's
//! events into the store's and resumes the etcd watch when its stream fails (a leader change, a
//! restart, a lost connection), so that the consumer sees one unbroken stream.
//!
//! The task keeps the first revision it has not delivered yet ([`Position`]). Every event and
//! progress notice moves it on, and a resumed etcd watch starts there, so nothing is delivered
//! twice or skipped. Only if that revision has been compacted meanwhile does the stream end, with
//! `Error::Compacted`, as a watch started there would have.
//!
//! etcd keeps the history a watch replays only down to its compacted revision, but it still
//! starts a watch at exactly that revision, whose events then lack the pairs they replaced. The
//! store refuses such a watch, so the start is checked first: history before it must be readable.
//!
//! Progress notices are etcd's answers to the progress requests sent on the stream, and its own
//! periodic notices. etcd before 3.4.25 and 3.5.8 can answer before the events an answer covers,
//! so an answer is delivered only while the watch is known to have caught up ([`Position`] says
//! when).

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{EventType, WatchOptions, WatchResponse};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::{Error, Event, EventKind, KeyValue, Result, WatchItem, WatchStream};

use super::errors::{backend, header_revision};
use super::history::History;
use super::keys::Mapped;
use super::members::Members;
use super::position::Position;

/// How long etcd may take to confirm a new watch.
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);
/// The first and the longest wait between attempts to resume a broken watch.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LONGEST_RETRY: Duration = Duration::from_secs(5);
/// The watch id of etcd's answers to progress requests (`clientv3.InvalidWatchID`): an answer is
/// for every watch of the stream. A notice with the watch's own id is a periodic one.
const ANSWER_WATCH_ID: i64 = -1;

/// What a watch needs from its store, shared with the task that follows it.
pub(super) struct Watcher {
    pub members: Arc<Members>,
    pub history: Arc<History>,
    /// Changes when the store asks every watch for a progress notice.
    pub progress_requests: watch::Receiver<()>,
}

/// Starts watching the keys under `prefix` from `from_revision` (0: from now on).
pub(super) async fn start(watcher: Watcher, prefix: Mapped, from_revision: i64) -> Result<WatchStream> {
    let first = if from_revision == 0 { None } else { Some(from_revision) };
    let (stream, created_at) = open(&watcher, &prefix, first).await?;
    let (items, receiver) = mpsc::unbounded_channel();
    let follower = Follower { watcher, prefix, position: Position::new(first, created_at), items };
    tokio::spawn(follower.run(stream));
    Ok(receiver)
}

/// Opens an etcd watch of the keys under `prefix` from `from` (or from now on), with the pairs
/// that events replace and etcd's periodic progress notices, and returns it once etcd confirms it,
/// with the revision it was created at.
async fn open(watcher: &Watcher, prefix: &Mapped, from: Option<i64>) -> Result<(etcd_client::WatchStream, i64)> {
    if let Some(from) = from.filter(|&from| from > 1)
        && !watcher.history.readable(from - 1).await?
    {
        return Err(Error::Compacted { requested: from, compacted: watcher.history.compacted().await? });
    }
    let options = WatchOptions::new()
        .with_range(prefix.prefix_end())
        .with_prev_key()
        .with_progress_notify()
        .with_start_revision(from.unwrap_or(0));
    let confirmed = async {
        let mut stream = watcher.members.watch(prefix.etcd(), &options).await.map_err(backend)?;
        let response = stream.message().await.map_err(backend)?;
        match response {
            Some(response) if response.canceled() && response.compact_revision() > 0 => {
                Err(Error::Compacted { requested: from.unwrap_or(0), compacted: response.compact_revision() })
            }
            Some(response) if response.created() && !response.canceled() => {
                Ok((stream, header_revision(response.header())?))
            }
            Some(response) => Err(Error::Backend(format!("etcd refused the watch: {}", response.cancel_reason()))),
            None => Err(Error::Backend("etcd closed the watch stream before creating the watch".to_owned())),
        }
    };
    tokio::time::timeout(CREATE_TIMEOUT, confirmed)
        .await
        .unwrap_or_else(|_| Err(Error::Backend(format!("etcd did not create a watch within {CREATE_TIMEOUT:?}"))))
}

/// Why a followed etcd stream stopped.
enum Stop {
    /// The consumer dropped its stream, or the store is gone: the watch is over.
    Done,
    /// The stream failed or ended; the watch goes on on a new one.
    Broken(Error),
    /// The watch cannot go on; the consumer is told why.
    Failed(Error),
}

/// The task behind one store watch.
struct Follower {
    watcher: Watcher,
    prefix: Mapped,
    position: Position,
    items: mpsc::UnboundedSender<Result<WatchItem>>,
}

impl Follower {
    async fn run(mut self, mut stream: etcd_client::WatchStream) {
        loop {
            let broken = match self.follow(&mut stream).await {
                Stop::Done => return,
                Stop::Failed(e) => return self.fail(e),
                Stop::Broken(e) => e,
            };
            // Every watch breaks when its member goes: one line each would bury the log.
            debug!(error = %broken, revision = self.position.next(), "an etcd watch broke; resuming it");
            match self.resume().await {
                Ok(Some(resumed)) => stream = resumed,
                Ok(None) => return,
                Err(e) => return self.fail(e),
            }
        }
    }

    /// Delivers what `stream` sends and passes progress requests to it, until either stops.
    async fn follow(&mut self, stream: &mut etcd_client::WatchStream) -> Stop {
        loop {
            tokio::select! {
                _ = self.items.closed() => return Stop::Done,
                requested = self.watcher.progress_requests.changed() => {
                    if requested.is_err() {
                        return Stop::Done;
                    }
                    if let Err(e) = stream.request_progress().await {
                        return Stop::Broken(backend(e));
                    }
                }
                message = stream.message() => {
                    let stop = match message {
                        Ok(Some(response)) => self.deliver(response),
                        Ok(None) => Some(Stop::Broken(Error::Backend("etcd closed the watch stream".to_owned()))),
                        Err(e) => Some(Stop::Broken(backend(e))),
                    };
                    if let Some(stop) = stop {
                        return stop;
                    }
                }
            }
        }
    }

    /// Delivers one response's events, or its progress notice if it has none.
    fn deliver(&mut self, response: WatchResponse) -> Option<Stop> {
        if response.canceled() {
            let compacted = response.compact_revision();
            return Some(if compacted > 0 {
                Stop::Failed(Error::Compacted { requested: self.position.next(), compacted })
            } else {
                Stop::Broken(Error::Backend(format!("etcd canceled the watch: {}", response.cancel_reason())))
            });
        }
        if response.events().is_empty() {
            let revision = match header_revision(response.header()) {
                Ok(revision) => revision,
                Err(e) => return Some(Stop::Broken(e)),
            };
            let progress = if response.watch_id() == ANSWER_WATCH_ID {
                self.position.answered(revision)
            } else {
                self.position.notified(revision)
            };
            return progress.and_then(|revision| self.send(WatchItem::Progress(revision)));
        }
        for event in response.events() {
            let event = match convert(&self.prefix, event) {
                Ok(event) => event,
                Err(e) => return Some(Stop::Failed(e)),
            };
            self.position.delivered(event.revision());
            if let Some(stop) = self.send(WatchItem::Event(event)) {
                return Some(stop);
            }
        }
        None
    }

    fn send(&self, item: WatchItem) -> Option<Stop> {
        self.items.send(Ok(item)).err().map(|_| Stop::Done)
    }

    fn fail(self, e: Error) {
        debug!(error = %e, "an etcd watch ended");
        let _ = self.items.send(Err(e));
    }

    /// Opens the watch again from the first revision not delivered, waiting longer after each
    /// failure. `None` if the consumer went away meanwhile.
    async fn resume(&mut self) -> Result<Option<etcd_client::WatchStream>> {
        let mut wait = FIRST_RETRY;
        loop {
            tokio::select! {
                _ = self.items.closed() => return Ok(None),
                _ = tokio::time::sleep(wait) => {}
            }
            match open(&self.watcher, &self.prefix, Some(self.position.next())).await {
                Ok((stream, created_at)) => {
                    self.position.reopened(created_at);
                    return Ok(Some(stream));
                }
                Err(e @ Error::Compacted { .. }) => return Err(e),
                // Once the waits are at their longest, etcd has been out of reach for a while.
                Err(e) if wait == LONGEST_RETRY => warn!(error = %e, "cannot resume an etcd watch yet"),
                Err(e) => debug!(error = %e, "cannot resume an etcd watch yet"),
            }
            wait = (wait * 2).min(LONGEST_RETRY);
        }
    }
}

/// The store's event for one of etcd's. etcd sends a delete as the key with the delete's
/// revision and the pair before it; the store's delete is that pair with the delete's revision.
fn convert(prefix: &Mapped, event: &etcd_client::Event) -> Result<Event> {
    let kv = event.kv().ok_or_else(|| Error::Backend("etcd sent an event without a key".to_owned()))?;
    let prev = event.prev_kv().map(|prev| prefix.pair(prev.clone())).transpose()?;
    // etcd leaves out the replaced pair only if it was created by this event, or compacted.
    let replaced = || {
        Error::Backend(format!("etcd sent the change at revision {} without the pair it replaced", kv.mod_revision()))
    };
    match event.event_type() {
        EventType::Put if prev.is_none() && kv.version() > 1 => Err(replaced()),
        EventType::Put => Ok(Event { kind: EventKind::Put, kv: prefix.pair(kv.clone())?, prev }),
        EventType::Delete => {
            let prev = prev.ok_or_else(replaced)?;
            let deleted = KeyValue { mod_revision: kv.mod_revision(), ..prev.clone() };
            Ok(Event { kind: EventKind::Delete, kv: deleted, prev: Some(prev) })
        }
    }
}
