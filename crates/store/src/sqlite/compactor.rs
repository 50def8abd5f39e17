//! Background compaction: every `compaction_interval`, compacts the store at the revision that
//! was current `history` ago, so watches and paginated lists can resume from any revision of the
//! last `history`, and the log stays bounded however often keys change.

use std::collections::VecDeque;
use std::sync::Weak;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, warn};

use crate::{Result, Store};

/// Starts compacting `store` in the background until it is dropped. A zero interval (or one too
/// long to schedule) disables it.
pub(super) fn spawn(runtime: &Handle, store: Weak<dyn Store>, revision: i64, interval: Duration, history: Duration) {
    let start = Instant::now();
    let Some(first_tick) = start.checked_add(interval).filter(|_| !interval.is_zero()) else {
        return;
    };
    let mut samples = RevisionSamples::default();
    samples.record(start, revision, history);
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval_at(first_tick, interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(store) = store.upgrade() else { return };
            if let Err(e) = compact_once(&*store, &mut samples, history).await {
                warn!(error = %e, "background compaction failed; it will be retried");
            }
        }
    });
}

async fn compact_once(store: &dyn Store, samples: &mut RevisionSamples, history: Duration) -> Result<()> {
    let now = Instant::now();
    samples.record(now, store.current_revision().await?, history);
    let Some(target) = now.checked_sub(history).and_then(|then| samples.revision_at(then)) else {
        return Ok(());
    };
    if target <= store.compacted_revision().await? {
        return Ok(());
    }
    store.compact(target).await?;
    debug!(revision = target, "compacted the store");
    Ok(())
}

/// The current revision sampled over time: which revision was current at some past moment.
/// It keeps one sample at or before `history` ago and the ones after, so it stays small.
#[derive(Default)]
struct RevisionSamples {
    samples: VecDeque<(Instant, i64)>,
}

impl RevisionSamples {
    fn record(&mut self, now: Instant, revision: i64, history: Duration) {
        self.samples.push_back((now, revision));
        if let Some(horizon) = now.checked_sub(history) {
            while self.samples.get(1).is_some_and(|&(at, _)| at <= horizon) {
                self.samples.pop_front();
            }
        }
    }

    /// The revision that was current at `moment`, if sampled that long ago.
    fn revision_at(&self, moment: Instant) -> Option<i64> {
        self.samples.iter().rev().find(|&&(at, _)| at <= moment).map(|&(_, revision)| revision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_tell_the_revision_current_history_ago_and_stay_few() {
        let history = Duration::from_secs(300);
        let minute = Duration::from_secs(60);
        let start = Instant::now();
        let mut samples = RevisionSamples::default();
        for i in 0..100u32 {
            samples.record(start + minute * i, i64::from(i) * 10, history);
        }
        let now = start + minute * 99;
        assert_eq!(samples.revision_at(now - history), Some(940));
        assert_eq!(samples.revision_at(now - history - Duration::from_secs(1)), None);
        assert_eq!(samples.samples.len(), 6);
    }

    #[test]
    fn nothing_is_compacted_before_history_has_passed() {
        let start = Instant::now();
        let mut samples = RevisionSamples::default();
        samples.record(start, 5, Duration::from_secs(300));
        assert_eq!(samples.revision_at(start - Duration::from_secs(1)), None);
        assert_eq!(samples.revision_at(start), Some(5));
    }
}
