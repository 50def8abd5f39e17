//! etcd's errors as the store's. etcd refuses a read or a compaction outside its history with a
//! gRPC error whose message says why but not where the history ends, so the callers that can meet
//! one ([`EtcdStore::revision_error`]) look the bounds up to fill in `Error::Compacted` and
//! `Error::FutureRevision`. Every other error is an `Error::Backend` that names etcd.

use crate::Error;

use super::EtcdStore;

/// Why etcd refused a request at a revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    Compacted,
    FutureRevision,
}

/// Whether `e` is etcd refusing a revision outside its history.
pub(super) fn refusal(e: &etcd_client::Error) -> Option<Refusal> {
    match e {
        etcd_client::Error::GRpcStatus(status) => refusal_in(status.message()),
        _ => None,
    }
}

/// etcd's messages for revisions outside its history (`mvcc.ErrCompacted`, `mvcc.ErrFutureRev`).
fn refusal_in(message: &str) -> Option<Refusal> {
    if message.contains("required revision has been compacted") {
        Some(Refusal::Compacted)
    } else if message.contains("required revision is a future revision") {
        Some(Refusal::FutureRevision)
    } else {
        None
    }
}

/// An etcd error as a backend error, with what the client knows of its cause.
pub(super) fn backend(e: etcd_client::Error) -> Error {
    let message = match &e {
        etcd_client::Error::GRpcStatus(status) => {
            with_causes(format!("{} ({:?})", status.message(), status.code()), std::error::Error::source(status))
        }
        etcd_client::Error::TransportError(transport) => {
            with_causes(transport.to_string(), std::error::Error::source(transport))
        }
        other => other.to_string(),
    };
    Error::Backend(format!("etcd: {message}"))
}

/// The revision in the header of a response, which etcd always sends.
pub(super) fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> crate::Result<i64> {
    let header = header.ok_or_else(|| Error::Backend("etcd sent a response without a header".to_owned()))?;
    Ok(header.revision())
}

/// A message followed by the chain of errors that caused it, each after a colon. Layers often
/// repeat the message of the layer below; that is said once.
fn with_causes(mut line: String, mut cause: Option<&(dyn std::error::Error + 'static)>) -> String {
    while let Some(e) = cause {
        let message = e.to_string();
        if !line.contains(&message) {
            line.push_str(": ");
            line.push_str(&message);
        }
        cause = e.source();
    }
    line
}

impl EtcdStore {
    /// The store's error for `e`, the failure of a request at revision `requested`.
    pub(super) async fn revision_error(&self, e: etcd_client::Error, requested: i64) -> Error {
        let bound = match refusal(&e) {
            None => return backend(e),
            Some(Refusal::Compacted) => {
                self.history.compacted().await.map(|compacted| Error::Compacted { requested, compacted })
            }
            Some(Refusal::FutureRevision) => {
                self.history.current().await.map(|current| Error::FutureRevision { requested, current })
            }
        };
        bound.unwrap_or_else(|lookup| lookup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_by_etcds_messages() {
        let compacted = "etcdserver: mvcc: required revision has been compacted";
        assert_eq!(refusal_in(compacted), Some(Refusal::Compacted));
        let future = "etcdserver: mvcc: required revision is a future revision";
        assert_eq!(refusal_in(future), Some(Refusal::FutureRevision));
        assert_eq!(refusal_in("etcdserver: request timed out"), None);
    }
}
