use bytes::Bytes;
use tokio::sync::mpsc;

/// A key and its value, with the revisions of its creation and of its last change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    pub create_revision: i64,
    pub mod_revision: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A key was created (`prev` is `None`) or updated (`prev` is its former pair).
    Put,
    /// A key was deleted: `kv` is the pair as it was before, with `mod_revision` set to the
    /// revision of the delete; `prev` is the same pair with its original `mod_revision`.
    Delete,
}

/// One change to one key, or a progress notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub prev: Option<KeyValue>,
}

impl Event {
    pub fn revision(&self) -> i64 {
        self.kv.mod_revision
    }
}

/// What a watch delivers: events in revision order. `Progress(rev)` says that every event up
/// to `rev` has been delivered (the watch is caught up to that revision).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchItem {
    Event(Event),
    Progress(i64),
}

/// A stream of watch items. Dropping it cancels the watch.
pub type WatchStream = mpsc::UnboundedReceiver<crate::Result<WatchItem>>;

/// A range read: keys under `prefix`, strictly after `start_after` if given, as of `revision`
/// (0 means the current revision), at most `limit` of them (0 means no limit).
#[derive(Clone, Debug, Default)]
pub struct RangeRequest {
    pub prefix: String,
    pub start_after: Option<String>,
    pub revision: i64,
    pub limit: usize,
    /// Also count the keys after the page (etcd's count), which reads every one of them.
    pub count_remaining: bool,
}

#[derive(Clone, Debug, Default)]
pub struct RangeResult {
    pub kvs: Vec<KeyValue>,
    /// The revision the read was served at.
    pub revision: i64,
    /// True if more keys under the prefix follow the last one returned.
    pub more: bool,
    /// How many keys under the prefix follow the last one returned, if they were counted.
    pub remaining: Option<usize>,
}
