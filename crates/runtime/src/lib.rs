//! The container runtime: runs OCI images as Linux containers.
//!
//! Everything lives under one root folder (by default `<data-dir>/agent`):
//! ```text
//! images/                      content-addressed blobs and unpacked layers (image/)
//! pods/<uid>/                  one pod sandbox (paths.rs names every file in it)
//! ```
//! Containers run under a shim (the skiff binary re-executed, `shim.rs`) that outlives the
//! agent, so an agent restart leaves them running and adopts them again.

pub mod attach;
pub mod capabilities;
pub mod cgroup;
pub mod container;
pub mod cri_log;
pub mod dial;
pub mod enter;
pub mod image;
pub mod ipam;
pub mod masked_paths;
pub mod network;
pub mod paths;
pub mod registry;
pub mod rootfs;
pub mod sandbox;
pub mod seccomp;
pub mod seccomp_default;
pub mod security;
pub mod shim;
pub mod stdio;
