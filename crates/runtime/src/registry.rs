//! Pulling images from registries that speak the OCI distribution API (Docker Hub, GHCR,
//! Quay, Harbor, a `docker-registry` on the node's network...):
//!
//! - `hosts.rs`: where to pull from, by the node's registries.yaml (mirrors, rewrites, the
//!   credentials and TLS of each host);
//! - `credentials.rs`: the pod's imagePullSecrets, matched to the image as the kubelet does;
//! - `challenge.rs`, `client.rs`: requests to one endpoint, with its authentication;
//! - `pull.rs`: manifests, platforms, blobs verified as they download, into the store.
//!
//! ```no_run
//! # async fn demo(store: runtime::image::ImageStore) -> anyhow::Result<()> {
//! use runtime::registry::{Keyring, RegistriesConfig, pull};
//! let config = RegistriesConfig::load(std::path::Path::new("/etc/skiff/registries.yaml"))?;
//! let image = pull(&store, "busybox:1.36", &config, &Keyring::default()).await?;
//! println!("{} {:?}", image.id, image.repo_digests);
//! # Ok(()) }
//! ```

mod challenge;
mod client;
mod credentials;
mod hosts;
mod pull;

pub use credentials::{Credential, Keyring};
pub use hosts::RegistriesConfig;
pub use pull::pull;
