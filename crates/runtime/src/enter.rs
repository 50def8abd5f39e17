//! Running a command inside a running container: `skiff shim-exec [--tty] <run folder>
//! <command...>`, for exec probes, lifecycle hooks and `kubectl exec`. The process joins the container's cgroup and
//! namespaces (its PID namespace, so it forks once more), takes the container's user,
//! environment, working directory and confinement (capabilities, no_new_privs, seccomp)
//! from its spec, and execs the command; it exits with the command's exit code (128+N for a
//! signal).
//!
//! Like the shim, it runs before any other thread exists, so that it may join namespaces
//! and fork.

use crate::container::{self, ContainerSpec, RunState};
use crate::security::Confinement;
use anyhow::{Context, bail};
use nix::sched::CloneFlags;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use std::path::Path;

/// The namespaces joined, in order: the mount namespace last, since /proc is read until then.
const NAMESPACES: [(&str, CloneFlags); 5] = [
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// Runs `command` in the container of `run_dir`; returns the exit code to exit with. With
/// `tty`, stdin is a Unix socket: the command gets a terminal opened in the container's
/// /dev/pts as its streams and controlling terminal, and its controlling side is sent back
/// through the socket (see `stdio.rs`).
pub fn run(run_dir: &Path, command: &[String], tty: bool) -> anyhow::Result<i32> {
    let spec: ContainerSpec = serde_json::from_slice(&std::fs::read(run_dir.join(container::SPEC_FILE))?)?;
    let RunState::Running(started) = container::run_state(run_dir) else { bail!("the container is not running") };
    let pid = started.pid;
    // While the host's files are in sight: a localhost seccomp profile is one.
    let confinement = Confinement::new(&spec.security)?;
    let namespaces = NAMESPACES
        .iter()
        .map(|(name, kind)| {
            let path = format!("/proc/{pid}/ns/{name}");
            Ok((std::fs::File::open(&path).with_context(|| format!("opening {path}"))?, *kind))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    join_cgroups(pid)?;
    for (ns, kind) in &namespaces {
        nix::sched::setns(ns, *kind).context("joining the container's namespaces")?;
    }
    // SAFETY: single-threaded; the child becomes a member of the container's PID namespace.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let error = match tty {
                true => crate::stdio::terminal_through(&std::io::stdin()).err(),
                false => None,
            }
            .unwrap_or_else(|| exec(&spec, &confinement, command));
            eprintln!("{error:#}");
            std::process::exit(126);
        }
        ForkResult::Parent { child } => loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(code),
                Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(128 + signal as i32),
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        },
    }
}

/// Moves this process into every cgroup the container's process is in, so that its work is
/// counted and limited with the container's.
fn join_cgroups(pid: i32) -> anyhow::Result<()> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let mount = match controllers {
            "" => "/sys/fs/cgroup".to_string(),
            c => format!("/sys/fs/cgroup/{}", c.trim_start_matches("name=")),
        };
        let procs = Path::new(&mount).join(path.trim_start_matches('/')).join("cgroup.procs");
        if procs.exists() {
            std::fs::write(&procs, "0").with_context(|| format!("joining {}", procs.display()))?;
        }
    }
    Ok(())
}

/// Becomes the container's user in its working directory, confined as it is, and execs the
/// command.
fn exec(spec: &ContainerSpec, confinement: &Confinement, command: &[String]) -> anyhow::Error {
    match crate::rootfs::become_user(spec, confinement).and_then(|()| crate::rootfs::exec(command, &spec.env)) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}
