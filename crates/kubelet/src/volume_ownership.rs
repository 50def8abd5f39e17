//! A pod's `fsGroup` applied to its volumes, as the kubelet's SetVolumeOwnership does: so
//! that a container running as any user, with fsGroup among its groups, can read (and for a
//! writable volume, write) the volume's files.
//!
//! Every file and folder gets the group, and read for its owner and the group (read and
//! write, unless the volume is read-only as configMap, secret, downwardAPI and projected
//! volumes are); folders also get search and setgid, so that files made later inherit the
//! group. Modes are only ever added to. Symlinks get the group but keep their mode. hostPath
//! volumes are left alone.

use k8s_openapi::api::core::v1::Pod;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Read and write for the owner and the group (read-only volumes: read).
const READ_WRITE: u32 = 0o660;
const READ: u32 = 0o440;
/// Folders are also searchable by the owner and the group.
const SEARCH: u32 = 0o110;
const SETGID: u32 = 0o2000;

/// The group the pod's volumes are given, if it sets one.
pub fn fs_group(pod: &Pod) -> Option<u32> {
    pod.spec.as_ref()?.security_context.as_ref()?.fs_group.map(|g| g as u32)
}

/// Whether the pod asks to skip volumes whose root already has the group and modes
/// (`fsGroupChangePolicy: OnRootMismatch`); Kubernetes applies that to persistent volumes
/// only.
pub fn on_root_mismatch(pod: &Pod) -> bool {
    let ctx = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    ctx.and_then(|c| c.fs_group_change_policy.as_deref()) == Some("OnRootMismatch")
}

/// A file's mode once the volume has the group.
pub fn mode_with_group(mode: u32, read_only: bool, dir: bool) -> u32 {
    let mut mode = mode | if read_only { READ } else { READ_WRITE };
    if dir {
        mode |= SEARCH | SETGID;
    }
    mode
}

/// Whether the volume's root already has the group and at least the modes it would get.
fn root_matches(root: &Path, group: u32, read_only: bool) -> bool {
    let Ok(meta) = std::fs::metadata(root) else { return false };
    let mode = meta.permissions().mode() & 0o7777;
    meta.is_dir() && meta.gid() == group && mode_with_group(mode, read_only, true) == mode
}

/// Gives everything under `root` (and `root` itself) the group and its modes; with
/// `skip_if_root_matches`, nothing is walked when the root already has them.
pub fn apply(root: &Path, group: u32, read_only: bool, skip_if_root_matches: bool) -> std::io::Result<()> {
    if skip_if_root_matches && root_matches(root, group, read_only) {
        return Ok(());
    }
    give(root, group, read_only)
}

fn give(path: &Path, group: u32, read_only: bool) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    std::os::unix::fs::lchown(path, None, Some(group))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode() & 0o7777;
    let wanted = mode_with_group(mode, read_only, meta.is_dir());
    if wanted != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            give(&entry?.path(), group, read_only)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn files_get_the_group_and_its_modes_and_folders_setgid() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("vol");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(root.join("sub"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(root.join("sub/file"), "x").unwrap();
        std::fs::set_permissions(root.join("sub/file"), std::fs::Permissions::from_mode(0o400)).unwrap();
        std::os::unix::fs::symlink("sub/file", root.join("link")).unwrap();
        let link_mode = mode(&root.join("link"));
        // A group the test's user can give files to: its own.
        let group = std::fs::metadata(&root).unwrap().gid();

        apply(&root, group, false, false).unwrap();
        assert_eq!(mode(&root), 0o2775);
        assert_eq!(mode(&root.join("sub")), 0o2770);
        assert_eq!(mode(&root.join("sub/file")), 0o660);
        assert_eq!(mode(&root.join("link")), link_mode, "a symlink keeps its mode");
        assert_eq!(std::fs::symlink_metadata(root.join("sub/file")).unwrap().gid(), group);

        std::fs::set_permissions(root.join("sub/file"), std::fs::Permissions::from_mode(0o400)).unwrap();
        apply(&root, group, false, true).unwrap();
        assert_eq!(mode(&root.join("sub/file")), 0o400, "OnRootMismatch skips a root that matches");
        apply(&root, group, true, false).unwrap();
        assert_eq!(mode(&root.join("sub/file")), 0o440, "read-only volumes get group read only");
    }

    #[test]
    fn modes_add_to_what_the_file_had() {
        assert_eq!(mode_with_group(0o644, true, false), 0o644);
        assert_eq!(mode_with_group(0o400, true, false), 0o440);
        assert_eq!(mode_with_group(0o600, false, false), 0o660);
        assert_eq!(mode_with_group(0o755, true, true), 0o2755);
        assert_eq!(mode_with_group(0o777, false, true), 0o2777);
    }
}
