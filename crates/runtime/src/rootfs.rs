//! Inside the container's first process, between fork and exec: join the cgroup and the
//! pod's namespaces, build the container's filesystem (an overlay of the image's layers,
//! /proc, /dev, /sys and the volumes), pivot into it, become the container's user, confine
//! it (`security.rs`) and exec.

use crate::cgroup::Cgroup;
use crate::container::{ContainerSpec, Mount};
use crate::security::Confinement;
use crate::stdio::ContainerSide;
use anyhow::{Context, bail};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::CloneFlags;
use std::path::{Path, PathBuf};

/// PATH when the image sets none, as container runtimes default it.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Device nodes every container gets, bound from the host's.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Where the run's writable layer and its mounted root live.
pub fn rootfs_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("rootfs")
}

/// Sets the container up and execs its command. Returns only with the reason it could not.
pub fn enter_and_exec(run_dir: &Path, spec: &ContainerSpec, cgroup: &Cgroup, stdio: ContainerSide) -> anyhow::Error {
    match prepare(run_dir, spec, cgroup, stdio).and_then(|()| exec(&spec.args, &spec.env)) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn prepare(run_dir: &Path, spec: &ContainerSpec, cgroup: &Cgroup, stdio: ContainerSide) -> anyhow::Result<()> {
    // Before anything else: a localhost seccomp profile is a host file.
    let confinement = Confinement::new(&spec.security)?;
    cgroup.join_self().context("joining the container's cgroup")?;
    for (path, kind) in [
        (&spec.ipc_ns, CloneFlags::CLONE_NEWIPC),
        (&spec.uts_ns, CloneFlags::CLONE_NEWUTS),
        (&spec.net_ns, CloneFlags::CLONE_NEWNET),
    ] {
        if let Some(path) = path {
            let ns =
                std::fs::File::open(path).with_context(|| format!("opening the pod's namespace {}", path.display()))?;
            nix::sched::setns(&ns, kind).with_context(|| format!("joining the pod's namespace {}", path.display()))?;
        }
    }
    nix::sched::unshare(CloneFlags::CLONE_NEWNS)?;
    // Nothing mounted from here on may leak back to the host.
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)?;
    let root = rootfs_dir(run_dir);
    mount_overlay(run_dir, &root, &spec.layers)?;
    mount_system(&root, spec.security.privileged)?;
    for m in &spec.mounts {
        mount_volume(&root, m).with_context(|| format!("mounting {}", m.destination))?;
    }
    pivot(&root)?;
    // After the pivot: a terminal is opened in the container's own /dev/pts.
    stdio.install()?;
    if spec.read_only_root {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
            None::<&str>,
        )?;
    }
    let cwd = if spec.cwd.is_empty() { "/" } else { &spec.cwd };
    // A working directory the image lacks is made, as runc does.
    if !spec.read_only_root {
        let _ = std::fs::create_dir_all(cwd);
    }
    become_user(spec, &confinement)
}

/// Changes to the container's working directory, takes its user, group and supplemental
/// groups and confines the process: the last steps before exec, for its first process and
/// for commands run in it.
pub fn become_user(spec: &ContainerSpec, confinement: &Confinement) -> anyhow::Result<()> {
    let cwd = if spec.cwd.is_empty() { "/" } else { &spec.cwd };
    nix::unistd::chdir(cwd).with_context(|| format!("changing to the working directory {cwd}"))?;
    confinement.apply(|| {
        let groups: Vec<nix::unistd::Gid> =
            spec.supplemental_groups.iter().map(|g| nix::unistd::Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&groups)?;
        nix::unistd::setgid(nix::unistd::Gid::from_raw(spec.gid))?;
        nix::unistd::setuid(nix::unistd::Uid::from_raw(spec.uid))?;
        Ok(())
    })
}

/// The image's layers as overlayfs lower directories (the top one first, as overlayfs
/// lists them) under the run's own writable layer.
fn mount_overlay(run_dir: &Path, root: &Path, layers: &[PathBuf]) -> anyhow::Result<()> {
    if layers.is_empty() {
        bail!("the image has no layers");
    }
    let (upper, work) = (run_dir.join("upper"), run_dir.join("work"));
    for dir in [root, &upper, &work] {
        std::fs::create_dir_all(dir)?;
    }
    let lower: Vec<String> = layers.iter().rev().map(|l| l.display().to_string()).collect();
    let options = format!("lowerdir={},upperdir={},workdir={}", lower.join(":"), upper.display(), work.display());
    mount(Some("overlay"), root, Some("overlay"), MsFlags::empty(), Some(options.as_str()))
        .with_context(|| format!("mounting the container's root ({} layers)", layers.len()))
}

