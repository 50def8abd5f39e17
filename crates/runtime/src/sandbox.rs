//! A pod's sandbox: the network, IPC and UTS namespaces its containers share.
//!
//! The namespaces are made in a short-lived thread and kept alive by bind-mounting them onto
//! files in the pod's folder (as `ip netns` does), so that no process has to hold them and
//! they outlive an agent restart. Removing the sandbox unmounts them; the kernel frees each
//! namespace when its last container has gone too.

use anyhow::Context;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::CloneFlags;
use std::path::{Path, PathBuf};

/// The namespaces a sandbox may own, with the name /proc gives each.
const KINDS: [(CloneFlags, &str); 3] =
    [(CloneFlags::CLONE_NEWNET, "net"), (CloneFlags::CLONE_NEWIPC, "ipc"), (CloneFlags::CLONE_NEWUTS, "uts")];

/// The file a sandbox's namespace of this kind ("net", "ipc", "uts") is mounted on.
pub fn ns_path(pod_dir: &Path, kind: &str) -> PathBuf {
    pod_dir.join("ns").join(kind)
}

/// Which of the host's namespaces the pod shares instead of owning one.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostNamespaces {
    pub network: bool,
    pub ipc: bool,
}

/// Makes the pod's namespaces (those it does not share with the host) and sets its hostname.
/// A pod on the host's network keeps the host's UTS namespace too, as in Kubernetes.
pub fn create(pod_dir: &Path, hostname: &str, host: HostNamespaces) -> anyhow::Result<()> {
    let owned: Vec<(CloneFlags, &'static str)> = KINDS
        .into_iter()
        .filter(|(kind, _)| match *kind {
            CloneFlags::CLONE_NEWIPC => !host.ipc,
            _ => !host.network,
        })
        .collect();
    std::fs::create_dir_all(pod_dir.join("ns"))?;
    let (pod_dir, hostname) = (pod_dir.to_path_buf(), hostname.to_string());
    // unshare acts on the calling thread only: a thread of its own keeps the agent's out of it.
    std::thread::spawn(move || -> anyhow::Result<()> {
        let flags = owned.iter().fold(CloneFlags::empty(), |all, (kind, _)| all | *kind);
        nix::sched::unshare(flags).context("making the pod's namespaces")?;
        if flags.contains(CloneFlags::CLONE_NEWUTS) {
            nix::unistd::sethostname(&hostname)?;
        }
        for (_, name) in &owned {
            let target = ns_path(&pod_dir, name);
            std::fs::File::create(&target)?;
            let source = format!("/proc/thread-self/ns/{name}");
            mount(Some(source.as_str()), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .with_context(|| format!("keeping the pod's {name} namespace at {}", target.display()))?;
        }
        Ok(())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the thread making the pod's namespaces panicked"))?
}

/// The sandbox's namespace files that exist (a pod on the host's network has no `net`).
pub fn existing(pod_dir: &Path, kind: &str) -> Option<PathBuf> {
    Some(ns_path(pod_dir, kind)).filter(|p| p.exists())
}

/// Lets go of the pod's namespaces. Safe to repeat.
pub fn remove(pod_dir: &Path) -> anyhow::Result<()> {
    for (_, name) in KINDS {
        let path = ns_path(pod_dir, name);
        match umount2(&path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(anyhow::anyhow!("unmounting {}: {e}", path.display())),
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow::anyhow!("removing {}: {e}", path.display())),
        }
    }
    Ok(())
}
