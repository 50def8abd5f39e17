//! `skiff server --cluster-reset [--cluster-reset-restore-path SNAPSHOT]`, k3s's recovery flags.
//!
//! On the embedded store, the reset sets the store file aside (it is kept, renamed, for
//! inspection) and starts a fresh one past every revision clients may have seen, so that they list
//! again rather than wait (see `store::SqliteStore::reset`). With a snapshot, the fresh store is
//! then filled from it. On etcd, which has no local file to reset, the snapshot is written into
//! etcd: every server on it sees the change through its watches. The server then runs as usual.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use store::{Snapshot, Store};
use tracing::info;

use crate::datastore::{self, DatastoreArgs};

#[derive(Args, Debug)]
pub struct ResetArgs {
    /// Set the embedded store aside and start a fresh one (when it is damaged, or with
    /// --cluster-reset-restore-path to go back to a snapshot). The old file is kept, renamed.
    #[arg(long)]
    pub cluster_reset: bool,
    /// Restore this snapshot (from `skiff etcd-snapshot save`) into the datastore before serving.
    #[arg(long, requires = "cluster_reset")]
    pub cluster_reset_restore_path: Option<PathBuf>,
}

/// Opens the datastore, reset and restored first if the flags ask for it.
pub async fn open(reset: &ResetArgs, args: &DatastoreArgs, data_dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    if !reset.cluster_reset {
        return datastore::open(args, data_dir).await;
    }
    let snapshot = reset.cluster_reset_restore_path.as_deref().map(read).transpose()?;
    if args.etcd()?.is_some() {
        let snapshot = snapshot.context(
            "--cluster-reset on etcd needs --cluster-reset-restore-path: etcd's own members are reset with etcd's tools",
        )?;
        let store = datastore::open(args, data_dir).await?;
        restore(&snapshot, &*store).await?;
        return Ok(store);
    }
    let path = datastore::embedded_path(data_dir);
    let at_least = snapshot.as_ref().map_or(0, |snapshot| snapshot.revision);
    let done = store::SqliteStore::reset(&path, at_least).with_context(|| format!("resetting {}", path.display()))?;
    match &done.set_aside {
        Some(old) => {
            info!(old = %old.display(), revision = done.revision, "set the old store aside and started a fresh one")
        }
        None => info!(revision = done.revision, "started a fresh store"),
    }
    let store = datastore::open(args, data_dir).await?;
    if let Some(snapshot) = &snapshot {
        restore(snapshot, &*store).await?;
    }
    Ok(store)
}

fn read(path: &Path) -> anyhow::Result<Snapshot> {
    let file = std::fs::File::open(path).with_context(|| format!("opening the snapshot {}", path.display()))?;
    Snapshot::read_from(file).with_context(|| format!("reading the snapshot {}", path.display()))
}

async fn restore(snapshot: &Snapshot, store: &dyn Store) -> anyhow::Result<()> {
    let restored = snapshot.restore(store).await.context("restoring the snapshot")?;
    info!(
        snapshot_revision = snapshot.revision,
        created = restored.created,
        updated = restored.updated,
        deleted = restored.deleted,
        unchanged = restored.unchanged,
        "restored the snapshot"
    );
    Ok(())
}
