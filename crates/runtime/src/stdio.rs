//! A container's standard streams: pipes, or a terminal when it asks for one (`tty: true`).
//!
//! Without a terminal, stdout and stderr are two pipes the shim reads, and stdin is a pipe the
//! shim writes what attachers type into (`stdin: true`), else /dev/null. With a terminal, the
//! container's three streams are one pseudo-terminal, which is also its controlling terminal,
//! and everything it prints comes out of the terminal's other side as stdout.
//!
//! The terminal is opened by the container's process itself, from its own /dev/pts, once its
//! filesystem is in place: a terminal of the host's devpts would have no name inside the
//! container (`tty` would say "not a tty"). The controlling side goes back to the shim over a
//! socket (`SCM_RIGHTS`). `kubectl exec -t` gets its terminal the same way (`enter.rs`).

use crate::cri_log::Stream;
use nix::fcntl::OFlag;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The container's side: its file descriptors 0, 1 and 2 once installed.
pub enum ContainerSide {
    Pipes {
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    /// Where to send the controlling side of the terminal it opens.
    Terminal(OwnedFd),
}

/// The shim's side.
pub struct ShimSide {
    /// What the container prints, by stream.
    pub outputs: Vec<(OwnedFd, Stream)>,
    /// Where what is typed goes, if the container takes stdin.
    pub stdin: Option<OwnedFd>,
    /// The terminal's controlling side, for resizing it.
    pub terminal: Option<OwnedFd>,
}

/// The shim's side before the container has started: a terminal's comes once the container
/// has opened it.
pub enum PendingShimSide {
    Ready(ShimSide),
    Terminal { socket: OwnedFd, stdin: bool },
}

/// Makes the streams for a container; every descriptor is closed on exec until installed.
pub fn make(stdin: bool, tty: bool) -> anyhow::Result<(ContainerSide, PendingShimSide)> {
    if tty {
        let (shim, container) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )?;
        return Ok((ContainerSide::Terminal(container), PendingShimSide::Terminal { socket: shim, stdin }));
    }
    let (out_read, out_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (err_read, err_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (container_stdin, shim_stdin) = if stdin {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        (read, Some(write))
    } else {
        (std::fs::File::open("/dev/null")?.into(), None)
    };
    let container = ContainerSide::Pipes { stdin: container_stdin, stdout: out_write, stderr: err_write };
    let shim = ShimSide {
        outputs: vec![(out_read, Stream::Stdout), (err_read, Stream::Stderr)],
        stdin: shim_stdin,
        terminal: None,
    };
    Ok((container, PendingShimSide::Ready(shim)))
}

impl ContainerSide {
    /// Makes these the calling process's stdin, stdout and stderr; a terminal is opened in
    /// the /dev/pts the process sees, so this comes after its root is in place.
    pub fn install(self) -> anyhow::Result<()> {
        match self {
            ContainerSide::Pipes { stdin, stdout, stderr } => {
                nix::unistd::dup2_stdin(&stdin)?;
                nix::unistd::dup2_stdout(&stdout)?;
                nix::unistd::dup2_stderr(&stderr)?;
                Ok(())
            }
            ContainerSide::Terminal(socket) => terminal_through(&socket),
        }
    }
}

impl PendingShimSide {
    /// The shim's side, once the container has started (and so sent its terminal, if any).
    pub fn ready(self) -> anyhow::Result<ShimSide> {
        match self {
            PendingShimSide::Ready(side) => Ok(side),
            PendingShimSide::Terminal { socket, stdin } => {
                let master = receive_fd(&socket)?;
                let typed = if stdin { Some(master.try_clone()?) } else { None };
                Ok(ShimSide {
                    outputs: vec![(master.try_clone()?, Stream::Stdout)],
                    stdin: typed,
                    terminal: Some(master),
                })
            }
        }
    }
}

/// Opens a terminal in the /dev/pts the process sees, sends its controlling side through
/// `socket`, and makes the other side the process's stdin, stdout, stderr and controlling
/// terminal, as a login shell has: job control works, and ^C reaches the foreground process.
pub fn terminal_through(socket: &impl AsRawFd) -> anyhow::Result<()> {
    use anyhow::Context;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .context("opening /dev/ptmx for the terminal")?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let name = nix::pty::ptsname_r(&master)?;
    let slave = nix::fcntl::open(name.as_str(), OFlag::O_RDWR | OFlag::O_NOCTTY, nix::sys::stat::Mode::empty())
        .with_context(|| format!("opening the terminal {name}"))?;
    let master = OwnedFd::from(master);
    send_fd(socket, &master).context("sending the terminal to the shim")?;
    drop(master);
    nix::unistd::dup2_stdin(&slave)?;
    nix::unistd::dup2_stdout(&slave)?;
    nix::unistd::dup2_stderr(&slave)?;
    nix::unistd::setsid()?;
    // SAFETY: TIOCSCTTY takes an int argument; 0 does not steal a terminal another session has.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        anyhow::bail!("making the terminal the controlling terminal: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sends one descriptor over a Unix socket, with one byte of data to carry it.
fn send_fd(socket: &impl AsRawFd, fd: &OwnedFd) -> nix::Result<()> {
    let fds = [fd.as_raw_fd()];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(b"t")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map(drop)
}

/// Receives the descriptor `send_fd` sent; an end of stream first means the sender gave up.
pub fn receive_fd(socket: &impl AsRawFd) -> anyhow::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let message = recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(space.as_mut_slice()), MsgFlags::MSG_CMSG_CLOEXEC)?;
    for control in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = control
            && let Some(fd) = fds.first()
        {
            // SAFETY: the kernel just gave this process the descriptor; nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
        }
    }
    anyhow::bail!("no terminal came back from the container")
}

/// Sets a terminal's size, in columns and rows; its foreground process gets SIGWINCH.
pub fn set_size(terminal: &impl AsRawFd, width: u16, height: u16) -> std::io::Result<()> {
    let size = libc::winsize { ws_row: height, ws_col: width, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which outlives the call.
    if unsafe { libc::ioctl(terminal.as_raw_fd(), libc::TIOCSWINSZ, &size) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
