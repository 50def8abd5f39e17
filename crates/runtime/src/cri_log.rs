//! Container logs in the CRI log format, the one the kubelet reads and `kubectl logs` serves:
//!
//! ```text
//! 2016-10-06T00:17:09.669794202Z stdout F a whole line
//! 2016-10-06T00:17:09.669794202Z stderr P the first part of a very long line, then
//! 2016-10-06T00:17:09.669794203Z stderr F its end
//! ```
//!
//! Each entry is a UTC timestamp, the stream, a tag (`F` ends a line, `P` is part of one that
//! goes on in the next entry of that stream) and the text without its newline. The shim writes
//! entries with [`Writer`] (synchronously: it has no async runtime) and rotates the file as the
//! kubelet does; the agent serves them with [`read`], which turns entries back into the bytes
//! the container printed, and [`tail`] reads the end of one at once.

mod reader;
mod tail;
mod writer;

pub use reader::{Exited, LogOptions, read};
pub use tail::tail;
pub use writer::{MAX_ENTRY, Writer};

use chrono::{DateTime, Utc};

/// Which output of the container an entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The timestamp format of entries and of `kubectl logs --timestamps`: RFC 3339 in UTC with
/// nine fractional digits always (the kubelet's RFC3339NanoFixed), so that lines align.
pub(crate) fn format_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

/// One entry, read back from a line of a log file (without its newline).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Entry<'a> {
    pub time: DateTime<Utc>,
    pub stream: Stream,
    /// `P`: the line goes on in a later entry.
    pub partial: bool,
    pub text: &'a [u8],
}

impl<'a> Entry<'a> {
    /// Parses a line; None if it is not a CRI log entry. Tags after the first (`F:x`), which
    /// the format reserves for later use, are ignored.
    pub fn parse(line: &'a [u8]) -> Option<Entry<'a>> {
        let mut fields = line.splitn(4, |b| *b == b' ');
        let time = std::str::from_utf8(fields.next()?).ok()?;
        let time = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
        let stream = match fields.next()? {
            b"stdout" => Stream::Stdout,
            b"stderr" => Stream::Stderr,
            _ => return None,
        };
        let partial = match fields.next()?.split(|b| *b == b':').next()? {
            b"P" => true,
            b"F" => false,
            _ => return None,
        };
        Some(Entry { time, stream, partial, text: fields.next().unwrap_or(b"") })
    }

    /// The entry as a line of the file, newline included.
    pub fn encode(&self) -> Vec<u8> {
        let time = format_time(self.time);
        let mut line = Vec::with_capacity(time.len() + 10 + self.text.len());
        line.extend_from_slice(time.as_bytes());
        line.push(b' ');
        line.extend_from_slice(self.stream.as_str().as_bytes());
        line.extend_from_slice(if self.partial { b" P " } else { b" F " });
        line.extend_from_slice(self.text);
        line.push(b'\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let time = DateTime::parse_from_rfc3339("2016-10-06T00:17:09.669794202Z").unwrap().with_timezone(&Utc);
        let entry = Entry { time, stream: Stream::Stderr, partial: true, text: b"half a line" };
        let line = entry.encode();
        assert_eq!(line, b"2016-10-06T00:17:09.669794202Z stderr P half a line\n");
        assert_eq!(Entry::parse(&line[..line.len() - 1]), Some(entry));
    }

    #[test]
    fn parsing_accepts_short_times_and_empty_text_and_refuses_garbage() {
        let e = Entry::parse(b"2016-10-06T00:17:09.5Z stdout F").unwrap();
        assert_eq!((e.text, e.partial), (&b""[..], false));
        assert_eq!(e.time.timestamp_subsec_nanos(), 500_000_000);
        assert_eq!(Entry::parse(b"2016-10-06T00:17:09Z stdout F:x y z").unwrap().text, b"y z");
        assert!(Entry::parse(b"yesterday stdout F hello").is_none());
        assert!(Entry::parse(b"2016-10-06T00:17:09Z stdin F hello").is_none());
        assert!(Entry::parse(b"2016-10-06T00:17:09Z stdout X hello").is_none());
    }
}
