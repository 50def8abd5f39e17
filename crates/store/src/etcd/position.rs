//! How far a watch has got, and whether etcd's progress notices for it can be believed.
//!
//! A progress notice says that every event up to its revision has been delivered. etcd answers a
//! progress request with its current revision. From 3.4.25 and 3.5.8 on it answers only once the
//! watch is synced (done replaying history), behind its events. Older versions (Debian 12 has
//! 3.4.23) answer at once, so the answer can overtake the events of a watch still replaying
//! history. An answer is therefore passed on only while the watch is known to be synced, which
//! holds on every version:
//!
//! - A watch that starts after the revision etcd was at when it created the watch has no history
//!   to replay.
//! - A watch that starts at or before that revision replays history up to it, and only then gets
//!   newer events, in revision order: an event newer than it shows the replay is done.
//! - etcd's own periodic notice (the `progress_notify` option, every
//!   `--experimental-watch-progress-notify-interval`, 10 minutes by default) goes only to a synced
//!   watch, behind its events, on every version. It is what shows a watch synced when its keys do
//!   not change.
//!
//! Dropping a notice is safe: progress is advisory, and the next request brings another. Before
//! the fix an answer can still overtake events in two narrow cases, which only a fixed etcd
//! closes: events of a synced watch that etcd has queued but not sent yet (it takes from its
//! queues of events and of answers in random order), and the end of a replay that more than a
//! thousand writes to the watched keys made longer (etcd replays at most 1000 revisions at once).

/// The first revision a watch has not delivered, and whether it is known to be synced.
#[derive(Debug)]
pub(super) struct Position {
    /// Every event before it was delivered.
    next: i64,
    /// The revision etcd was at when it created the current etcd watch: a watch that starts at or
    /// before it replays history up to it.
    created_at: i64,
    synced: bool,
}

impl Position {
    /// A watch that etcd created at `created_at`, from `first` (`None`: from then on).
    pub fn new(first: Option<i64>, created_at: i64) -> Position {
        let next = first.unwrap_or(created_at + 1);
        Position { next, created_at, synced: next > created_at }
    }

    /// Where a resumed etcd watch starts.
    pub fn next(&self) -> i64 {
        self.next
    }

    /// Notes that the etcd watch was opened again from `next`, and created at `created_at`.
    pub fn reopened(&mut self, created_at: i64) {
        *self = Position::new(Some(self.next), created_at);
    }

    /// Notes an event delivered at `revision`.
    pub fn delivered(&mut self, revision: i64) {
        // An event behind `next` is one that an answer overtook after all (see above): late, but
        // not to be lost.
        self.next = self.next.max(revision + 1);
        self.synced |= revision > self.created_at;
    }

    /// The progress to deliver for etcd's answer to a progress request, if any.
    pub fn answered(&mut self, revision: i64) -> Option<i64> {
        if self.synced { self.progress(revision) } else { None }
    }

    /// The progress to deliver for etcd's periodic notice to this watch, which shows it synced.
    pub fn notified(&mut self, revision: i64) -> Option<i64> {
        self.synced = true;
        self.progress(revision)
    }

    fn progress(&mut self, revision: i64) -> Option<i64> {
        if revision < self.next - 1 {
            return None; // Older than what was delivered: it says nothing new.
        }
        self.next = revision + 1;
        Some(revision)
    }
}

#[cfg(test)]
mod tests {
    use super::Position;

    #[test]
    fn a_watch_from_now_is_synced_at_once() {
        let mut position = Position::new(None, 10);
        assert_eq!(position.next(), 11);
        assert_eq!(position.answered(12), Some(12));
        assert_eq!(position.next(), 13);
    }

    #[test]
    fn a_watch_from_after_the_creation_is_synced_at_once() {
        assert_eq!(Position::new(Some(11), 10).answered(10), Some(10));
    }

    #[test]
    fn a_replaying_watch_is_synced_by_an_event_after_the_creation() {
        let mut position = Position::new(Some(5), 10);
        assert_eq!(position.answered(10), None, "an answer overtook the replay");
        position.delivered(7);
        position.delivered(10);
        assert_eq!(position.answered(12), None, "the replay may not be done after the event at 10");
        assert_eq!(position.next(), 11);
        position.delivered(11);
        assert_eq!(position.answered(12), Some(12));
    }

    #[test]
    fn a_replaying_watch_is_synced_by_a_periodic_notice() {
        let mut position = Position::new(Some(5), 10);
        assert_eq!(position.notified(10), Some(10));
        assert_eq!(position.answered(11), Some(11));
    }

    #[test]
    fn progress_never_goes_back() {
        let mut position = Position::new(None, 10);
        position.delivered(14);
        assert_eq!(position.answered(13), None);
        assert_eq!(position.notified(13), None);
        assert_eq!(position.answered(14), Some(14), "progress at the last event says it was delivered");
        assert_eq!(position.answered(20), Some(20));
        assert_eq!(position.answered(18), None);
    }

    #[test]
    fn a_resumed_watch_replays_again() {
        let mut position = Position::new(None, 10);
        position.delivered(12);
        position.reopened(15);
        assert_eq!(position.next(), 13);
        assert_eq!(position.answered(15), None, "the resumed watch replays 13 to 15 first");
        position.delivered(16);
        assert_eq!(position.answered(16), Some(16));
        // Nothing was written while the watch was down: there is nothing to replay.
        position.reopened(16);
        assert_eq!(position.answered(17), Some(17));
    }
}
