//! Where a pod's state lives on disk. Every part of the runtime and the agent finds a pod's
//! files through these functions, so the layout is written down once.
//!
//! ```text
//! pods/<uid>/pod.json                          who the pod is (namespace, name, uid)
//! pods/<uid>/ns/{net,ipc,uts}                  the sandbox's namespaces, bind-mounted
//! pods/<uid>/containers/<name>/<attempt>/      one run of a container: spec, pid, exit, rootfs
//! pods/<uid>/logs/<name>/<attempt>.log         its output, in the CRI log format
//! seccomp/<profile>                            localhost seccomp profiles, put there by the node's admin
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

/// A pod's localhost seccomp profile, named relative to the `seccomp` folder of the root
/// that holds the pod's folder `pod_dir` (as the kubelet keeps them under its own root). A
/// name that climbs out of that folder names no file there.
pub fn seccomp_profile(pod_dir: &Path, name: &str) -> PathBuf {
    let root = pod_dir.parent().and_then(Path::parent).unwrap_or(pod_dir);
    let name = Path::new(name);
    let inside = name.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    root.join("seccomp").join(if inside { name } else { Path::new("") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_seccomp_profiles_stay_in_the_agents_seccomp_folder() {
        let pod_dir = pod_dir(Path::new("/agent"), "uid");
        assert_eq!(seccomp_profile(&pod_dir, "profiles/a.json"), Path::new("/agent/seccomp/profiles/a.json"));
        assert_eq!(seccomp_profile(&pod_dir, "../../etc/passwd"), Path::new("/agent/seccomp"));
        assert_eq!(seccomp_profile(&pod_dir, "/etc/passwd"), Path::new("/agent/seccomp"));
    }
}