/// /proc, /dev (with its usual devices, pts and shm) and a read-only /sys, with the host's
/// kernel files in them hidden or read-only (`masked_paths.rs`). A privileged container gets
/// every host device, a writable /sys and all of /proc instead.
fn mount_system(root: &Path, privileged: bool) -> anyhow::Result<()> {
    let secure = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let at = |p: &str| root.join(p);
    std::fs::create_dir_all(at("proc"))?;
    mount(Some("proc"), &at("proc"), Some("proc"), secure, None::<&str>).context("mounting /proc")?;
    std::fs::create_dir_all(at("dev"))?;
    mount(
        Some("tmpfs"),
        &at("dev"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )
    .context("mounting /dev")?;
    for device in DEVICES {
        let target = at("dev").join(device);
        std::fs::File::create(&target)?;
        mount(Some(&Path::new("/dev").join(device)), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .with_context(|| format!("binding /dev/{device}"))?;
    }
    std::fs::create_dir_all(at("dev/pts"))?;
    mount(
        Some("devpts"),
        &at("dev/pts"),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .context("mounting /dev/pts")?;
    std::os::unix::fs::symlink("pts/ptmx", at("dev/ptmx"))?;
    std::fs::create_dir_all(at("dev/shm"))?;
    mount(Some("shm"), &at("dev/shm"), Some("tmpfs"), secure, Some("mode=1777,size=65536k"))
        .context("mounting /dev/shm")?;
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, at("dev").join(link))?;
    }
    if privileged {
        copy_host_devices(Path::new("/dev"), &at("dev"))?;
    }
    std::fs::create_dir_all(at("sys"))?;
    let sys_flags = if privileged { secure } else { secure | MsFlags::MS_RDONLY };
    mount(Some("sysfs"), &at("sys"), Some("sysfs"), sys_flags, None::<&str>).context("mounting /sys")?;
    if !privileged {
        crate::masked_paths::apply(root)?;
    }
    Ok(())
}

/// What of the host's /dev is its own, not devices to hand on: its terminals, its shared
/// memory and message queues, its console.
const HOST_ONLY_DEV: [&str; 4] = ["pts", "shm", "mqueue", "console"];

/// Makes in `to` a node for each device under the host's `from` (folders too) whose name
/// `to` does not have yet (its own ptmx, say), with the same numbers, mode and owner, as
/// runtimes do for a privileged container.
fn copy_host_devices(from: &Path, to: &Path) -> anyhow::Result<()> {
    use nix::sys::stat::{Mode, SFlag};
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    for entry in std::fs::read_dir(from)?.flatten() {
        let name = entry.file_name();
        let (source, target) = (entry.path(), to.join(&name));
        let Ok(metadata) = std::fs::symlink_metadata(&source) else { continue };
        let kind = metadata.file_type();
        if HOST_ONLY_DEV.iter().any(|n| name == *n) {
            continue;
        }
        if kind.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_host_devices(&source, &target)?;
        } else if (kind.is_char_device() || kind.is_block_device()) && target.symlink_metadata().is_err() {
            let sflag = if kind.is_char_device() { SFlag::S_IFCHR } else { SFlag::S_IFBLK };
            nix::sys::stat::mknod(&target, sflag, Mode::from_bits_truncate(metadata.mode()), metadata.rdev())
                .with_context(|| format!("making {}", target.display()))?;
            // The mode mknod sets is cut by the umask.
            std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(metadata.mode() & 0o7777))?;
            std::os::unix::fs::lchown(&target, Some(metadata.uid()), Some(metadata.gid()))?;
        }
    }
    Ok(())
}

/// One volume: a bind of a host path (a file onto a file, a folder onto a folder) or a tmpfs.
fn mount_volume(root: &Path, m: &Mount) -> anyhow::Result<()> {
    let target = root.join(m.destination.trim_start_matches('/'));
    let mut flags = MsFlags::empty();
    match &m.source {
        Some(source) => {
            if source.is_dir() {
                std::fs::create_dir_all(&target)?;
            } else {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                if !target.exists() {
                    std::fs::File::create(&target)?;
                }
            }
            flags |= MsFlags::MS_BIND | MsFlags::MS_REC;
            mount(Some(source.as_path()), &target, None::<&str>, flags, None::<&str>)?;
        }
        None => {
            std::fs::create_dir_all(&target)?;
            let options = m.tmpfs_size.map(|size| format!("size={size}"));
            mount(Some("tmpfs"), &target, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, options.as_deref())?;
            flags |= MsFlags::MS_BIND;
        }
    }
    if m.read_only {
        mount(None::<&str>, &target, None::<&str>, flags | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None::<&str>)?;
    }
    Ok(())
}

/// Makes `root` the process's `/` and lets go of the host's root.
fn pivot(root: &Path) -> anyhow::Result<()> {
    nix::unistd::chdir(root)?;
    // Stacking the old root under the new one, then detaching it, needs no spare folder.
    nix::unistd::pivot_root(".", ".").context("pivot_root")?;
    umount2(".", MntFlags::MNT_DETACH)?;
    nix::unistd::chdir("/")?;
    Ok(())
}

/// Execs `command` with `env`, looking its first word up in the environment's PATH.
pub fn exec(command: &[String], env: &[String]) -> anyhow::Result<std::convert::Infallible> {
    use std::ffi::CString;
    let Some(program) = command.first() else { bail!("no command specified") };
    let path = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
    let resolved = resolve(program, path)?;
    let args: Vec<CString> = command.iter().map(|a| CString::new(a.as_str())).collect::<Result<_, _>>()?;
    let env: Vec<CString> = env.iter().map(|e| CString::new(e.as_str())).collect::<Result<_, _>>()?;
    let err = nix::unistd::execve(&CString::new(resolved.as_os_str().as_encoded_bytes())?, &args, &env).unwrap_err();
    bail!("exec: {program:?}: {}", err.desc())
}

/// Finds an executable as a shell would: a name with a slash as it is, else in PATH.
fn resolve(program: &str, path: &str) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    path.split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
        .ok_or_else(|| anyhow::anyhow!("exec: {program:?}: executable file not found in $PATH"))
}
