//! `skiff server --cluster-reset [--cluster-reset-restore-path SNAPSHOT]`, k3s's recovery flags.
//!
//! On the embedded store, the reset sets the store file aside (it is kept, renamed, for
//! inspection) and starts a fresh one past every revision clients may have seen, so that they list
//! again rather than wait (see `store::SqliteStore::reset`). With a snapshot, the fresh store is
//! then filled from it. On etcd, which has no local file to reset, the snapshot is written into
//! etcd. Then, as k3s does, the server stops and asks to be started without the flags, so that a
//! flag left in a unit file does not reset the cluster again at every start; and a reset cut short
//! is refused at the next start rather than serving half a cluster.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use store::{Snapshot, Store};
use tracing::{info, warn};

use crate::datastore::{self, DatastoreArgs};

#[derive(Args, Debug)]
pub struct ResetArgs {
    /// Set the embedded store aside and start a fresh one (when it is damaged, or with
    /// --cluster-reset-restore-path to go back to a snapshot), then stop. The old file is kept,
    /// renamed.
    #[arg(long)]
    pub cluster_reset: bool,
    /// Restore this snapshot (from `skiff etcd-snapshot save`) into the datastore, then stop.
    #[arg(long, requires = "cluster_reset")]
    pub cluster_reset_restore_path: Option<PathBuf>,
}

/// The file that says a reset began and has not finished.
fn unfinished_marker(data_dir: &Path) -> PathBuf {
    data_dir.join("cluster-reset-unfinished")
}

/// Refuses to serve a datastore whose reset was cut short.
pub fn refuse_unfinished(data_dir: &Path) -> anyhow::Result<()> {
    let marker = unfinished_marker(data_dir);
    anyhow::ensure!(
        !marker.exists(),
        "a --cluster-reset of this server did not finish ({} is there): run the same command again",
        marker.display()
    );
    Ok(())
}

/// Resets (and restores) the datastore the flags name.
pub async fn run(reset: &ResetArgs, args: &DatastoreArgs, data_dir: &Path) -> anyhow::Result<()> {
    let snapshot = reset.cluster_reset_restore_path.as_deref().map(read).transpose()?;
    let on_etcd = args.etcd()?.is_some();
    if on_etcd && snapshot.is_none() {
        anyhow::bail!(
            "--cluster-reset on etcd needs --cluster-reset-restore-path: etcd's own members are reset with etcd's tools"
        );
    }
    let marker = unfinished_marker(data_dir);
    std::fs::write(&marker, "").with_context(|| format!("writing {}", marker.display()))?;
    if !on_etcd {
        let path = datastore::embedded_path(data_dir);
        let at_least = snapshot.as_ref().map_or(0, |snapshot| snapshot.revision);
        let done =
            store::SqliteStore::reset(&path, at_least).with_context(|| format!("resetting {}", path.display()))?;
        match &done.set_aside {
            Some(old) => {
                info!(old = %old.display(), revision = done.revision, "set the old store aside and made a fresh one")
            }
            None => info!(revision = done.revision, "made a fresh store"),
        }
    }
    if let Some(snapshot) = &snapshot {
        let store = datastore::open(args, data_dir).await?;
        restore(snapshot, &*store).await?;
    }
    std::fs::remove_file(&marker).with_context(|| format!("removing {}", marker.display()))?;
    Ok(())
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
    let revision = store.current_revision().await?;
    if revision <= snapshot.revision {
        // A new etcd: clients that saw the old one's revisions would wait for them.
        warn!(
            revision,
            snapshot_revision = snapshot.revision,
            "the datastore's revision is not past the snapshot's: restart every client, or restore etcd with \
             `etcdutl snapshot restore --bump-revision --mark-compacted` instead"
        );
    }
    Ok(())
}
