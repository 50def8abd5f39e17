//! Cgroups for containers, on either kind of host: cgroup v2 (one unified tree) or v1 (one
//! tree per controller). A container's cgroup has the same relative path in every tree it
//! is in, `skiff/pod<uid>/<container>-<attempt>`, so that a pod's cgroups go away together.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";
/// The v1 controllers a container is limited and counted by.
const V1_CONTROLLERS: &[&str] = &["memory", "cpu", "cpuacct", "pids"];
/// The CFS period limits are expressed in (100 ms, Kubernetes' default).
const CPU_PERIOD_US: i64 = 100_000;

/// A container's resources as the kernel takes them, worked out from its requests and limits.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Limits {
    /// memory limit in bytes
    pub memory_bytes: Option<i64>,
    /// cpu limit in millicores (the CFS quota)
    pub cpu_limit_millis: Option<i64>,
    /// cpu request in millicores (the relative share)
    pub cpu_request_millis: Option<i64>,
    pub pids: Option<i64>,
}

impl Limits {
    /// cpu.shares (v1) as the kubelet derives it from the request: 1024 per core, at least 2.
    pub fn cpu_shares(&self) -> Option<u64> {
        self.cpu_request_millis.map(|m| ((m.max(0) as u64) * 1024 / 1000).max(2))
    }

    /// cpu.weight (v2), mapped from the shares as the kubelet maps them.
    pub fn cpu_weight(&self) -> Option<u64> {
        self.cpu_shares().map(|shares| 1 + (shares.saturating_sub(2)) * 9999 / 262_142)
    }

    /// The CFS quota in microseconds per period; at least 1 ms, the kernel's minimum.
    pub fn cpu_quota_us(&self) -> Option<i64> {
        self.cpu_limit_millis.map(|m| (m * CPU_PERIOD_US / 1000).max(1000))
    }
}

/// One container's cgroup: its folder in each tree.
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<PathBuf>,
    v2: bool,
}

fn is_v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

fn write(dir: &Path, file: &str, value: &str) -> anyhow::Result<()> {
    std::fs::write(dir.join(file), value)
        .map_err(|e| anyhow::anyhow!("writing {value:?} to {}: {e}", dir.join(file).display()))
}

