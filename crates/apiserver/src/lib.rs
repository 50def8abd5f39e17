//! The Kubernetes API server: the only component that touches the store. Everything else
//! (scheduler, controllers, node agents, kubectl) reaches the cluster through it.

mod api;
mod authn;
mod authz;
mod bootstrap;
pub mod certs;
mod error;
mod handlers;
mod http_util;
mod inflight;
mod kubelet_client;
mod kubernetes_service;
mod limit_ranger;
mod loopback;
mod metrics;
mod mirror;
mod node_restriction;
mod objects;
mod openapi;
mod priority;
mod request_info;
mod resource_quota;
mod selectors;
mod server;
mod service_alloc;
mod stored_json;
mod table;
mod tls;
mod watch_cache;

pub use authn::{NODE_USER_PREFIX, TokenFile};
pub use handlers::ops::KUBERNETES_VERSION;
pub use http_util::Body;
pub use loopback::Loopback;
pub use stored_json::without_managed_fields;
pub use tls::SignaturesOnly;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use store::Store;

pub struct Config {
    pub listen: SocketAddr,
    /// The address and port the cluster reaches this server at: the `kubernetes` Service's
    /// endpoint, and what discovery tells clients.
    pub advertise: SocketAddr,
    pub ca_cert: PathBuf,
    /// The CA's key, which servers joining with the join token's password fetch.
    pub ca_key: PathBuf,
    /// The join token's password, which servers joining the cluster show (`handlers::join`).
    pub join_password: String,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub token_auth_file: Option<PathBuf>,
    pub service_cidr: String,
    /// The range pod addresses come from (one /24 per node), which joining nodes are told.
    pub cluster_cidr: String,
    /// The client certificate and key the server presents to kubelets (pods/log), signed by
    /// the cluster CA (kube-apiserver's --kubelet-client-certificate and -key).
    pub kubelet_client_cert: PathBuf,
    pub kubelet_client_key: PathBuf,
}

/// The address of the `kubernetes` Service in a service CIDR (its first usable address),
/// which the serving certificate must name for in-cluster clients.
pub fn kubernetes_service_ip(service_cidr: &str) -> anyhow::Result<String> {
    Ok(service_alloc::ServiceAllocator::new(service_cidr)?.first_ip())
}

/// How often open watches are told how far the store has got (for bookmarks and for
/// keeping the watch caches' windows current).
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Binds, bootstraps the cluster's built-in objects, and serves until the process ends.
/// Returns once the server is listening, with the task that serves.
/// A started API server: the task serving its port, and the way in for components in this
/// process.
pub struct Serving {
    pub task: tokio::task::JoinHandle<()>,
    pub loopback: Loopback,
}

pub async fn start(config: Config, store: Arc<dyn Store>) -> anyhow::Result<Serving> {
    let tls = tls::server_config(&config.ca_cert, &config.serving_cert, &config.serving_key)?;
    let tokens = match &config.token_auth_file {
        Some(path) => TokenFile::load(path)?,
        None => TokenFile::default(),
    };
    let registry = registry::Registry::builtin();
    let mirror = |plural: &str| {
        let info = registry.get("", "v1", plural).expect("a built-in resource");
        mirror::Mirror::new(store.clone(), objects::prefix(info, None))
    };
    let (quotas, limit_ranges) = (mirror("resourcequotas"), mirror("limitranges"));
    let api = Arc::new(api::Api {
        store: store.clone(),
        registry,
        caches: Default::default(),
        tokens,
        authorizer: Box::new(authz::BuiltinRoles),
        metrics: Default::default(),
        services: service_alloc::ServiceAllocator::new(&config.service_cidr)?,
        inflight: Default::default(),
        advertise: config.advertise.to_string(),
        openapi: Default::default(),
        discovery: Default::default(),
        priorities: Default::default(),
        quotas,
        limit_ranges,
        kubelet: kubelet_client::KubeletClient::new(&config.kubelet_client_cert, &config.kubelet_client_key)?,
        join: handlers::join::Join {
            ca_cert: config.ca_cert.clone(),
            ca_key: config.ca_key.clone(),
            password: config.join_password.clone(),
            cluster_cidr: config.cluster_cidr.clone(),
        },
    });
    bootstrap::run(&api, config.advertise).await?;
    api.priorities.start(api.store.clone()).await?;
    // Every resource's watch cache starts now, so that any client that lists from here on
    // resumes its watch from memory.
    for info in api.registry.all().iter().filter(|r| r.verbs == registry::Verbs::All) {
        api.caches.get(&api.store, &objects::prefix(info, None)).await?;
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {}: {e} (is another server running? choose --https-port)", config.listen)
    })?;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PROGRESS_INTERVAL);
        loop {
            tick.tick().await;
            if let Err(e) = store.request_progress().await {
                tracing::warn!(error = %e, "store progress request failed");
            }
        }
    });
    let loopback = Loopback::new(api.clone());
    Ok(Serving { task: tokio::spawn(server::serve(api, listener, tls)), loopback })
}
