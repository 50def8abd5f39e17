//! The node agent: registers its node, runs the pods the scheduler binds to it through the
//! runtime, reports their status and serves their logs.
//!
//! It is an API client like any other: it watches the pods whose `spec.nodeName` is its
//! node and gives each a worker (`pod_worker.rs`) that drives the pod towards its spec.
//!
//! ```no_run
//! # async fn demo(client: kube::Client, config: kubelet::Config) -> anyhow::Result<()> {
//! kubelet::run(client, config).await
//! # }
//! ```

mod api_volumes;
mod atomic_writer;
mod claim_volumes;
mod container_config;
mod downward_api;
mod env;
mod hooks;
pub mod image_gc;
mod images;
mod node;
mod pod_access;
mod pod_events;
mod pod_files;
mod pod_network;
mod pod_status;
mod pod_worker;
mod pods;
mod probes;
mod projection;
mod runs;
pub mod server;
mod static_pods;
pub mod streaming;
mod volume_ownership;
mod volumes;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::Api;
use runtime::image::ImageStore;
use runtime::ipam::{Ipam, Subnet};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct Config {
    pub node_name: String,
    /// The node's address, which pods on the host's network and the API server reach it at.
    pub node_ip: IpAddr,
    /// The port of the kubelet API (logs), which the API server connects to.
    pub kubelet_port: u16,
    /// The agent's folder: images, pods, addresses.
    pub root: PathBuf,
    /// The program that runs as each container's shim (`<program> shim <folder>`): skiff.
    pub shim_program: PathBuf,
    /// The cluster CA, which the API server's client certificate is checked against.
    pub client_ca_pem: String,
    /// The Kubernetes version the node reports.
    pub kubelet_version: String,
    /// Where images are pulled from: mirrors, rewrites, credentials (k3s's registries.yaml).
    pub registries: runtime::registry::RegistriesConfig,
    /// The range of every pod address in the cluster (the server's --cluster-cidr): pod
    /// traffic to anywhere else is masqueraded.
    pub cluster_cidr: String,
    /// Standard CNI plugins to make the pods' network with, instead of skiff's bridge.
    pub cni: Option<runtime::network::cni::Plugins>,
    /// The most processes a pod's containers may hold together (the kubelet's
    /// podPidsLimit); `None` for no limit.
    pub pod_max_pids: Option<i64>,
    /// The folder of static pod manifests, if the node runs any.
    pub pod_manifest_path: Option<PathBuf>,
    /// When unused images are removed to free the disk.
    pub image_gc: image_gc::Policy,
}

/// What the workers share.
pub struct Agent {
    client: kube::Client,
    config: Arc<Config>,
    images: ImageStore,
    /// Image pulls take turns (the kubelet's serializeImagePulls).
    pulls: tokio::sync::Mutex<()>,
    registries: runtime::registry::RegistriesConfig,
    ipam: Ipam,
    network: pod_network::PodNetwork,
    /// The node's allocatable resources, for resourceFieldRef limits that are not set.
    allocatable: BTreeMap<String, String>,
    /// Each pod's worker, by uid, fed the pod as the API has it (`None` once deleted).
    workers: Mutex<HashMap<String, tokio::sync::watch::Sender<Option<Pod>>>>,
    /// The static pods the node runs from its manifest folder, by uid.
    static_pods: Mutex<BTreeMap<String, Pod>>,
}

/// Registers the node and runs its pods until an error stops it.
pub async fn run(client: kube::Client, config: Config) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let images = ImageStore::open(&config.root.join("images"))?;
    node::register(&client, &config, images::node_images(&images)).await?;
    let (addr, _server) = server::serve(
        (IpAddr::from([0, 0, 0, 0]), config.kubelet_port).into(),
        &config.node_name,
        &[config.node_ip],
        &config.client_ca_pem,
        Arc::new(pod_access::NodePods { root: config.root.clone(), shim_program: config.shim_program.clone() }),
    )
    .await?;
    tracing::info!(%addr, "serving the kubelet API");
    let cidr = node::pod_cidr(&client, &config.node_name).await;
    let subnet: Subnet = cidr.parse()?;
    let network = pod_network::PodNetwork::start(&config, subnet.clone()).await?;
    let status = node::status(&config, images::node_images(&images));
    let allocatable = serde_json::from_value(status["status"]["allocatable"].clone()).unwrap_or_default();
    let agent = Arc::new(Agent {
        ipam: Ipam::open(&config.root.join("ipam"), subnet)?,
        network,
        images,
        pulls: tokio::sync::Mutex::new(()),
        registries: config.registries.clone(),
        allocatable,
        workers: Mutex::new(HashMap::new()),
        // Read before the pod watch starts, so that its first list does not take the static
        // pods left running on disk for pods the API has forgotten.
        static_pods: Mutex::new(
            config
                .pod_manifest_path
                .as_deref()
                .map(|dir| static_pods::read(dir, &config.node_name))
                .unwrap_or_default(),
        ),
        client: client.clone(),
        config: config.clone(),
    });
    tracing::info!(node = config.node_name, pod_cidr = cidr, "node agent ready");
    let beating = agent.clone();
    tokio::spawn(node::heartbeat(client, config.clone(), move || images::node_images(&beating.images)));
    tokio::spawn(image_gc::run(agent.images.clone(), config.root.join("pods"), config.image_gc.clone()));
    if let Some(dir) = config.pod_manifest_path.clone() {
        tokio::spawn(static_pods::run(agent.clone(), dir));
    }
    pods::watch(agent).await
}

