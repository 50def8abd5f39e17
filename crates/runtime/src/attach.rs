//! Attaching to a running container: the shim listens on `attach.sock` in the run's folder,
//! and whoever connects (the agent, for `kubectl attach` and `kubectl run -it`) sees the
//! container's output as it is written and may type into its stdin and resize its terminal.
//!
//! Both ways, the socket carries frames: a kind byte, a 4-byte big-endian length, then the
//! payload. An attacher that means to use stdin says so with an empty [`Frame::Stdin`] first,
//! so that a container with `stdinOnce` has its stdin closed when that attacher leaves.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The socket's name in the run folder.
pub const SOCKET: &str = "attach.sock";

/// A frame longer than this is a broken peer, not a message.
const MAX_FRAME: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Bytes for the container's stdin (attacher to shim).
    Stdin(Vec<u8>),
    /// No more stdin from this attacher.
    StdinClose,
    /// The attacher's terminal size, in columns and rows.
    Resize {
        width: u16,
        height: u16,
    },
    /// Output of the container (shim to attacher). A container with a TTY has only stdout.
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let (kind, payload): (u8, &[u8]) = match self {
            Frame::Stdin(data) => (0, data),
            Frame::StdinClose => (1, &[]),
            Frame::Resize { width, height } => {
                let mut out = vec![2, 0, 0, 0, 4];
                out.extend_from_slice(&width.to_be_bytes());
                out.extend_from_slice(&height.to_be_bytes());
                return out;
            }
            Frame::Stdout(data) => (3, data),
            Frame::Stderr(data) => (4, data),
        };
        let mut out = Vec::with_capacity(5 + payload.len());
        out.push(kind);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// Takes the first whole frame off `buf`: `Ok(None)` if it holds only part of one.
    pub fn decode(buf: &mut Vec<u8>) -> std::io::Result<Option<Frame>> {
        if buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if len > MAX_FRAME {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "attach frame too long"));
        }
        if buf.len() < 5 + len {
            return Ok(None);
        }
        let payload: Vec<u8> = buf[5..5 + len].to_vec();
        let kind = buf[0];
        buf.drain(..5 + len);
        let frame = match kind {
            0 => Frame::Stdin(payload),
            1 => Frame::StdinClose,
            2 if payload.len() == 4 => Frame::Resize {
                width: u16::from_be_bytes([payload[0], payload[1]]),
                height: u16::from_be_bytes([payload[2], payload[3]]),
            },
            3 => Frame::Stdout(payload),
            4 => Frame::Stderr(payload),
            _ => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "unknown attach frame")),
        };
        Ok(Some(frame))
    }
}

/// Runs `f` with a path to `name` in `dir` that fits a socket address. Socket paths are
/// limited to 107 bytes, and a run folder's can be longer: `/proc/self/fd/<n>` names the
/// folder through an open descriptor instead.
pub fn with_short_path<T>(dir: &Path, name: &str, f: impl FnOnce(&Path) -> std::io::Result<T>) -> std::io::Result<T> {
    let folder = std::fs::File::open(dir)?;
    let short: PathBuf = format!("/proc/self/fd/{}/{name}", folder.as_raw_fd()).into();
    let result = f(&short);
    drop(folder);
    result
}

/// Connects to the shim of the running container whose run folder is `run_dir`.
pub async fn connect(run_dir: &Path) -> std::io::Result<tokio::net::UnixStream> {
    let stream = with_short_path(run_dir, SOCKET, |path| std::os::unix::net::UnixStream::connect(path))?;
    stream.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_pieces() {
        let frames = [
            Frame::Stdin(b"ls\n".to_vec()),
            Frame::StdinClose,
            Frame::Resize { width: 120, height: 40 },
            Frame::Stdout(vec![7; 300]),
            Frame::Stderr(Vec::new()),
        ];
        let wire: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        let mut buf = Vec::new();
        let mut decoded = Vec::new();
        for chunk in wire.chunks(7) {
            buf.extend_from_slice(chunk);
            while let Some(frame) = Frame::decode(&mut buf).unwrap() {
                decoded.push(frame);
            }
        }
        assert_eq!(decoded, frames);
        assert!(buf.is_empty());
    }

    #[test]
    fn broken_frames_are_errors() {
        assert!(Frame::decode(&mut vec![9, 0, 0, 0, 0]).is_err());
        assert!(Frame::decode(&mut vec![0, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
