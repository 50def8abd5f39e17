//! Unpacking one layer into a folder that overlayfs can take as a lower directory.
//!
//! A layer tar says "this file was deleted" with an OCI whiteout, an empty file named
//! `.wh.NAME`, and "nothing below shows through this folder" with `.wh..wh..opq`. Overlayfs
//! has its own forms for both: a character device 0:0 named NAME, and the xattr
//! `trusted.overlay.opaque=y` on the folder. Everything else (owners, modes, xattrs,
//! symlinks, hard links, device nodes) is kept as the tar has it.
//!
//! A layer is untrusted input: an entry whose path leaves the folder (`..`, an absolute path,
//! a hard link to outside, a path through a symlink that points outside) is an error, never
//! silently skipped, so a bad image fails to import rather than running half unpacked.

use super::compression::decompressed;
use super::digest::HashingReader;
use anyhow::{Context, bail};
use nix::sys::stat::{Mode, SFlag, mknod};
use std::ffi::CString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use tar::EntryType;

/// The prefix of an OCI whiteout's file name.
const WHITEOUT_PREFIX: &str = ".wh.";
/// Names starting with this are the whiteout format's own metadata, not whiteouts of files.
const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
/// The entry that marks its folder opaque.
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The xattr overlayfs reads to hide everything below a folder.
const OVERLAY_OPAQUE_XATTR: &std::ffi::CStr = c"trusted.overlay.opaque";

/// Unpacks the layer blob at `blob` (plain or gzip'd tar) into `dest`, which must not exist
/// yet, and returns its diff id's hex: the sha256 of the uncompressed tar.
pub(crate) fn unpack_blob(blob: &Path, dest: &Path) -> anyhow::Result<String> {
    let file = fs::File::open(blob).with_context(|| format!("opening {}", blob.display()))?;
    let mut tar = HashingReader::new(decompressed(file)?);
    fs::create_dir(dest).with_context(|| format!("creating {}", dest.display()))?;
    unpack(&mut tar, dest)?;
    let (diff_id, _) = tar.finish()?;
    Ok(diff_id)
}

/// Unpacks an uncompressed layer tar into the existing, empty folder `dest`.
fn unpack(tar: impl Read, dest: &Path) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(tar);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    // Folders get their modes last (deepest first), so that a read-only folder does not stop
    // its own contents from being written; opaque marks go on once the folders are final.
    let mut dirs = Vec::new();
    let mut opaque = Vec::new();
    for entry in archive.entries().context("reading the layer tar")? {
        let mut entry = entry.context("reading the layer tar")?;
        let raw_path = entry.path().context("reading an entry's path")?.into_owned();
        let path = relative(&raw_path)?;
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue; // the layer's root folder itself: the unpacked folder stands for it
        };
        let parent = path.parent().unwrap_or(Path::new(""));
        if name == OPAQUE_MARKER {
            opaque.push(parent.to_path_buf());
            continue;
        }
        if name.starts_with(WHITEOUT_META_PREFIX) {
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            whiteout(dest, parent, hidden).with_context(|| format!("making the whiteout {}", path.display()))?;
            continue;
        }
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Directory => {
                dirs.push(entry);
                continue;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                special_file(dest, &path, &entry, kind).with_context(|| format!("creating {}", path.display()))?;
                continue;
            }
            EntryType::Link => {
                let target = entry.link_name()?.map(|t| t.into_owned()).unwrap_or_default();
                relative(&target).with_context(|| format!("the hard link {}", path.display()))?;
            }
            _ => {}
        }
        unpack_in(&mut entry, dest, &path)?;
    }
    dirs.sort_by(|a, b| b.path_bytes().cmp(&a.path_bytes()));
    for mut dir in dirs {
        let path = relative(&dir.path()?)?;
        unpack_in(&mut dir, dest, &path)?;
    }
    for dir in opaque {
        let dir = ensure_dir(dest, &dir)?;
        set_opaque(&dir).with_context(|| format!("marking {} opaque", dir.display()))?;
    }
    Ok(())
}

/// Lets the tar crate write a file, folder, symlink or hard link: it keeps owners, modes,
/// mtimes and xattrs, and refuses parents that resolve outside `dest`.
fn unpack_in<R: Read>(entry: &mut tar::Entry<'_, R>, dest: &Path, path: &Path) -> anyhow::Result<()> {
    let unpacked = entry.unpack_in(dest).with_context(|| format!("unpacking {}", path.display()))?;
    if !unpacked {
        bail!("the layer has an entry outside its root: {}", path.display());
    }
    Ok(())
}

/// The path of an entry relative to the layer's root, or an error when it would leave it.
fn relative(path: &Path) -> anyhow::Result<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                bail!("the layer has an entry outside its root: {}", path.display())
            }
        }
    }
    Ok(out)
}

