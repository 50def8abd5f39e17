//! The parts of /proc and /sys that a container that is not privileged may not read or
//! change, as Kubernetes' default procMount lists them for the container runtimes: files
//! that show or change the whole host's kernel (its memory, keys, timers, interrupts,
//! firmware, sysctls) rather than the container's own.

use anyhow::Context;
use nix::mount::{MsFlags, mount};
use std::path::{Path, PathBuf};

/// Hidden: a file behind /dev/null, a folder behind an empty read-only tmpfs.
const MASKED: [&str; 12] = [
    "proc/acpi",
    "proc/asound",
    "proc/interrupts",
    "proc/kcore",
    "proc/keys",
    "proc/latency_stats",
    "proc/sched_debug",
    "proc/scsi",
    "proc/timer_list",
    "proc/timer_stats",
    "sys/devices/virtual/powercap",
    "sys/firmware",
];

/// Readable but not writable.
const READ_ONLY: [&str; 5] = ["proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger"];

/// Hides and protects the paths above under the container's `root`, once its /proc and
/// /sys are mounted and while the host's /dev/null is still in sight. Paths this kernel
/// lacks are skipped.
pub fn apply(root: &Path) -> anyhow::Result<()> {
    for path in MASKED.iter().map(|p| root.join(p)).chain(thermal_throttle(root)) {
        mask(&path).with_context(|| format!("masking {}", path.display()))?;
    }
    for path in READ_ONLY.iter().map(|p| root.join(p)) {
        make_read_only(&path).with_context(|| format!("making {} read-only", path.display()))?;
    }
    Ok(())
}

/// Each CPU's thermal throttling controls, masked by Kubernetes too.
fn thermal_throttle(root: &Path) -> impl Iterator<Item = PathBuf> {
    let cpus = std::fs::read_dir(root.join("sys/devices/system/cpu")).into_iter().flatten().flatten();
    cpus.filter(|cpu| {
        let name = cpu.file_name();
        let name = name.to_string_lossy();
        name.strip_prefix("cpu").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
    .map(|cpu| cpu.path().join("thermal_throttle"))
}

fn mask(path: &Path) -> anyhow::Result<()> {
    let metadata = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        other => other?,
    };
    if metadata.is_dir() {
        let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        mount(Some("tmpfs"), path, Some("tmpfs"), flags, Some("mode=755"))?;
    } else {
        mount(Some("/dev/null"), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)?;
    }
    Ok(())
}

/// A bind of the path onto itself, then made read-only (a bind's flags change only by
/// remounting it).
fn make_read_only(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    mount(Some(path), path, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)?;
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC;
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)?;
    Ok(())
}
