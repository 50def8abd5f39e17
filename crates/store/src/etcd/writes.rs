//! Writes as etcd transactions: each compares the key's revisions and writes only if they are as
//! the caller expects, or else reads the key to tell why not, in one round trip. The revision of
//! a write is the header revision of its transaction.

use bytes::Bytes;
use etcd_client::{Compare, CompareOp, DeleteOptions, Txn, TxnOp, TxnOpResponse, TxnResponse};

use crate::{Error, KeyValue, Result};

use super::errors::{backend, header_revision};
use super::keys::Mapped;
use super::members::Members;

/// Creates `key` if it has never been written or was deleted since.
pub(super) async fn create(members: &Members, key: &Mapped, value: Bytes) -> Result<i64> {
    let absent = Compare::create_revision(key.etcd(), CompareOp::Equal, 0);
    let txn = Txn::new().when([absent]).and_then([TxnOp::put(key.etcd(), Vec::from(value), None)]);
    let response = members.txn(&txn).await.map_err(backend)?;
    if !response.succeeded() {
        return Err(Error::AlreadyExists);
    }
    header_revision(response.header())
}

pub(super) async fn update(members: &Members, key: &Mapped, value: Bytes, expected_mod_revision: i64) -> Result<i64> {
    let put = TxnOp::put(key.etcd(), Vec::from(value), None);
    let response = guarded(members, key, Some(expected_mod_revision), put).await?;
    header_revision(response.header())
}

pub(super) async fn delete(
    members: &Members,
    key: &Mapped,
    expected_mod_revision: Option<i64>,
) -> Result<(i64, KeyValue)> {
    let delete = TxnOp::delete(key.etcd(), Some(DeleteOptions::new().with_prev_key()));
    let response = guarded(members, key, expected_mod_revision, delete).await?;
    let revision = header_revision(response.header())?;
    let deleted = match response.op_responses().pop() {
        Some(TxnOpResponse::Delete(mut deleted)) => deleted.take_prev_kvs().pop(),
        _ => None,
    };
    let deleted = deleted.ok_or_else(|| Error::Backend("etcd did not return the deleted pair".to_owned()))?;
    Ok((revision, key.pair(deleted)?))
}

/// Runs `write` if `key` exists and, when `expected_mod_revision` is given, was last written at
/// that revision. Otherwise reads the key: `Error::NotFound` if it is absent, `Error::Conflict`
/// with its current pair if not.
async fn guarded(
    members: &Members,
    key: &Mapped,
    expected_mod_revision: Option<i64>,
    write: TxnOp,
) -> Result<TxnResponse> {
    // The version check keeps an expected revision of 0 from matching an absent key.
    let exists = Compare::version(key.etcd(), CompareOp::Greater, 0);
    let unchanged = expected_mod_revision.map(|revision| Compare::mod_revision(key.etcd(), CompareOp::Equal, revision));
    let txn = Txn::new()
        .when([exists].into_iter().chain(unchanged).collect::<Vec<_>>())
        .and_then([write])
        .or_else([TxnOp::get(key.etcd(), None)]);
    let response = members.txn(&txn).await.map_err(backend)?;
    if response.succeeded() {
        return Ok(response);
    }
    let current = match response.op_responses().pop() {
        Some(TxnOpResponse::Get(mut read)) => read.take_kvs().pop(),
        _ => None,
    };
    match current {
        Some(current) => Err(Error::Conflict { current: key.pair(current)? }),
        None => Err(Error::NotFound),
    }
}
