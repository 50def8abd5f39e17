//! How far etcd's history reaches: its current revision and its compacted revision.
//!
//! etcd 3.4 reports its compacted revision nowhere cheap: a watch that starts below it learns it,
//! but only once etcd gets round to syncing that watch, and a watch that starts above it hears
//! nothing at all. A read below it, though, is refused at once. So the compacted revision is found
//! by reads: it is the oldest revision a read can still be served at. Compaction only moves
//! forward, so the last answer is a floor for the next, and one read usually confirms it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use etcd_client::GetOptions;

use crate::Result;

use super::errors::{Refusal, backend, header_revision, refusal};
use super::members::Members;

pub(super) struct History {
    members: Arc<Members>,
    /// The key the probing reads ask for; whether it exists does not matter.
    probe: Vec<u8>,
    /// A revision at or below the compacted revision (0 until one is known).
    floor: AtomicI64,
}

impl History {
    pub fn new(members: Arc<Members>, probe: Vec<u8>) -> Self {
        History { members, probe, floor: AtomicI64::new(0) }
    }

    /// The current revision: the header revision of a (linearizable) read.
    pub async fn current(&self) -> Result<i64> {
        let options = GetOptions::new().with_count_only();
        let response = self.members.get(&self.probe, options).await.map_err(backend)?;
        header_revision(response.header())
    }

    /// Whether history at `revision` is still there, that is, it is not below the compacted
    /// revision. A future revision has not been compacted either.
    pub async fn readable(&self, revision: i64) -> Result<bool> {
        let options = GetOptions::new().with_revision(revision).with_count_only();
        match self.members.get(&self.probe, options).await {
            Ok(_) => Ok(true),
            Err(e) => match refusal(&e) {
                Some(Refusal::Compacted) => Ok(false),
                Some(Refusal::FutureRevision) => Ok(true),
                None => Err(backend(e)),
            },
        }
    }

    /// The compacted revision (0 if nothing was compacted): the oldest readable revision, found
    /// by a binary search above the floor.
    pub async fn compacted(&self) -> Result<i64> {
        let current = self.current().await?;
        // A floor above the current revision means etcd was replaced by a younger one.
        let floor = Some(self.floor.load(Ordering::Relaxed)).filter(|&floor| floor <= current).unwrap_or(0);
        let first = floor.max(1);
        let mut oldest = first;
        if !self.readable(first).await? {
            // The oldest readable revision is in (first, current]; the current one always is.
            let (mut low, mut high) = (first + 1, current);
            while low < high {
                let middle = low + (high - low) / 2;
                if self.readable(middle).await? {
                    high = middle;
                } else {
                    low = middle + 1;
                }
            }
            oldest = low;
        }
        // Revision 1 holds no writes, so "readable from 1" means nothing was compacted, unless
        // a compaction at 1 is known.
        let compacted = if oldest == 1 { floor } else { oldest };
        // Stored, not maxed, so that the floor of a replaced etcd comes down. Every value stored
        // was the compacted revision at some point, so it never passes the current one.
        self.floor.store(compacted, Ordering::Relaxed);
        Ok(compacted)
    }

    /// Remembers a compacted revision learned otherwise (a compaction that succeeded).
    pub fn saw_compacted(&self, revision: i64) {
        self.floor.fetch_max(revision, Ordering::Relaxed);
    }
}
