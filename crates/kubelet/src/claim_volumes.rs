//! persistentVolumeClaim volumes. The claim, in the pod's namespace, must be Bound; the
//! node binds its PersistentVolume's `hostPath` or `local` path onto the pod's folder for the
//! volume, as the kubelet mounts a volume into the pod's folder before containers start, and
//! containers bind that folder like any other. A claim the pod mounts `readOnly` is a
//! read-only mount there, which every bind made from it keeps. `volumes::release` unmounts it
//! with the pod.
//!
//! Until the claim can be used the pod waits in ContainerCreating with the kubelet's message,
//! e.g. `... error processing PVC default/data: PVC is not bound`, and each sync looks again.

use crate::{volume_ownership, volumes};
use anyhow::Context;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::Api;
use nix::mount::{MntFlags, MsFlags, umount2};
use std::path::{Path, PathBuf};

/// Where a bound claim's data lives on this node.
struct Backing {
    path: PathBuf,
    /// A local volume gets the pod's fsGroup; a hostPath volume is left as it is.
    local: bool,
    /// The hostPath type to check, as for a hostPath volume.
    host_path_type: String,
}

/// Mounts the pod's claim volumes that are not mounted yet. The error is the kubelet's
/// message for the first that cannot be.
pub async fn mount(client: &kube::Client, pod_dir: &Path, pod: &Pod) -> Result<(), String> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let Some(source) = &volume.persistent_volume_claim else { continue };
        let target = volumes::host_path(pod_dir, volume);
        if is_mount_root(&target) {
            continue;
        }
        let backing = backing(client, namespace, &source.claim_name).await.map_err(|why| {
            format!(
                "Unable to attach or mount volumes: unmounted volumes=[{}]: error processing PVC {namespace}/{}: {why}",
                volume.name, source.claim_name
            )
        })?;
        let read_only = source.read_only.unwrap_or(false);
        let group = volume_ownership::fs_group(pod).filter(|_| backing.local && !read_only);
        let skip_if_root_matches = volume_ownership::on_root_mismatch(pod);
        tokio::task::block_in_place(|| -> anyhow::Result<()> {
            if backing.local {
                anyhow::ensure!(backing.path.exists(), "path {:?} does not exist", backing.path);
            } else {
                volumes::prepare_host_path(&backing.path, &backing.host_path_type)?;
            }
            if let Some(group) = group {
                volume_ownership::apply(&backing.path, group, false, skip_if_root_matches)
                    .with_context(|| format!("giving {} the pod's fsGroup", backing.path.display()))?;
            }
            bind(&backing.path, &target, read_only)
        })
        .map_err(|e| format!("MountVolume.SetUp failed for volume {:?} : {e:#}", volume.name))?;
    }
    Ok(())
}

/// The claim's volume on this node, or why the claim cannot be used (as the kubelet says it).
async fn backing(client: &kube::Client, namespace: &str, claim_name: &str) -> Result<Backing, String> {
    let message = |e: kube::Error| match e {
        kube::Error::Api(status) => status.message,
        other => other.to_string(),
    };
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let claim =
        claims.get(claim_name).await.map_err(|e| format!("failed to fetch PVC from API server: {}", message(e)))?;
    if claim.metadata.deletion_timestamp.is_some() {
        return Err("PVC is being deleted".into());
    }
    if claim.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound") {
        return Err("PVC is not bound".into());
    }
    let volume_name = claim.spec.as_ref().and_then(|s| s.volume_name.clone()).unwrap_or_default();
    if volume_name.is_empty() {
        return Err("PVC has empty pvc.Spec.VolumeName".into());
    }
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let volume = volumes
        .get(&volume_name)
        .await
        .map_err(|e| format!("failed to fetch PV {volume_name} from API server: {}", message(e)))?;
    let spec = volume.spec.unwrap_or_default();
    let bound_to = spec.claim_ref.as_ref().and_then(|r| r.uid.clone());
    if bound_to.is_none() || bound_to != claim.metadata.uid {
        return Err(format!("PV {volume_name} is not bound to this claim"));
    }
    if let Some(host) = spec.host_path {
        return Ok(Backing { path: host.path.into(), local: false, host_path_type: host.type_.unwrap_or_default() });
    }
    if let Some(local) = spec.local {
        return Ok(Backing { path: local.path.into(), local: true, host_path_type: String::new() });
    }
    Err(format!("PV {volume_name} is neither hostPath nor local, the kinds this node can mount"))
}

/// Binds `source` onto `target` (made for it; removed again if the mount fails).
fn bind(source: &Path, target: &Path, read_only: bool) -> anyhow::Result<()> {
    // A folder left by a mount that never finished.
    if target.is_dir() {
        std::fs::remove_dir(target)?;
    } else if target.exists() {
        std::fs::remove_file(target)?;
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if source.is_dir() {
        std::fs::create_dir(target)?;
    } else {
        std::fs::File::create(target)?;
    }
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    let mounted = nix::mount::mount(Some(source), target, None::<&str>, flags, None::<&str>).and_then(|()| {
        if !read_only {
            return Ok(());
        }
        let remounted = nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            flags | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        );
        if remounted.is_err() {
            let _ = umount2(target, MntFlags::MNT_DETACH);
        }
        remounted
    });
    if let Err(e) = mounted {
        let _ = if source.is_dir() { std::fs::remove_dir(target) } else { std::fs::remove_file(target) };
        anyhow::bail!("binding {} onto {}: {e}", source.display(), target.display());
    }
    Ok(())
}

/// Whether `path` is the root of a mount, i.e. its claim's volume is bound there already.
fn is_mount_root(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: statx reads a NUL-terminated path and fills a buffer of its own type.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statx(libc::AT_FDCWD, c_path.as_ptr(), libc::AT_SYMLINK_NOFOLLOW, 0, &mut stx) };
    rc == 0 && stx.stx_attributes & libc::STATX_ATTR_MOUNT_ROOT as u64 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_bind_stays_read_only_and_is_seen_as_mounted() {
        assert!(nix::unistd::geteuid().is_root(), "binding needs root, as the node agent has");
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("pv");
        std::fs::create_dir(&source).unwrap();
        std::fs::write(source.join("data"), "kept").unwrap();
        let target = dir.path().join("pod/volumes/claim");
        assert!(!is_mount_root(&target));
        bind(&source, &target, true).unwrap();
        assert!(is_mount_root(&target));
        assert_eq!(std::fs::read_to_string(target.join("data")).unwrap(), "kept");
        let written = std::fs::write(target.join("new"), "x").unwrap_err();
        assert_eq!(written.raw_os_error(), Some(libc::EROFS));
        umount2(&target, MntFlags::MNT_DETACH).unwrap();
        assert!(!is_mount_root(&target));
    }
}
