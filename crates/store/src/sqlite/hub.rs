//! The watch hub: fans committed events out to watches in process, without polling the
//! database. The writer publishes each commit here, under the lock and in revision order, so
//! the revision the hub holds is exactly the newest event every watch has been handed.
//!
//! A watch that starts in the past registers first and notes that revision; events published
//! while it reads its history from the database wait in its backlog, and go out after the
//! history. No event is missed or sent twice across that seam.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc::{self, UnboundedSender};

use crate::{Event, Result, WatchItem, WatchStream};

pub(super) struct Hub {
    state: Mutex<State>,
}

struct State {
    /// The newest published revision.
    revision: i64,
    next_id: u64,
    watchers: HashMap<u64, Watcher>,
}

struct Watcher {
    prefix: String,
    /// Events below this revision are not wanted (they are history, or before `from_revision`).
    from: i64,
    sender: UnboundedSender<Result<WatchItem>>,
    /// Items published while the watch's history is being read; `None` once it is live.
    backlog: Option<Vec<WatchItem>>,
}

impl Watcher {
    fn wants(&self, event: &Event) -> bool {
        event.revision() >= self.from && event.kv.key.starts_with(&self.prefix)
    }

    /// Hands over an item, or queues it behind the history. False once the stream is dropped.
    fn deliver(&mut self, item: WatchItem) -> bool {
        match &mut self.backlog {
            Some(backlog) => {
                backlog.push(item);
                !self.sender.is_closed()
            }
            None => self.sender.send(Ok(item)).is_ok(),
        }
    }
}

/// A watch just registered: its history is `from_revision..=revision`, to be sent on `sender`
/// before `Hub::go_live`.
pub(super) struct Registration {
    pub id: u64,
    pub revision: i64,
    pub sender: UnboundedSender<Result<WatchItem>>,
}

impl Hub {
    pub fn new(revision: i64) -> Self {
        Hub { state: Mutex::new(State { revision, next_id: 0, watchers: HashMap::new() }) }
    }

    /// The newest published (so committed) revision.
    pub fn revision(&self) -> i64 {
        self.lock().revision
    }

    /// Registers a watch of the keys under `prefix`. With `from_revision == 0` it is live at
    /// once; otherwise it gets the events after the returned revision only after `go_live`.
    pub fn register(&self, prefix: &str, from_revision: i64) -> (Registration, WatchStream) {
        let (sender, stream) = mpsc::unbounded_channel();
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        let revision = state.revision;
        let (from, backlog) = match from_revision {
            0 => (revision + 1, None),
            from => (from, Some(Vec::new())),
        };
        let watcher = Watcher { prefix: prefix.to_owned(), from, sender: sender.clone(), backlog };
        state.watchers.insert(id, watcher);
        (Registration { id, revision, sender }, stream)
    }

    /// Sends what a registered watch's backlog holds, and from now on every event as published.
    pub fn go_live(&self, id: u64) {
        let mut state = self.lock();
        let Some(watcher) = state.watchers.get_mut(&id) else {
            return;
        };
        let backlog = watcher.backlog.take().unwrap_or_default();
        let open = backlog.into_iter().all(|item| watcher.sender.send(Ok(item)).is_ok());
        if !open {
            state.watchers.remove(&id);
        }
    }

    pub fn remove(&self, id: u64) {
        self.lock().watchers.remove(&id);
    }

    /// Publishes the events of one commit, which brought the store to `revision`.
    pub fn publish(&self, revision: i64, events: &[Event]) {
        let mut state = self.lock();
        state.revision = revision;
        state.watchers.retain(|_, watcher| {
            !watcher.sender.is_closed()
                && events.iter().all(|event| !watcher.wants(event) || watcher.deliver(WatchItem::Event(event.clone())))
        });
    }

    /// Tells every watch it has been handed every event up to the newest published revision.
    pub fn request_progress(&self) {
        let mut state = self.lock();
        let revision = state.revision;
        state.watchers.retain(|_, watcher| watcher.deliver(WatchItem::Progress(revision)));
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventKind, KeyValue};

    fn put(key: &str, revision: i64) -> Event {
        let kv = KeyValue {
            key: key.to_owned(),
            value: Default::default(),
            create_revision: revision,
            mod_revision: revision,
        };
        Event { kind: EventKind::Put, kv, prev: None }
    }

    fn watcher_count(hub: &Hub) -> usize {
        hub.lock().watchers.len()
    }

    #[test]
    fn backlog_goes_out_after_history_and_before_live_events() {
        let hub = Hub::new(1);
        let (registration, mut stream) = hub.register("/a/", 1);
        hub.publish(2, &[put("/a/x", 2)]);
        hub.request_progress();
        registration.sender.send(Ok(WatchItem::Event(put("/a/h", 1)))).unwrap();
        hub.go_live(registration.id);
        hub.publish(3, &[put("/b/x", 3)]);
        hub.publish(4, &[put("/a/y", 4)]);
        let items: Vec<_> = std::iter::from_fn(|| stream.try_recv().ok()).collect();
        let expected = [
            WatchItem::Event(put("/a/h", 1)),
            WatchItem::Event(put("/a/x", 2)),
            WatchItem::Progress(2),
            WatchItem::Event(put("/a/y", 4)),
        ];
        assert_eq!(items.into_iter().collect::<Result<Vec<_>>>().unwrap(), expected);
    }

    #[test]
    fn dropped_streams_leave_the_hub() {
        let hub = Hub::new(1);
        let (_, live) = hub.register("/a/", 0);
        let (_, catching_up) = hub.register("/a/", 1);
        assert_eq!(watcher_count(&hub), 2);
        drop((live, catching_up));
        hub.publish(2, &[]);
        assert_eq!(watcher_count(&hub), 0);
    }
}