impl Cgroup {
    /// Makes the cgroup `relative` in every tree and sets its limits.
    pub fn create(relative: &str, limits: &Limits) -> anyhow::Result<Cgroup> {
        let v2 = is_v2();
        let dirs: Vec<PathBuf> = if v2 {
            vec![Path::new(ROOT).join(relative)]
        } else {
            V1_CONTROLLERS
                .iter()
                .map(|c| Path::new(ROOT).join(c))
                .filter(|d| d.is_dir())
                .map(|d| d.join(relative))
                .collect()
        };
        for dir in &dirs {
            std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("making the cgroup {}: {e}", dir.display()))?;
        }
        let cgroup = Cgroup { dirs, v2 };
        if v2 {
            cgroup.enable_v2_controllers(relative)?;
        }
        cgroup.limit(limits)?;
        Ok(cgroup)
    }

    /// In v2, a controller works in a cgroup only if the root and every ancestor hand it down.
    fn enable_v2_controllers(&self, relative: &str) -> anyhow::Result<()> {
        let mut dir = PathBuf::from(ROOT);
        write(&dir, "cgroup.subtree_control", "+memory +cpu +pids")?;
        for part in Path::new(relative).parent().iter().flat_map(|p| p.components()) {
            dir.push(part);
            write(&dir, "cgroup.subtree_control", "+memory +cpu +pids")?;
        }
        Ok(())
    }

    fn dir_for(&self, controller: &str) -> Option<&Path> {
        if self.v2 {
            return self.dirs.first().map(|d| d.as_path());
        }
        self.dirs.iter().find(|d| d.strip_prefix(ROOT).is_ok_and(|r| r.starts_with(controller))).map(|d| d.as_path())
    }

    fn limit(&self, limits: &Limits) -> anyhow::Result<()> {
        let set = |controller: &str, file: &str, value: String| match self.dir_for(controller) {
            Some(dir) => write(dir, file, &value),
            None => Ok(()),
        };
        if self.v2 {
            if let Some(bytes) = limits.memory_bytes {
                set("memory", "memory.max", bytes.to_string())?;
            }
            if let Some(quota) = limits.cpu_quota_us() {
                set("cpu", "cpu.max", format!("{quota} {CPU_PERIOD_US}"))?;
            }
            if let Some(weight) = limits.cpu_weight() {
                set("cpu", "cpu.weight", weight.to_string())?;
            }
            if let Some(pids) = limits.pids {
                set("pids", "pids.max", pids.to_string())?;
            }
        } else {
            if let Some(bytes) = limits.memory_bytes {
                set("memory", "memory.limit_in_bytes", bytes.to_string())?;
            }
            if let Some(quota) = limits.cpu_quota_us() {
                set("cpu", "cpu.cfs_period_us", CPU_PERIOD_US.to_string())?;
                set("cpu", "cpu.cfs_quota_us", quota.to_string())?;
            }
            if let Some(shares) = limits.cpu_shares() {
                set("cpu", "cpu.shares", shares.to_string())?;
            }
            if let Some(pids) = limits.pids {
                set("pids", "pids.max", pids.to_string())?;
            }
        }
        Ok(())
    }

    /// Moves the calling process into the cgroup ("0" names the writer).
    pub fn join_self(&self) -> anyhow::Result<()> {
        for dir in &self.dirs {
            write(dir, "cgroup.procs", "0")?;
        }
        Ok(())
    }

    /// Whether the kernel's OOM killer killed a process of the cgroup.
    pub fn oom_killed(&self) -> bool {
        let file = if self.v2 { "memory.events" } else { "memory.oom_control" };
        let Some(text) = self.dir_for("memory").and_then(|d| std::fs::read_to_string(d.join(file)).ok()) else {
            return false;
        };
        text.lines().filter_map(|l| l.strip_prefix("oom_kill ")).any(|n| n.trim().parse::<u64>().is_ok_and(|n| n > 0))
    }

    /// Removes the (empty) cgroup; one still in use stays, and is reported.
    pub fn remove(&self) {
        for dir in &self.dirs {
            remove_dir(dir);
        }
    }
}

fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!("skiff: could not remove the cgroup {}: {e}", dir.display());
    }
}

/// The relative cgroup of a pod, and of one run of one of its containers.
pub fn pod_cgroup(pod_uid: &str) -> String {
    format!("skiff/pod{pod_uid}")
}

pub fn container_cgroup(pod_uid: &str, container: &str, attempt: u32) -> String {
    format!("{}/{container}-{attempt}", pod_cgroup(pod_uid))
}

/// Makes a pod's cgroup, which its containers' go under, holding the pod's process limit.
pub fn create_pod(pod_uid: &str, pids: Option<i64>) -> anyhow::Result<()> {
    Cgroup::create(&pod_cgroup(pod_uid), &Limits { pids, ..Default::default() }).map(drop)
}

/// Removes a pod's cgroup (its containers' are gone by then) in every tree.
pub fn remove_pod(pod_uid: &str) {
    let relative = pod_cgroup(pod_uid);
    if is_v2() {
        remove_dir(&Path::new(ROOT).join(relative));
    } else {
        for controller in V1_CONTROLLERS {
            let dir = Path::new(ROOT).join(controller).join(&relative);
            if dir.exists() {
                remove_dir(&dir);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_figures_follow_the_kubelet() {
        let l = Limits { cpu_request_millis: Some(250), cpu_limit_millis: Some(500), ..Default::default() };
        assert_eq!(l.cpu_shares(), Some(256));
        assert_eq!(l.cpu_quota_us(), Some(50_000));
        assert_eq!(l.cpu_weight(), Some(1 + 254 * 9999 / 262_142));
        let tiny = Limits { cpu_request_millis: Some(1), cpu_limit_millis: Some(1), ..Default::default() };
        assert_eq!(tiny.cpu_shares(), Some(2));
        assert_eq!(tiny.cpu_quota_us(), Some(1000));
    }
}
