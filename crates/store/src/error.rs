use crate::KeyValue;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("key already exists")]
    AlreadyExists,
    #[error("key not found")]
    NotFound,
    /// The guarded write lost a race: `current` is the pair as it is now.
    #[error("the object has been modified (mod revision is now {})", current.mod_revision)]
    Conflict { current: KeyValue },
    #[error("required revision {requested} has been compacted (compacted revision is {compacted})")]
    Compacted { requested: i64, compacted: i64 },
    #[error("required revision {requested} is a future revision (current revision is {current})")]
    FutureRevision { requested: i64, current: i64 },
    #[error("storage backend error: {0}")]
    Backend(String),
}
