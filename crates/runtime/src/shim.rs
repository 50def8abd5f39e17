//! The per-container supervisor: `skiff shim <run folder>`.
//!
//! The agent runs it for each container. It detaches at once (its first process returns as
//! soon as the container runs, so the agent is never its parent for long), so it outlives an
//! agent that stops or crashes. It then:
//! 1. makes the container's cgroup and a new PID namespace for its child;
//! 2. forks the container's first process, which joins the cgroup and the pod's namespaces,
//!    mounts its overlay root and its volumes, pivots into the root, drops to its user and
//!    execs the command (`rootfs.rs`);
//! 3. copies the container's output into its CRI log and to whoever attaches through
//!    `attach.sock` (`relay.rs`), and what attachers type into its stdin;
//! 4. writes `exit.json` with the exit code and reason when the container ends.
//!
//! The shim is single-threaded, without an async runtime, so that forking is safe.

use crate::cgroup::Cgroup;
use crate::container::{self, ContainerSpec, EXITED_FILE, Exited, STARTED_FILE, Started};
use crate::cri_log;
use anyhow::Context;
use nix::sched::CloneFlags;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

mod relay;

/// Kubernetes' default container log rotation: 10 MiB a file, 5 files.
const LOG_MAX_BYTES: u64 = 10 * 1024 * 1024;
const LOG_MAX_FILES: usize = 5;

/// The exit code a container that could not start reports, as runc-based runtimes do.
const START_FAILURE_EXIT_CODE: i32 = 128;

/// Runs the shim for the run folder `dir`. Returns in the first process once the container
/// runs or has failed to start; the detached shim goes on and exits the process itself.
pub fn run(dir: &Path) -> anyhow::Result<()> {
    let spec: ContainerSpec = serde_json::from_slice(
        &std::fs::read(dir.join(container::SPEC_FILE))
            .with_context(|| format!("reading the spec in {}", dir.display()))?,
    )?;
    let (ready_read, ready_write) = nix::unistd::pipe()?;
    // SAFETY: the shim is single-threaded here.
    match unsafe { fork() }? {
        ForkResult::Parent { .. } => {
            drop(ready_write);
            // The detached shim closes its end once the container runs or has failed.
            let mut done = Vec::new();
            std::fs::File::from(ready_read).read_to_end(&mut done)?;
            Ok(())
        }
        ForkResult::Child => {
            drop(ready_read);
            nix::unistd::setsid()?;
            // The agent reads the first process's stderr to its end: the detached shim keeps
            // its own in the run folder instead.
            let log = std::fs::File::create(dir.join("shim.log"))?;
            nix::unistd::dup2_stderr(&log)?;
            // Held until the failure (if any) is in shim.log, so the agent can read it.
            let mut ready = Some(ready_write);
            let code = match supervise(dir, &spec, &mut ready) {
                Ok(()) => 0,
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "skiff shim: {e:#}");
                    1
                }
            };
            drop(ready);
            std::process::exit(code);
        }
    }
}

/// The detached shim's work, from the container's start to its exit record.
/// `ready` is closed (taken) once the agent may read the run's state.
fn supervise(dir: &Path, spec: &ContainerSpec, ready: &mut Option<OwnedFd>) -> anyhow::Result<()> {
    let cgroup = Cgroup::create(&spec.cgroup, &spec.limits)?;
    let (container_side, pending_shim_side) = crate::stdio::make(spec.stdin, spec.tty)?;
    // The child writes why it could not exec here; exec closes it, so an empty read means it ran.
    let (fail_read, fail_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // The container's first process is PID 1 of a namespace of its own.
    nix::sched::unshare(CloneFlags::CLONE_NEWPID)?;
    let started_at = chrono::Utc::now();
    // SAFETY: the shim is single-threaded.
    let child = match unsafe { fork() }? {
        ForkResult::Child => {
            drop((pending_shim_side, fail_read, ready.take()));
            let error = crate::rootfs::enter_and_exec(dir, spec, &cgroup, container_side);
            let _ = nix::unistd::write(&fail_write, format!("{error:#}").as_bytes());
            std::process::exit(START_FAILURE_EXIT_CODE);
        }
        ForkResult::Parent { child } => child,
    };
    drop((container_side, fail_write));
    let mut failure = String::new();
    std::fs::File::from(fail_read).read_to_string(&mut failure)?;
    let attach_socket = dir.join(crate::attach::SOCKET);
    let mut listener = None;
    if failure.is_empty() {
        let _ = std::fs::remove_file(&attach_socket);
        listener = Some(crate::attach::with_short_path(dir, crate::attach::SOCKET, |path| {
            std::os::unix::net::UnixListener::bind(path)
        })?);
        let started = Started { pid: child.as_raw(), shim_pid: std::process::id() as i32, started_at };
        container::write_json_atomically(&dir.join(STARTED_FILE), &started)?;
    }
    // The agent may now read state.json (or, below, exit.json).
    let mut log = cri_log::Writer::create(&spec.log_path, LOG_MAX_BYTES, LOG_MAX_FILES)?;
    if !failure.is_empty() {
        wait_for(child)?;
        cgroup.remove();
        let exited = Exited {
            exit_code: START_FAILURE_EXIT_CODE,
            signal: None,
            reason: "StartError".into(),
            message: failure,
            started_at: None,
            finished_at: chrono::Utc::now(),
        };
        container::write_json_atomically(&dir.join(EXITED_FILE), &exited)?;
        drop(ready.take());
        return Ok(());
    }
    drop(ready.take());
    // The container has started, so a terminal it opened has been sent.
    let shim_side = pending_shim_side.ready()?;
    relay::Relay::new(shim_side, spec.stdin_once, listener)?.run(&mut log)?;
    let _ = std::fs::remove_file(&attach_socket);
    let status = wait_for(child)?;
    log.finish()?;
    let exited = exit_record(status, cgroup.oom_killed(), started_at);
    cgroup.remove();
    container::write_json_atomically(&dir.join(EXITED_FILE), &exited)?;
    Ok(())
}

fn wait_for(child: Pid) -> anyhow::Result<WaitStatus> {
    loop {
        match waitpid(child, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => return Ok(r?),
        }
    }
}

/// Turns how the process ended into what Kubernetes reports: exit code 128+N for a signal,
/// and the reason Completed, Error or OOMKilled.
fn exit_record(status: WaitStatus, oom_killed: bool, started_at: chrono::DateTime<chrono::Utc>) -> Exited {
    let (exit_code, signal) = match status {
        WaitStatus::Exited(_, code) => (code, None),
        WaitStatus::Signaled(_, signal, _) => (128 + signal as i32, Some(signal as i32)),
        // Without WUNTRACED, waitpid reports only the two above.
        _ => (START_FAILURE_EXIT_CODE, None),
    };
    let reason = if oom_killed {
        "OOMKilled"
    } else if exit_code == 0 {
        "Completed"
    } else {
        "Error"
    };
    Exited {
        exit_code,
        signal,
        reason: reason.into(),
        message: String::new(),
        started_at: Some(started_at),
        finished_at: chrono::Utc::now(),
    }
}
