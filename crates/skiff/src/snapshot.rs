//! `skiff etcd-snapshot save`, named as k3s names it: the whole cluster's state, read at one
//! revision from the embedded store or from etcd while servers run on it, in a file that
//! `skiff server --cluster-reset --cluster-reset-restore-path` restores onto either.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Args, Subcommand};
use store::Snapshot;

use crate::datastore::{self, DatastoreArgs};

#[derive(Subcommand, Debug)]
pub enum SnapshotCommand {
    /// Save the cluster's state to a file.
    Save(SaveArgs),
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// The server's data directory, where the embedded store is [default: as `skiff server`'s]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub datastore: DatastoreArgs,
    /// Where to write the snapshot [default: DATA_DIR/snapshots]
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The start of the snapshot's file name, which ends with the time it was taken.
    #[arg(long, default_value = "on-demand")]
    pub name: String,
}

pub async fn run(command: SnapshotCommand) -> anyhow::Result<()> {
    let SnapshotCommand::Save(args) = command;
    let data_dir = args.data_dir.clone().unwrap_or_else(crate::server::default_data_dir);
    let dir = args.dir.clone().unwrap_or_else(|| data_dir.join("snapshots"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let snapshot = match args.datastore.etcd()? {
        Some(options) => {
            // Only reading: compaction is the servers' business.
            let options = store::EtcdOptions { compaction_interval: Duration::ZERO, ..options };
            Snapshot::take(&*datastore::open_etcd(options).await?).await?
        }
        None => take_embedded(&datastore::embedded_path(&data_dir), &dir).await?,
    };
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
    let path = dir.join(format!("{}-{seconds}", args.name));
    write(&snapshot, &path).with_context(|| format!("writing {}", path.display()))?;
    println!("saved {}: {} objects at revision {}", path.display(), snapshot.pairs.len(), snapshot.revision);
    Ok(())
}

/// Writes the snapshot whole or not at all, readable by its owner only: it holds the cluster's
/// Secrets.
fn write(snapshot: &Snapshot, path: &Path) -> anyhow::Result<()> {
    let folder = path.parent().context("a snapshot path without a folder")?;
    let mut file = tempfile::NamedTempFile::new_in(folder)?;
    snapshot.write_to(&mut file)?;
    file.as_file().sync_all()?;
    // Two saves within a second would share a name: the second fails rather than replace.
    file.persist_noclobber(path)?;
    std::fs::File::open(folder)?.sync_all()?;
    Ok(())
}

/// Reads the embedded store through a consistent copy made in `scratch`, so that a running
/// server keeps its store to itself.
async fn take_embedded(path: &Path, scratch: &Path) -> anyhow::Result<Snapshot> {
    anyhow::ensure!(path.exists(), "there is no embedded store at {}: is --data-dir right?", path.display());
    let copy = tempfile::tempdir_in(scratch).context("making a scratch folder")?;
    let copy_path = copy.path().join("state.db");
    store::SqliteStore::copy(path, &copy_path).with_context(|| format!("copying {}", path.display()))?;
    let options = store::SqliteOptions { compaction_interval: Duration::ZERO, ..Default::default() };
    let store = datastore::open_embedded(&copy_path, options)?;
    Ok(Snapshot::take(&*store).await?)
}
