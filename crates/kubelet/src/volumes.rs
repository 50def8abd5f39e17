//! A pod's volumes on the node: made before its containers start, each a folder (or a
//! file) that containers bind into their filesystems, and removed with the pod.
//!
//! Made here: emptyDir (on disk, or tmpfs for medium Memory, with its sizeLimit, given the
//! pod's fsGroup) and hostPath with its types. configMap, secret, downwardAPI and projected
//! volumes are folders of the pod's that `api_volumes.rs` fills; persistentVolumeClaim
//! volumes are folders of the pod's that `claim_volumes.rs` binds their volume onto.

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::{Pod, Volume};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use std::path::{Path, PathBuf};

fn volumes_dir(pod_dir: &Path) -> PathBuf {
    pod_dir.join("volumes")
}

/// Where the node holds a volume: its host path for hostPath, else a folder of the pod's.
pub fn host_path(pod_dir: &Path, volume: &Volume) -> PathBuf {
    match &volume.host_path {
        Some(h) => PathBuf::from(&h.path),
        None => volumes_dir(pod_dir).join(&volume.name),
    }
}

/// Makes every volume of the pod that is not there yet. Returns the message of the first
/// one that cannot be made (the pod then waits in ContainerCreating, as Kubernetes shows a
/// failed mount).
pub fn prepare(pod_dir: &Path, pod: &Pod) -> anyhow::Result<()> {
    let group = crate::volume_ownership::fs_group(pod);
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        prepare_one(pod_dir, volume, group)
            .with_context(|| format!("MountVolume.SetUp failed for volume {:?}", volume.name))?;
    }
    Ok(())
}

fn prepare_one(pod_dir: &Path, volume: &Volume, group: Option<u32>) -> anyhow::Result<()> {
    let path = host_path(pod_dir, volume);
    if let Some(host) = &volume.host_path {
        return prepare_host_path(&path, host.type_.as_deref().unwrap_or(""));
    }
    if let Some(empty) = &volume.empty_dir {
        if path.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&path)?;
        if empty.medium.as_deref() == Some("Memory") {
            let size = empty.size_limit.as_ref().and_then(|q| quota::quantity::milli(&q.0)).map(|m| m / 1000);
            let options = format!("mode=1777{}", size.map(|s| format!(",size={s}")).unwrap_or_default());
            mount(Some("tmpfs"), &path, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(options.as_str()))?;
        } else {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))?;
        }
        if let Some(group) = group {
            crate::volume_ownership::apply(&path, group, false, false)?;
        }
        return Ok(());
    }
    if crate::projection::of(volume).is_some() {
        std::fs::create_dir_all(&path)?;
        return Ok(());
    }
    if volume.persistent_volume_claim.is_some() {
        return Ok(());
    }
    bail!("this node does not support the volume's type yet")
}

/// hostPath's types, checked (or made) as the kubelet does.
pub fn prepare_host_path(path: &Path, type_: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(path).ok();
    let kind = meta.as_ref().map(|m| m.file_type());
    let fail = |what: &str| bail!("hostPath type check failed: {} is not {what}", path.display());
    match type_ {
        "" => Ok(()),
        "DirectoryOrCreate" if kind.is_none() => Ok(std::fs::create_dir_all(path)?),
        "FileOrCreate" if kind.is_none() => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::File::create(path)?;
            Ok(())
        }
        "Directory" | "DirectoryOrCreate" if !kind.is_some_and(|k| k.is_dir()) => fail("a directory"),
        "File" | "FileOrCreate" if !kind.is_some_and(|k| k.is_file()) => fail("a file"),
        "Socket" if !kind.is_some_and(|k| k.is_socket()) => fail("a socket"),
        "CharDevice" if !kind.is_some_and(|k| k.is_char_device()) => fail("a character device"),
        "BlockDevice" if !kind.is_some_and(|k| k.is_block_device()) => fail("a block device"),
        _ => Ok(()),
    }
}

/// Unmounts the pod's tmpfs volumes; the folders go with the pod's folder.
pub fn release(pod_dir: &Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(volumes_dir(pod_dir)) else { return Ok(()) };
    for entry in entries.flatten() {
        match umount2(&entry.path(), MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
            Err(e) => bail!("unmounting {}: {e}", entry.path().display()),
        }
    }
    Ok(())
}
