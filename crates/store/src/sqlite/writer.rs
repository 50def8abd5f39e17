//! The writer thread: the one owner of the write connection. It does group commit: it takes
//! a batch of queued write requests ([`BatchQueue`]), applies them all in one transaction,
//! commits (one fsync for the lot), publishes their events to the watch hub, and only then
//! answers them.

use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;
use tracing::{error, warn};

use crate::{Error, Event, Result};

use super::batch_queue::BatchQueue;
use super::hub::Hub;
use super::ops::{self, Op, Outcome};
use super::recent::{Latest, Recent};
use super::row::LogRow;
use super::schema::{META_REVISION, Revisions, write_meta};

/// The most writes one transaction takes, which bounds how long the first of them waits.
const MAX_BATCH: usize = 1024;

struct Request {
    op: Op,
    reply: oneshot::Sender<Result<Outcome>>,
}

/// The handle to the writer thread. Dropping it lets the thread finish what is queued and
/// waits for it, so the database is closed when the store is gone.
pub(super) struct Writer {
    queue: Arc<BatchQueue<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub fn spawn(conn: Connection, revisions: Revisions, hub: Arc<Hub>, recent: Arc<Recent>) -> Result<Self> {
        let queue = Arc::new(BatchQueue::new());
        let group_commit = GroupCommit { conn, revisions, hub, recent };
        let requests = queue.clone();
        let thread = std::thread::Builder::new()
            .name("store-writer".to_owned())
            .spawn(move || group_commit.run(&requests))
            .map_err(|e| Error::Backend(format!("cannot start the store writer thread: {e}")))?;
        Ok(Writer { queue, thread: Some(thread) })
    }

    /// Queues a write and waits until it is durable (or refused).
    pub async fn submit(&self, op: Op) -> Result<Outcome> {
        let stopped = || Error::Backend("the store writer thread has stopped".to_owned());
        let (reply, answer) = oneshot::channel();
        self.queue.push(Request { op, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.queue.close();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            error!("the store writer thread panicked");
        }
    }
}

/// A committed batch.
struct Committed {
    /// Each write's outcome, in the order of the batch.
    outcomes: Vec<Result<Outcome>>,
    events: Vec<Event>,
    /// The newest row each write left, oldest first.
    rows: Vec<LogRow>,
    revisions: Revisions,
}

struct GroupCommit {
    conn: Connection,
    /// As of the last commit.
    revisions: Revisions,
    hub: Arc<Hub>,
    recent: Arc<Recent>,
}

impl GroupCommit {
    fn run(mut self, requests: &BatchQueue<Request>) {
        // As many writes as the last batch had: as many callers as were writing then.
        let mut wanted = 1;
        while let Some(batch) = requests.next_batch(wanted, MAX_BATCH) {
            wanted = batch.len();
            self.commit(batch);
        }
    }

    fn commit(&mut self, batch: Vec<Request>) {
        let (ops, replies): (Vec<Op>, Vec<_>) = batch.into_iter().map(|request| (request.op, request.reply)).unzip();
        match self.apply(ops) {
            Ok(Committed { outcomes, events, rows, revisions }) => {
                self.revisions = revisions;
                // Before the events go out, so that whoever reads a key on seeing its event
                // reads what the event says or newer.
                self.recent.record(rows);
                self.hub.publish(revisions.current, &events);
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    // The caller may have given up waiting; the write stands all the same.
                    let _ = reply.send(outcome);
                }
            }
            Err(e) => {
                warn!(error = %e, writes = replies.len(), "a store transaction failed; its writes were rolled back");
                let message = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(Error::Backend(message.clone())));
                }
            }
        }
    }

    /// Applies a batch in one transaction and commits it. On a backend error nothing is kept.
    fn apply(&mut self, ops: Vec<Op>) -> Result<Committed> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut latest = Latest::new(&tx, &self.recent);
        let mut revisions = self.revisions;
        let mut outcomes = Vec::with_capacity(ops.len());
        let mut events = Vec::with_capacity(ops.len());
        for op in ops {
            match ops::apply(&tx, &mut latest, &mut revisions, op, &mut events) {
                Err(e @ Error::Backend(_)) => return Err(e),
                outcome => outcomes.push(outcome),
            }
        }
        let rows = latest.into_written().collect();
        if revisions.current != self.revisions.current {
            write_meta(&tx, META_REVISION, revisions.current)?;
        }
        tx.commit()?;
        Ok(Committed { outcomes, events, rows, revisions })
    }
}
