//! `kubectl exec`: a command run in a running container (through `skiff shim-exec`, which
//! joins its namespaces, cgroup and user), with the session's streams as its stdin, stdout
//! and stderr, or a terminal the command opens in the container when the session has a TTY.

use super::session::{Outcome, Session};
use bytes::Bytes;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Runs `command` in the container of `run_dir` until it exits and its output is read.
pub async fn run(shim_program: &Path, run_dir: &Path, command: Vec<String>, session: Session) -> Outcome {
    let mut shim = tokio::process::Command::new(shim_program);
    shim.arg("shim-exec");
    if session.tty {
        shim.arg("--tty");
    }
    shim.arg(run_dir).args(&command).env("MIMALLOC_ARENA_EAGER_COMMIT", "0").kill_on_drop(true);
    let result = match session.tty {
        true => with_terminal(shim, session).await,
        false => with_pipes(shim, session).await,
    };
    match result {
        Ok(0) => Outcome::Success,
        Ok(code) => Outcome::Exited { code, command },
        Err(e) => Outcome::Failed(format!("error executing command in container: {e:#}")),
    }
}

async fn with_pipes(mut shim: tokio::process::Command, session: Session) -> anyhow::Result<i32> {
    let piped = |wanted: bool| if wanted { Stdio::piped() } else { Stdio::null() };
    shim.stdin(piped(session.stdin.is_some()))
        .stdout(piped(session.stdout.is_some()))
        .stderr(piped(session.stderr.is_some()));
    let mut child = shim.spawn()?;
    if let (Some(mut typed), Some(mut stdin)) = (session.stdin, child.stdin.take()) {
        tokio::spawn(async move {
            while let Some(data) = typed.recv().await {
                if stdin.write_all(&data).await.is_err() {
                    return;
                }
            }
            // Dropping the pipe is the command's end of file.
        });
    }
    let stdout = child.stdout.take().zip(session.stdout).map(|(from, to)| tokio::spawn(forward(from, to)));
    let stderr = child.stderr.take().zip(session.stderr).map(|(from, to)| tokio::spawn(forward(from, to)));
    let status = child.wait().await?;
    // Everything the command printed goes out before its end is reported.
    for copy in [stdout, stderr].into_iter().flatten() {
        let _ = copy.await;
    }
    Ok(exit_code(status))
}

/// Copies output to the session until it ends or the session stops taking it.
async fn forward(mut from: impl AsyncRead + Unpin, to: mpsc::Sender<Bytes>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn with_terminal(mut shim: tokio::process::Command, mut session: Session) -> anyhow::Result<i32> {
    // The command opens its terminal inside the container and sends its controlling side
    // back over this socket (its stdin).
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    shim.stdin(Stdio::from(OwnedFd::from(theirs))).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = shim.spawn()?;
    drop(shim);
    let master = match tokio::task::spawn_blocking(move || runtime::stdio::receive_fd(&ours)).await? {
        Ok(master) => master,
        Err(_) => {
            // It failed before it had a terminal: why is on its stderr.
            let output = child.wait_with_output().await?;
            anyhow::bail!("{}", String::from_utf8_lossy(&output.stderr).trim());
        }
    };
    let terminal = Arc::new(Terminal::new(master)?);
    let input = {
        let terminal = terminal.clone();
        let mut typed = session.stdin.take();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    data = async { typed.as_mut()?.recv().await }, if typed.is_some() => match data {
                        Some(data) => if terminal.write_all(&data).await.is_err() { return },
                        None => typed = None,
                    },
                    size = session.resize.recv() => match size {
                        Some(size) => { let _ = runtime::stdio::set_size(&terminal.fd, size.width, size.height); }
                        None => return,
                    },
                }
            }
        })
    };
    let output = session.stdout.take().map(|to| {
        let terminal = terminal.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = terminal.read(&mut buf).await {
                if n == 0 || to.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                    return;
                }
            }
        })
    });
    let status = child.wait().await?;
    if let Some(output) = output {
        let _ = output.await;
    }
    input.abort();
    Ok(exit_code(status))
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(128)
}

/// The agent's side of a pseudo-terminal, read and written without blocking a thread.
struct Terminal {
    fd: AsyncFd<OwnedFd>,
}

impl Terminal {
    fn new(master: OwnedFd) -> std::io::Result<Terminal> {
        let flags = nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(flags))?;
        // SAFETY: the descriptor is owned by the AsyncFd, so it is not closed (nor its number
        // reused) while registered.
        let fd = unsafe { AsyncFd::register(master) }.map_err(std::io::Error::from)?;
        Ok(Terminal { fd })
    }

    /// Reads output; 0 once the command's side is closed (Linux reports that as EIO).
    async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| nix::unistd::read(fd.get_ref(), buf).map_err(std::io::Error::from)) {
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    async fn write_all(&self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(std::io::Error::from)) {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }
}