impl Agent {
    /// Hands the pod to its worker, starting one for a pod new to the node.
    fn dispatch(self: &Arc<Self>, uid: &str, pod: Option<Pod>) {
        let mut workers = self.workers.lock().unwrap();
        if let Some(sender) = workers.get(uid) {
            sender.send_replace(pod);
            return;
        }
        let (sender, receiver) = tokio::sync::watch::channel(pod);
        // The worker's first sync runs at once, on the value it was made with.
        sender.send_modify(|_| {});
        workers.insert(uid.to_string(), sender);
        tokio::spawn(pod_worker::Worker::new(self.clone(), uid.to_string()).run(receiver));
    }

    /// Drops a worker whose pod is gone from the node.
    fn has_worker(&self, uid: &str) -> bool {
        self.workers.lock().unwrap().contains_key(uid)
    }

    fn forget(&self, uid: &str) {
        self.workers.lock().unwrap().remove(uid);
    }

    /// The pod's sandbox, made if it is not there yet: its namespaces, its network (address,
    /// hostPorts) and its /etc files. Returns the pod's IP.
    async fn ensure_sandbox(&self, pod: &Pod, pod_dir: &Path) -> anyhow::Result<String> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
        // Every sync asks; the address the sandbox got is kept in the pod's folder, so that
        // answering does not scan the address records of every pod on the node.
        if pod_files::ready(pod_dir) {
            return match pod_files::address(pod_dir) {
                Some(ip) => Ok(ip),
                None if host_network => Ok(self.config.node_ip.to_string()),
                None => Ok(self.ipam.allocate(&uid)?.to_string()),
            };
        }
        let hostname = pod_files::hostname(pod, &self.config.node_name);
        let host = runtime::sandbox::HostNamespaces {
            network: host_network,
            ipc: pod.spec.as_ref().and_then(|s| s.host_ipc).unwrap_or(false),
        };
        tokio::task::block_in_place(|| -> anyhow::Result<()> {
            runtime::sandbox::remove(pod_dir)?;
            std::fs::create_dir_all(pod_dir)?;
            // Who the pod is, for the kubelet API and for an agent that restarts.
            runtime::container::write_json_atomically(&pod_dir.join("pod.json"), pod)?;
            runtime::sandbox::create(pod_dir, &hostname, host)?;
            runtime::cgroup::create_pod(&uid, self.config.pod_max_pids)
        })?;
        let ip = if host_network {
            self.config.node_ip.to_string()
        } else {
            let netns = runtime::sandbox::ns_path(pod_dir, "net");
            self.network.attach(&self.ipam, pod, &netns).await?.to_string()
        };
        pod_files::write(pod_dir, pod, &hostname, &ip)?;
        Ok(ip)
    }

    /// Takes the pod's sandbox down: its network (veth, address, hostPorts), namespaces,
    /// volumes, cgroups and folder. Safe to repeat.
    async fn remove_sandbox(&self, uid: &str, pod_dir: &Path) -> anyhow::Result<()> {
        self.network.detach(&self.ipam, uid, pod_dir).await?;
        tokio::task::block_in_place(|| -> anyhow::Result<()> {
            runtime::sandbox::remove(pod_dir)?;
            volumes::release(pod_dir)?;
            runtime::cgroup::remove_pod(uid);
            match std::fs::remove_dir_all(pod_dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(anyhow::anyhow!("removing {}: {e}", pod_dir.display())),
            }
        })
    }

    /// The ConfigMaps and Secrets a container's environment reads; one that is missing is
    /// simply absent (the environment says whether that is an error).
    async fn env_sources(
        &self,
        pod: &Pod,
        container: &k8s_openapi::api::core::v1::Container,
    ) -> Result<env::Sources, String> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let (maps, secrets) = env::referenced(container);
        let mut sources = env::Sources::default();
        let config_maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        for name in maps {
            match config_maps.get_opt(&name).await {
                Ok(Some(cm)) => {
                    sources.config_maps.insert(name, cm.data.unwrap_or_default());
                }
                Ok(None) => {}
                Err(e) => return Err(format!("reading configmap {name:?}: {e}")),
            }
        }
        let secret_api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        for name in secrets {
            match secret_api.get_opt(&name).await {
                Ok(Some(secret)) => {
                    let data = secret
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()));
                    sources.secrets.insert(name, data.collect());
                }
                Ok(None) => {}
                Err(e) => return Err(format!("reading secret {name:?}: {e}")),
            }
        }
        Ok(sources)
    }
}
