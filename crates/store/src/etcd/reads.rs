//! Reads of one key and of the keys under a prefix, as etcd ranges.

use etcd_client::GetOptions;

use crate::{KeyValue, RangeRequest, RangeResult, Result};

use super::EtcdStore;
use super::errors::{backend, header_revision};
use super::keys::Mapped;
use super::members::Members;

pub(super) async fn get(members: &Members, key: &Mapped) -> Result<Option<KeyValue>> {
    let mut response = members.get(key.etcd(), GetOptions::new()).await.map_err(backend)?;
    response.take_kvs().pop().map(|pair| key.pair(pair)).transpose()
}

/// One page of the keys under a prefix: a range from the prefix (or from just after
/// `start_after`) to the end of the prefix.
pub(super) async fn range(store: &EtcdStore, request: RangeRequest) -> Result<RangeResult> {
    let prefix = store.keys.map(&request.prefix)?;
    let mut start = prefix.etcd().to_vec();
    if let Some(after) = &request.start_after {
        // The first key after `after` is `after` followed by the smallest byte.
        start = start.max([store.keys.map(after)?.etcd(), &[0]].concat());
    }
    let mut options = GetOptions::new().with_range(prefix.prefix_end()).with_revision(request.revision);
    if request.limit > 0 {
        options = options.with_limit(i64::try_from(request.limit).unwrap_or(i64::MAX));
    }
    let mut response = match store.members.get(&start, options).await {
        Ok(response) => response,
        Err(e) => return Err(store.revision_error(e, request.revision).await),
    };
    let revision = match request.revision {
        0 => header_revision(response.header())?,
        at => at,
    };
    // etcd's count is of every key in the range, this page's included.
    let count = usize::try_from(response.count()).unwrap_or(0);
    let more = response.more();
    let kvs = response.take_kvs().into_iter().map(|pair| prefix.pair(pair)).collect::<Result<Vec<_>>>()?;
    let remaining = request.count_remaining.then(|| count.saturating_sub(kvs.len()));
    Ok(RangeResult { kvs, revision, more, remaining })
}
