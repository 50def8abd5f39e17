//! The shim's copying loop, for as long as the container's output is open: its output goes
//! into the CRI log and to every attacher, and what attachers type goes into its stdin.
//!
//! One thread and `poll`: the shim has no async runtime, so that it may fork safely.

use crate::attach::Frame;
use crate::cri_log::{self, Stream};
use crate::stdio::ShimSide;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

/// An attacher that does not take its output for this long is dropped, so that it cannot
/// stall the container's log.
const ATTACHER_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

struct Attacher {
    stream: UnixStream,
    /// Bytes read that do not yet make a whole frame.
    partial: Vec<u8>,
    /// It said it uses stdin: with `stdinOnce`, its leaving closes stdin.
    uses_stdin: bool,
}

pub struct Relay {
    outputs: Vec<(OwnedFd, Stream)>,
    stdin: Option<OwnedFd>,
    /// Typed bytes not yet taken by the container.
    typed: Vec<u8>,
    stdin_once: bool,
    terminal: Option<OwnedFd>,
    listener: Option<UnixListener>,
    attachers: Vec<Attacher>,
}

/// Which descriptor a poll entry stands for.
#[derive(Clone, Copy)]
enum Source {
    Output(usize),
    Listener,
    Attacher(usize),
    Stdin,
}

impl Relay {
    pub fn new(side: ShimSide, stdin_once: bool, listener: Option<UnixListener>) -> std::io::Result<Relay> {
        if let Some(stdin) = &side.stdin {
            nix::fcntl::fcntl(stdin, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))?;
        }
        Ok(Relay {
            outputs: side.outputs,
            stdin: side.stdin,
            typed: Vec::new(),
            stdin_once,
            terminal: side.terminal,
            listener,
            attachers: Vec::new(),
        })
    }

    /// Copies until the container (and whatever it left holding its output) has closed it.
    /// Attachers are let go then, which tells them the container has ended.
    pub fn run(mut self, log: &mut cri_log::Writer) -> anyhow::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        while !self.outputs.is_empty() {
            let (sources, ready) = self.wait()?;
            for (source, revents) in sources.into_iter().zip(ready).rev() {
                if revents.is_empty() {
                    continue;
                }
                match source {
                    Source::Output(i) => self.copy_output(i, &mut buf, log)?,
                    Source::Listener => self.accept(),
                    Source::Attacher(i) => self.read_attacher(i, &mut buf),
                    Source::Stdin => self.feed_stdin(),
                }
            }
        }
        Ok(())
    }

    /// Polls every descriptor; returns what each entry is and what happened to it.
    fn wait(&self) -> anyhow::Result<(Vec<Source>, Vec<PollFlags>)> {
        let mut entries: Vec<(BorrowedFd<'_>, PollFlags, Source)> = Vec::new();
        for (i, (fd, _)) in self.outputs.iter().enumerate() {
            entries.push((fd.as_fd(), PollFlags::POLLIN, Source::Output(i)));
        }
        if let Some(listener) = &self.listener {
            entries.push((listener.as_fd(), PollFlags::POLLIN, Source::Listener));
        }
        for (i, a) in self.attachers.iter().enumerate() {
            entries.push((a.stream.as_fd(), PollFlags::POLLIN, Source::Attacher(i)));
        }
        if let Some(stdin) = self.stdin.as_ref().filter(|_| !self.typed.is_empty()) {
            entries.push((stdin.as_fd(), PollFlags::POLLOUT, Source::Stdin));
        }
        let mut fds: Vec<PollFd> = entries.iter().map(|(fd, flags, _)| PollFd::new(*fd, *flags)).collect();
        loop {
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => r?,
            };
            break;
        }
        let ready = fds.iter().map(|fd| fd.revents().unwrap_or(PollFlags::empty())).collect();
        Ok((entries.into_iter().map(|(_, _, source)| source).collect(), ready))
    }

    fn copy_output(&mut self, i: usize, buf: &mut [u8], log: &mut cri_log::Writer) -> anyhow::Result<()> {
        let (fd, stream) = &self.outputs[i];
        match nix::unistd::read(fd, buf) {
            // A terminal whose other side is closed reads EIO rather than end of file.
            Ok(0) | Err(nix::errno::Errno::EIO) => {
                self.outputs.remove(i);
            }
            Ok(n) => {
                log.write(*stream, &buf[..n])?;
                let frame = match stream {
                    Stream::Stdout => Frame::Stdout(buf[..n].to_vec()),
                    Stream::Stderr => Frame::Stderr(buf[..n].to_vec()),
                };
                self.broadcast(&frame.encode());
            }
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    fn broadcast(&mut self, bytes: &[u8]) {
        let mut gone = Vec::new();
        for (i, a) in self.attachers.iter_mut().enumerate() {
            if a.stream.write_all(bytes).is_err() {
                gone.push(i);
            }
        }
        for i in gone.into_iter().rev() {
            self.leave(i);
        }
    }

    fn accept(&mut self) {
        let Some(listener) = &self.listener else { return };
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_write_timeout(Some(ATTACHER_WRITE_TIMEOUT));
                self.attachers.push(Attacher { stream, partial: Vec::new(), uses_stdin: false });
            }
            Err(e) => eprintln!("skiff shim: accepting an attacher: {e}"),
        }
    }

    fn read_attacher(&mut self, i: usize, buf: &mut [u8]) {
        let n = match self.attachers[i].stream.read(buf) {
            Ok(0) | Err(_) => return self.leave(i),
            Ok(n) => n,
        };
        let attacher = &mut self.attachers[i];
        attacher.partial.extend_from_slice(&buf[..n]);
        let mut frames = Vec::new();
        loop {
            match Frame::decode(&mut attacher.partial) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(_) => return self.leave(i),
            }
        }
        for frame in frames {
            match frame {
                Frame::Stdin(data) => {
                    self.attachers[i].uses_stdin = true;
                    if self.stdin.is_some() {
                        self.typed.extend_from_slice(&data);
                        self.feed_stdin();
                    }
                }
                Frame::StdinClose => self.close_stdin(),
                Frame::Resize { width, height } => {
                    if let Some(terminal) = &self.terminal {
                        let _ = crate::stdio::set_size(terminal, width, height);
                    }
                }
                Frame::Stdout(_) | Frame::Stderr(_) => {}
            }
        }
    }

    /// An attacher left: with `stdinOnce`, the container's stdin ends with its session.
    fn leave(&mut self, i: usize) {
        let attacher = self.attachers.remove(i);
        if attacher.uses_stdin && self.stdin_once {
            self.close_stdin();
        }
    }

    /// Takes no more input. Without a terminal the container reads end of file; with one,
    /// the terminal stays open (its output comes out of the same descriptor).
    fn close_stdin(&mut self) {
        self.feed_stdin();
        self.stdin = None;
        self.typed.clear();
    }

    fn feed_stdin(&mut self) {
        let Some(stdin) = &self.stdin else { return };
        while !self.typed.is_empty() {
            match nix::unistd::write(stdin, &self.typed) {
                Ok(n) => {
                    self.typed.drain(..n);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => return,
                // The container closed its stdin (or ended): what is typed has nowhere to go.
                Err(_) => {
                    self.stdin = None;
                    self.typed.clear();
                    return;
                }
            }
        }
    }
}
