//! A container's standard streams: pipes, or a terminal when it asks for one (`tty: true`).
//!
//! Without a terminal, stdout and stderr are two pipes the shim reads, and stdin is a pipe the
//! shim writes what attachers type into (`stdin: true`), else /dev/null. With a terminal, the
//! container's three streams are one pseudo-terminal, which is also its controlling terminal,
//! and everything it prints comes out of the terminal's other side as stdout.

use crate::cri_log::Stream;
use nix::fcntl::OFlag;
use std::os::fd::{AsRawFd, OwnedFd};

/// The container's side: its file descriptors 0, 1 and 2 once installed.
pub struct ContainerSide {
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
    tty: bool,
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

/// Makes the streams for a container; every descriptor is closed on exec until installed.
pub fn make(stdin: bool, tty: bool) -> anyhow::Result<(ContainerSide, ShimSide)> {
    if tty {
        let pty = nix::pty::openpty(None, None)?;
        set_cloexec(&pty.master)?;
        set_cloexec(&pty.slave)?;
        let container = ContainerSide {
            stdin: pty.slave.try_clone()?,
            stdout: pty.slave.try_clone()?,
            stderr: pty.slave,
            tty: true,
        };
        let typed = if stdin { Some(pty.master.try_clone()?) } else { None };
        let shim = ShimSide {
            outputs: vec![(pty.master.try_clone()?, Stream::Stdout)],
            stdin: typed,
            terminal: Some(pty.master),
        };
        return Ok((container, shim));
    }
    let (out_read, out_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (err_read, err_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (container_stdin, shim_stdin) = if stdin {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        (read, Some(write))
    } else {
        (std::fs::File::open("/dev/null")?.into(), None)
    };
    let container = ContainerSide { stdin: container_stdin, stdout: out_write, stderr: err_write, tty: false };
    let shim = ShimSide {
        outputs: vec![(out_read, Stream::Stdout), (err_read, Stream::Stderr)],
        stdin: shim_stdin,
        terminal: None,
    };
    Ok((container, shim))
}

fn set_cloexec(fd: &OwnedFd) -> nix::Result<()> {
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)).map(drop)
}

impl ContainerSide {
    /// Makes these the calling process's stdin, stdout and stderr (and its terminal, if one).
    pub fn install(self) -> anyhow::Result<()> {
        nix::unistd::dup2_stdin(&self.stdin)?;
        nix::unistd::dup2_stdout(&self.stdout)?;
        nix::unistd::dup2_stderr(&self.stderr)?;
        if self.tty {
            take_controlling_terminal()?;
        }
        Ok(())
    }
}

/// Starts a session whose controlling terminal is the one on stdin, as a login shell has:
/// job control works, and ^C reaches the foreground process.
pub fn take_controlling_terminal() -> anyhow::Result<()> {
    nix::unistd::setsid()?;
    // SAFETY: TIOCSCTTY takes an int argument; 0 does not steal a terminal another session has.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        anyhow::bail!("making stdin the controlling terminal: {}", std::io::Error::last_os_error());
    }
    Ok(())
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
