//! Background compaction, coordinated between every API server on one etcd the way
//! kube-apiserver does it, so that one of them compacts per interval however many there are.
//!
//! The key `compact_rev_key`, at the root of etcd's key space and so outside every server's
//! prefix, counts the rounds in its version. Every interval each server runs one transaction: if
//! the key's version is the one this server saw last round, it writes the revision it recorded
//! then and compacts at it; if not, another server won this round, and this one adopts the new
//! version. Either way it records the current revision for the next round. So history is kept for
//! at least one interval, and when the winner stops, another server takes over a round later.
//! Compaction is etcd-wide, which is why the key is shared by servers of any prefix (and with
//! kube-apiservers on the same etcd, which use the same key the same way).

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse, TxnResponse};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tracing::{debug, warn};

use crate::Result;

use super::errors::{Refusal, backend, header_revision, refusal};
use super::members::Members;

/// The coordination key, where kube-apiserver keeps it.
pub(super) const COMPACT_REV_KEY: &str = "compact_rev_key";

/// Compacts every `interval` until the returned task is aborted. `None` for a zero interval.
pub(super) fn spawn(members: Arc<Members>, interval: Duration) -> Option<JoinHandle<()>> {
    if interval.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The first tick is immediate; the first round is an interval after the start.
        ticks.tick().await;
        let mut round = Round::default();
        loop {
            ticks.tick().await;
            match play(&members, round).await {
                Ok(next) => round = next,
                Err(e) => warn!(error = %e, "etcd compaction failed; it will be retried"),
            }
        }
    }))
}

/// What this server knows between rounds: the key's version as it last saw it, and the revision
/// that was current then, which is what the next round's winner compacts at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Round {
    version: i64,
    revision: i64,
}

/// How this server's transaction went.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    /// The key still had the version this server saw: it now has the next one.
    Won { revision: i64 },
    /// Another server moved the key to `version` first.
    Lost { version: i64, revision: i64 },
}

impl Round {
    /// The next round's knowledge after `outcome`, and the revision to compact at now, if any.
    /// Nothing is compacted on the first win, when no revision has been recorded yet.
    fn after(self, outcome: Outcome) -> (Round, Option<i64>) {
        match outcome {
            Outcome::Won { revision } => {
                (Round { version: self.version + 1, revision }, Some(self.revision).filter(|&r| r > 0))
            }
            Outcome::Lost { version, revision } => (Round { version, revision }, None),
        }
    }
}

/// Plays one round: the transaction on the key, then the compaction if this server won.
async fn play(members: &Members, round: Round) -> Result<Round> {
    let txn = Txn::new()
        .when([Compare::version(COMPACT_REV_KEY, CompareOp::Equal, round.version)])
        .and_then([TxnOp::put(COMPACT_REV_KEY, round.revision.to_string(), None)])
        .or_else([TxnOp::get(COMPACT_REV_KEY, None)]);
    let response = members.txn(&txn).await.map_err(backend)?;
    let (next, compact_at) = round.after(outcome(&response)?);
    if let Some(revision) = compact_at {
        match members.compact(revision).await {
            Ok(_) => debug!(revision, "compacted etcd"),
            // Someone compacted further meanwhile, by hand perhaps: nothing is lost.
            Err(e) if refusal(&e) == Some(Refusal::Compacted) => {}
            Err(e) => return Err(backend(e)),
        }
    }
    Ok(next)
}

fn outcome(response: &TxnResponse) -> Result<Outcome> {
    let revision = header_revision(response.header())?;
    if response.succeeded() {
        return Ok(Outcome::Won { revision });
    }
    // The key can only be missing here if someone deleted it: its version is then 0.
    let version = match response.op_responses().pop() {
        Some(TxnOpResponse::Get(read)) => read.kvs().first().map_or(0, |kv| kv.version()),
        _ => 0,
    };
    Ok(Outcome::Lost { version, revision })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_win_only_records_a_revision() {
        let (next, compact_at) = Round::default().after(Outcome::Won { revision: 10 });
        assert_eq!(next, Round { version: 1, revision: 10 });
        assert_eq!(compact_at, None);
    }

    #[test]
    fn a_win_compacts_at_the_revision_recorded_a_round_before() {
        let round = Round { version: 1, revision: 10 };
        let (next, compact_at) = round.after(Outcome::Won { revision: 50 });
        assert_eq!(next, Round { version: 2, revision: 50 });
        assert_eq!(compact_at, Some(10));
    }

    #[test]
    fn a_loss_compacts_nothing_and_adopts_the_winners_version() {
        let round = Round { version: 1, revision: 10 };
        let (next, compact_at) = round.after(Outcome::Lost { version: 2, revision: 52 });
        assert_eq!(next, Round { version: 2, revision: 52 });
        assert_eq!(compact_at, None);
    }

    /// Two servers playing once per interval, `a` first, against a simulated key: one
    /// compaction per round at most, and `b` takes over while `a` is down (rounds 3 and 4).
    #[test]
    fn two_servers_compact_once_per_round_and_take_over_from_each_other() {
        let (mut a, mut b) = (Round::default(), Round::default());
        let mut key_version = 0;
        let mut revision = 100;
        let mut compactions = Vec::new();
        for round in 1..=5 {
            let a_up = !(3..=4).contains(&round);
            for (server, up) in [(&mut a, a_up), (&mut b, true)] {
                if !up {
                    continue;
                }
                revision += 1;
                let outcome = if server.version == key_version {
                    key_version += 1;
                    Outcome::Won { revision }
                } else {
                    Outcome::Lost { version: key_version, revision }
                };
                let (next, compact_at) = server.after(outcome);
                *server = next;
                compactions.extend(compact_at.map(|at| (round, at)));
            }
        }
        assert_eq!(key_version, 5, "the key moved more than once per round");
        // Round 2: `a` compacts at what it recorded in round 1. Rounds 3 and 4: `b`, which saw
        // `a`'s last win, takes over. Round 5: `a` is back, finds a version it never saw and
        // loses; `b` goes on.
        assert_eq!(compactions, [(2, 101), (3, 104), (4, 105), (5, 106)]);
    }
}
