//! Where a pod's state lives on disk. Every part of the runtime and the agent finds a pod's
//! files through these functions, so the layout is written down once.
//!
//! ```text
//! pods/<uid>/pod.json                          who the pod is (namespace, name, uid)
//! pods/<uid>/ns/{net,ipc,uts}                  the sandbox's namespaces, bind-mounted
//! pods/<uid>/containers/<name>/<attempt>/      one run of a container: spec, pid, exit, rootfs
//! pods/<uid>/logs/<name>/<attempt>.log         its output, in the CRI log format
//! ```

use std::path::{Path, PathBuf};

/// The folder of one pod.
pub fn pod_dir(root: &Path, uid: &str) -> PathBuf {
    root.join("pods").join(uid)
}

/// The folder of one run (attempt) of a container; attempt is the container's restart count.
pub fn container_dir(pod_dir: &Path, container: &str, attempt: u32) -> PathBuf {
    pod_dir.join("containers").join(container).join(attempt.to_string())
}

/// The CRI-format log of one run of a container.
pub fn container_log(pod_dir: &Path, container: &str, attempt: u32) -> PathBuf {
    pod_dir.join("logs").join(container).join(format!("{attempt}.log"))
}

/// The folder that holds the logs of every run of a container.
pub fn container_logs_dir(pod_dir: &Path, container: &str) -> PathBuf {
    pod_dir.join("logs").join(container)
}
