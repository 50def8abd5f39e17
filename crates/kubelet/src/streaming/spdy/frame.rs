//! SPDY/3 frames, as kubectl and client-go (through moby/spdystream) write them: a control
//! frame is `80 03`, a 16-bit type, flags and a 24-bit length; a data frame is a 31-bit
//! stream id, flags and a 24-bit length. All integers are big-endian.
//!
//! Header blocks travel compressed; this module carries them as the compressed bytes and
//! `headers.rs` turns them into names and values.

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub const FLAG_FIN: u8 = 0x01;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;

/// RST_STREAM status codes that this side sends.
pub const PROTOCOL_ERROR: u32 = 1;
pub const CANCEL: u32 = 5;

/// A frame larger than this is refused (SPDY's own limit is 2^24 - 1 bytes).
const MAX_LENGTH: usize = (1 << 24) - 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream: u32,
        flags: u8,
        header_block: Bytes,
    },
    SynReply {
        stream: u32,
        flags: u8,
        header_block: Bytes,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good: u32,
        status: u32,
    },
    Headers {
        stream: u32,
        flags: u8,
        header_block: Bytes,
    },
    Data {
        stream: u32,
        flags: u8,
        data: Bytes,
    },
    /// SETTINGS, WINDOW_UPDATE and unknown control frames: spdystream does no flow control
    /// and sends no settings, so there is nothing to act on.
    Ignored,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    #[error("SPDY frame of {0} bytes is too large")]
    TooLarge(usize),
    #[error("malformed SPDY {0} frame")]
    Malformed(&'static str),
}

impl Frame {
    /// Takes the first whole frame off `buf`; `Ok(None)` while it holds only part of one.
    pub fn decode(buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let length = ((buf[5] as usize) << 16) | ((buf[6] as usize) << 8) | buf[7] as usize;
        if length > MAX_LENGTH {
            return Err(FrameError::TooLarge(length));
        }
        if buf.len() < 8 + length {
            return Ok(None);
        }
        let mut frame = buf.split_to(8 + length).freeze();
        let first = frame.get_u32();
        let flags = frame.get_u8();
        frame.advance(3);
        if first & 0x8000_0000 == 0 {
            return Ok(Some(Frame::Data { stream: first, flags, data: frame }));
        }
        let version = ((first >> 16) & 0x7fff) as u16;
        if version != 3 {
            return Err(FrameError::Version(version));
        }
        let need =
            |frame: &Bytes, n: usize, name| if frame.len() < n { Err(FrameError::Malformed(name)) } else { Ok(()) };
        Ok(Some(match (first & 0xffff) as u16 {
            SYN_STREAM => {
                need(&frame, 10, "SYN_STREAM")?;
                let stream = frame.get_u32() & 0x7fff_ffff;
                // The associated stream, priority and slot mean nothing to a kubelet.
                frame.advance(6);
                Frame::SynStream { stream, flags, header_block: frame }
            }
            SYN_REPLY => {
                need(&frame, 4, "SYN_REPLY")?;
                Frame::SynReply { stream: frame.get_u32() & 0x7fff_ffff, flags, header_block: frame }
            }
            HEADERS => {
                need(&frame, 4, "HEADERS")?;
                Frame::Headers { stream: frame.get_u32() & 0x7fff_ffff, flags, header_block: frame }
            }
            RST_STREAM => {
                need(&frame, 8, "RST_STREAM")?;
                Frame::RstStream { stream: frame.get_u32() & 0x7fff_ffff, status: frame.get_u32() }
            }
            PING => {
                need(&frame, 4, "PING")?;
                Frame::Ping { id: frame.get_u32() }
            }
            GOAWAY => {
                need(&frame, 8, "GOAWAY")?;
                Frame::GoAway { last_good: frame.get_u32() & 0x7fff_ffff, status: frame.get_u32() }
            }
            // SETTINGS, WINDOW_UPDATE and types SPDY/3 does not define.
            _ => Frame::Ignored,
        }))
    }

    pub fn encode(&self, out: &mut BytesMut) {
        let control = |out: &mut BytesMut, kind: u16, flags: u8, length: usize| {
            out.put_u16(0x8003);
            out.put_u16(kind);
            out.put_u32(((flags as u32) << 24) | length as u32);
        };
        match self {
            Frame::SynStream { stream, flags, header_block } => {
                control(out, SYN_STREAM, *flags, 10 + header_block.len());
                out.put_u32(*stream);
                out.put_u32(0);
                out.put_u16(0);
                out.put_slice(header_block);
            }
            Frame::SynReply { stream, flags, header_block } | Frame::Headers { stream, flags, header_block } => {
                let kind = if matches!(self, Frame::SynReply { .. }) { SYN_REPLY } else { HEADERS };
                control(out, kind, *flags, 4 + header_block.len());
                out.put_u32(*stream);
                out.put_slice(header_block);
            }
            Frame::RstStream { stream, status } => {
                control(out, RST_STREAM, 0, 8);
                out.put_u32(*stream);
                out.put_u32(*status);
            }
            Frame::Ping { id } => {
                control(out, PING, 0, 4);
                out.put_u32(*id);
            }
            Frame::GoAway { last_good, status } => {
                control(out, GOAWAY, 0, 8);
                out.put_u32(*last_good);
                out.put_u32(*status);
            }
            Frame::Data { stream, flags, data } => {
                out.put_u32(*stream & 0x7fff_ffff);
                out.put_u32(((*flags as u32) << 24) | data.len() as u32);
                out.put_slice(data);
            }
            Frame::Ignored => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_whatever_the_chunks() {
        let frames = vec![
            Frame::SynStream { stream: 1, flags: 0, header_block: Bytes::from_static(b"abc") },
            Frame::SynReply { stream: 1, flags: 0, header_block: Bytes::new() },
            Frame::Data { stream: 1, flags: FLAG_FIN, data: Bytes::from_static(b"hello") },
            Frame::Data { stream: 3, flags: 0, data: Bytes::new() },
            Frame::RstStream { stream: 3, status: CANCEL },
            Frame::Ping { id: 7 },
            Frame::GoAway { last_good: 3, status: 0 },
            Frame::Headers { stream: 5, flags: FLAG_FIN, header_block: Bytes::from_static(b"x") },
        ];
        let mut wire = BytesMut::new();
        for f in &frames {
            f.encode(&mut wire);
        }
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        for chunk in wire.chunks(3) {
            buf.extend_from_slice(chunk);
            while let Some(frame) = Frame::decode(&mut buf).unwrap() {
                decoded.push(frame);
            }
        }
        assert_eq!(decoded, frames);
    }

    #[test]
    fn wire_layout_matches_spdystream() {
        let mut wire = BytesMut::new();
        Frame::Ping { id: 1 }.encode(&mut wire);
        assert_eq!(&wire[..], [0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1]);
        let mut wire = BytesMut::new();
        Frame::Data { stream: 3, flags: FLAG_FIN, data: Bytes::from_static(b"hi") }.encode(&mut wire);
        assert_eq!(&wire[..], [0, 0, 0, 3, 0x01, 0, 0, 2, b'h', b'i']);
        // SETTINGS (type 4) and WINDOW_UPDATE (type 9) are read and let be.
        let mut settings = BytesMut::from(&[0x80, 0x03, 0x00, 0x04, 0, 0, 0, 4, 0, 0, 0, 0][..]);
        assert_eq!(Frame::decode(&mut settings).unwrap(), Some(Frame::Ignored));
        let mut v2 = BytesMut::from(&[0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert_eq!(Frame::decode(&mut v2), Err(FrameError::Version(2)));
    }
}