/// The folder `dest/relative`, created (0755) where missing. A symlink on the way is refused,
/// so nothing the runtime creates itself can be redirected outside the layer.
fn ensure_dir(dest: &Path, relative: &Path) -> anyhow::Result<PathBuf> {
    let mut dir = dest.to_path_buf();
    for part in relative.components() {
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => bail!("{} is in the way of a folder (a file or a symlink)", dir.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            Err(e) => return Err(e).with_context(|| format!("looking at {}", dir.display())),
        }
    }
    Ok(dir)
}

/// Removes whatever is at `path`, so a later entry replaces an earlier one.
fn remove_existing(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// An overlay whiteout for `parent/hidden`: a character device with device number 0:0.
fn whiteout(dest: &Path, parent: &Path, hidden: &str) -> anyhow::Result<()> {
    if hidden.is_empty() || hidden == "." || hidden == ".." {
        bail!("{WHITEOUT_PREFIX}{hidden} names no file");
    }
    let path = ensure_dir(dest, parent)?.join(hidden);
    remove_existing(&path)?;
    mknod(&path, SFlag::S_IFCHR, Mode::empty(), libc::makedev(0, 0))?;
    Ok(())
}

/// Device nodes and fifos, which the tar crate would write as plain files.
fn special_file<R: Read>(dest: &Path, path: &Path, entry: &tar::Entry<'_, R>, kind: EntryType) -> anyhow::Result<()> {
    let header = entry.header();
    let parent = ensure_dir(dest, path.parent().unwrap_or(Path::new("")))?;
    let target = parent.join(path.file_name().context("an entry without a name")?);
    remove_existing(&target)?;
    let device = || -> io::Result<libc::dev_t> {
        Ok(libc::makedev(header.device_major()?.unwrap_or(0), header.device_minor()?.unwrap_or(0)))
    };
    // A fifo has no device number, and tars often leave the fields blank for one.
    let (sflag, dev) = match kind {
        EntryType::Char => (SFlag::S_IFCHR, device()?),
        EntryType::Block => (SFlag::S_IFBLK, device()?),
        _ => (SFlag::S_IFIFO, 0),
    };
    let mode = header.mode()? & 0o7777;
    mknod(&target, sflag, Mode::from_bits_truncate(mode), dev)?;
    let uid = u32::try_from(header.uid()?).context("a uid beyond 32 bits")?;
    let gid = u32::try_from(header.gid()?).context("a gid beyond 32 bits")?;
    std::os::unix::fs::lchown(&target, Some(uid), Some(gid))?;
    // mknod's mode went through the umask; the layer's mode is the one to keep.
    fs::set_permissions(&target, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Marks a folder opaque for overlayfs.
fn set_opaque(dir: &Path) -> anyhow::Result<()> {
    let path = CString::new(dir.as_os_str().as_bytes())?;
    let value = b"y";
    // SAFETY: both strings are NUL-terminated and outlive the call; value's length is given.
    let rc =
        unsafe { libc::lsetxattr(path.as_ptr(), OVERLAY_OPAQUE_XATTR.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error().into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::digest::sha256_hex;
    use super::super::testdata::{LayerBuilder, gzip};
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    fn unpack_bytes(tar: &[u8], dir: &Path) -> anyhow::Result<String> {
        let blob = dir.join("blob");
        fs::write(&blob, tar).unwrap();
        unpack_blob(&blob, &dir.join("layer"))
    }

    fn xattr(path: &Path, name: &std::ffi::CStr) -> Option<Vec<u8>> {
        let path = CString::new(path.as_os_str().as_bytes()).unwrap();
        let mut buf = [0u8; 64];
        // SAFETY: NUL-terminated strings and a buffer of the length given.
        let n = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        (n >= 0).then(|| buf[..n as usize].to_vec())
    }

    fn sample_layer() -> Vec<u8> {
        LayerBuilder::new()
            .dir("etc", 0o755)
            .file_owned("etc/secret", b"s3cret", 0o640, 1000, 1001)
            .dir("bin", 0o755)
            .file("bin/busybox", b"#!busybox", 0o755)
            .symlink("bin/sh", "busybox")
            .hardlink("bin/ls", "bin/busybox")
            .whiteout_file(".wh.removed")
            .whiteout_file("etc/.wh.gone")
            .dir("var/cache", 0o700)
            .whiteout_file("var/cache/.wh..wh..opq")
            .char_device("dev/null", 1, 3, 0o666)
            .fifo("run/fifo", 0o600)
            .dir("readonly", 0o555)
            .file("readonly/inside", b"x", 0o444)
            .build()
    }

    #[test]
    fn unpacks_files_links_and_devices_as_the_tar_has_them() {
        let tmp = tempfile::tempdir().unwrap();
        let tar = sample_layer();
        let diff_id = unpack_bytes(&tar, tmp.path()).unwrap();
        assert_eq!(diff_id, sha256_hex(&tar));
        let layer = tmp.path().join("layer");

        let secret = fs::metadata(layer.join("etc/secret")).unwrap();
        assert_eq!(fs::read(layer.join("etc/secret")).unwrap(), b"s3cret");
        assert_eq!((secret.mode() & 0o7777, secret.uid(), secret.gid()), (0o640, 1000, 1001));
        assert_eq!(fs::read_link(layer.join("bin/sh")).unwrap(), Path::new("busybox"));
        let busybox = fs::metadata(layer.join("bin/busybox")).unwrap();
        assert_eq!(fs::metadata(layer.join("bin/ls")).unwrap().ino(), busybox.ino());
        assert_eq!(busybox.nlink(), 2);

        let null = fs::metadata(layer.join("dev/null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!((null.rdev(), null.mode() & 0o7777), (libc::makedev(1, 3), 0o666));
        assert!(fs::metadata(layer.join("run/fifo")).unwrap().file_type().is_fifo());
        assert_eq!(fs::metadata(layer.join("var/cache")).unwrap().mode() & 0o7777, 0o700);
        assert_eq!(fs::metadata(layer.join("readonly")).unwrap().mode() & 0o7777, 0o555);
        assert_eq!(fs::read(layer.join("readonly/inside")).unwrap(), b"x");
    }

    #[test]
    fn turns_oci_whiteouts_into_overlay_whiteouts() {
        let tmp = tempfile::tempdir().unwrap();
        unpack_bytes(&sample_layer(), tmp.path()).unwrap();
        let layer = tmp.path().join("layer");
        for whiteout in ["removed", "etc/gone"] {
            let meta = fs::symlink_metadata(layer.join(whiteout)).unwrap();
            assert!(meta.file_type().is_char_device(), "{whiteout} is not a character device");
            assert_eq!(meta.rdev(), 0, "{whiteout} is not device 0:0");
        }
        assert!(!layer.join(".wh.removed").exists());
        assert!(!layer.join("var/cache/.wh..wh..opq").exists());
        assert_eq!(xattr(&layer.join("var/cache"), OVERLAY_OPAQUE_XATTR).as_deref(), Some(&b"y"[..]));
        assert_eq!(xattr(&layer.join("etc"), OVERLAY_OPAQUE_XATTR), None);
    }

    #[test]
    fn gzip_layers_have_the_diff_id_of_their_plain_tar() {
        let tmp = tempfile::tempdir().unwrap();
        let tar = sample_layer();
        assert_eq!(unpack_bytes(&gzip(&tar), tmp.path()).unwrap(), sha256_hex(&tar));
        assert_eq!(fs::read(tmp.path().join("layer/bin/busybox")).unwrap(), b"#!busybox");
    }

    #[test]
    fn refuses_entries_that_leave_the_layer() {
        let escapes = [
            LayerBuilder::new().raw_file("../escaped", b"x").build(),
            LayerBuilder::new().raw_file("a/../../escaped", b"x").build(),
            LayerBuilder::new().raw_file("/escaped", b"x").build(),
            LayerBuilder::new().file("ok", b"x", 0o644).raw_hardlink("link", "../escaped").build(),
            LayerBuilder::new().raw_hardlink("link", "/etc/passwd").build(),
            LayerBuilder::new().symlink("out", "/").whiteout_file("out/.wh.escaped").build(),
            LayerBuilder::new().symlink("out", "..").file("out/escaped", b"x", 0o644).build(),
            LayerBuilder::new().symlink("out", "..").char_device("out/escaped", 1, 3, 0o600).build(),
        ];
        for (i, tar) in escapes.iter().enumerate() {
            let tmp = tempfile::tempdir().unwrap();
            let inner = tmp.path().join("inner");
            fs::create_dir(&inner).unwrap();
            let err = unpack_bytes(tar, &inner).expect_err(&format!("case {i} should fail"));
            let mut beside: Vec<_> = fs::read_dir(&inner).unwrap().map(|e| e.unwrap().file_name()).collect();
            beside.sort();
            assert_eq!(beside, ["blob", "layer"], "case {i} wrote outside the layer: {err:#}");
            assert!(!Path::new("/escaped").exists(), "case {i} wrote to /: {err:#}");
        }
        let tmp = tempfile::tempdir().unwrap();
        let err = unpack_bytes(&escapes[0], tmp.path()).unwrap_err();
        assert!(format!("{err:#}").contains("outside its root"), "{err:#}");
    }
}
