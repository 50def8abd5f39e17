//! Where `skiff server` keeps the cluster's state: the embedded SQLite store in its data
//! directory, or etcd (`--datastore-endpoint`, named as k3s names it), which several servers
//! can share.

use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use store::Store;

#[derive(Args, Debug)]
pub struct DatastoreArgs {
    /// Keep the cluster's state in etcd instead of the embedded store: its members' client
    /// URLs, comma-separated (https://10.0.0.1:2379,https://10.0.0.2:2379).
    #[arg(long, value_delimiter = ',')]
    pub datastore_endpoint: Vec<String>,
    /// The CA that signed the etcd members' certificates.
    #[arg(long, requires = "datastore_endpoint")]
    pub datastore_cafile: Option<PathBuf>,
    /// The client certificate to present to etcd (with --datastore-keyfile).
    #[arg(long, requires_all = ["datastore_endpoint", "datastore_keyfile"])]
    pub datastore_certfile: Option<PathBuf>,
    #[arg(long, requires_all = ["datastore_endpoint", "datastore_certfile"])]
    pub datastore_keyfile: Option<PathBuf>,
    /// Where in etcd the cluster's keys live, as kube-apiserver's --etcd-prefix.
    #[arg(long, default_value = "/registry", requires = "datastore_endpoint")]
    pub etcd_prefix: String,
    /// How much store history to keep for watches and paginated lists, in seconds. On etcd,
    /// the servers sharing it compact this often, each time up to what was current the time
    /// before (kube-apiserver's --etcd-compaction-interval).
    #[arg(long, default_value_t = 300)]
    pub history_seconds: u64,
}

/// Where the embedded store keeps its file in a data directory.
pub fn embedded_path(data_dir: &Path) -> PathBuf {
    data_dir.join("state.db")
}

impl DatastoreArgs {
    fn history(&self) -> Duration {
        Duration::from_secs(self.history_seconds)
    }

    /// The etcd the flags name, if any: its options, with compaction every `--history-seconds`.
    pub fn etcd(&self) -> anyhow::Result<Option<store::EtcdOptions>> {
        if self.datastore_endpoint.is_empty() {
            return Ok(None);
        }
        for endpoint in &self.datastore_endpoint {
            anyhow::ensure!(
                endpoint.starts_with("http://") || endpoint.starts_with("https://"),
                "--datastore-endpoint {endpoint:?} is not an etcd client URL (http:// or https://); \
                 without the flag, skiff keeps its state in its embedded store"
            );
        }
        Ok(Some(store::EtcdOptions {
            endpoints: self.datastore_endpoint.clone(),
            ca_file: self.datastore_cafile.clone(),
            cert_file: self.datastore_certfile.clone(),
            key_file: self.datastore_keyfile.clone(),
            prefix: self.etcd_prefix.clone(),
            compaction_interval: self.history(),
        }))
    }
}

/// Opens the store the flags name.
pub async fn open(args: &DatastoreArgs, data_dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    match args.etcd()? {
        Some(options) => open_etcd(options).await,
        None => {
            let options = store::SqliteOptions { history: args.history(), ..Default::default() };
            open_embedded(&embedded_path(data_dir), options)
        }
    }
}

pub async fn open_etcd(options: store::EtcdOptions) -> anyhow::Result<Arc<dyn Store>> {
    let store = store::EtcdStore::connect(options).await.context("opening the etcd datastore")?;
    Ok(store)
}

pub fn open_embedded(path: &Path, options: store::SqliteOptions) -> anyhow::Result<Arc<dyn Store>> {
    match store::SqliteStore::open(path, options) {
        Ok(store) => Ok(store),
        Err(e) if e.to_string().contains("is damaged") => Err(anyhow::anyhow!(
            "{e}: `skiff server --cluster-reset` sets the store aside and starts afresh, and with \
             --cluster-reset-restore-path SNAPSHOT restores a snapshot into the new one"
        )),
        Err(e) => Err(e).with_context(|| format!("opening the embedded store {}", path.display())),
    }
}
