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

/// Opens the store the flags name.
pub async fn open(args: &DatastoreArgs, data_dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    let history = Duration::from_secs(args.history_seconds);
    if args.datastore_endpoint.is_empty() {
        let options = store::SqliteOptions { history, ..Default::default() };
        let store = store::SqliteStore::open(&data_dir.join("state.db"), options)
            .with_context(|| format!("opening the store in {}", data_dir.display()))?;
        return Ok(store);
    }
    for endpoint in &args.datastore_endpoint {
        anyhow::ensure!(
            endpoint.starts_with("http://") || endpoint.starts_with("https://"),
            "--datastore-endpoint {endpoint:?} is not an etcd client URL (http:// or https://); \
             without the flag, skiff keeps its state in its embedded store"
        );
    }
    let options = store::EtcdOptions {
        endpoints: args.datastore_endpoint.clone(),
        ca_file: args.datastore_cafile.clone(),
        cert_file: args.datastore_certfile.clone(),
        key_file: args.datastore_keyfile.clone(),
        prefix: args.etcd_prefix.clone(),
        compaction_interval: history,
    };
    let store = store::EtcdStore::connect(options).await.context("opening the etcd datastore")?;
    Ok(store)
}
