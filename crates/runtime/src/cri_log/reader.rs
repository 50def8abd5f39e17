//! Serving a CRI log back as the container printed it, with `kubectl logs`' options.
//!
//! `P` entries join the entry after them without a newline and `F` entries end a line, so
//! the reader gives back the bytes the container wrote (the stdout and stderr lines in the
//! order they were logged). As in the kubelet, `tail_lines` counts entries from the end of
//! the file, `since` drops older entries, and `limit_bytes` cuts the output. With `follow`
//! the reader keeps polling the file, moves on to the new file when the shim rotates it,
//! and ends once the container has exited and the file has nothing more. (A file that is
//! rotated away again before the next poll, which takes tens of megabytes a second with the
//! default 10Mi files, is skipped.)

use super::{Entry, format_time};
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use std::io::{self, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

/// Tells a following reader whether the container has exited, so that it stops once it has
/// read everything.
pub type Exited = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    /// Keep waiting for more after the end of the file, until the container exits.
    pub follow: bool,
    /// Only the last this many entries.
    pub tail_lines: Option<u64>,
    /// Only entries logged at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Start each line with its RFC 3339 timestamp and a space.
    pub timestamps: bool,
    /// Stop after this many bytes.
    pub limit_bytes: Option<u64>,
}

/// How often a following reader looks for more.
const POLL: Duration = Duration::from_millis(150);
/// How much is read (and, from the end, searched for the tail) at a time.
const BLOCK: usize = 64 * 1024;
/// How many chunks may wait for a slow receiver before the reader waits too.
const BACKLOG: usize = 8;

/// Opens the log at `path` and reads it in a task that sends the user-visible bytes, chunk by
/// chunk, until the end (or with `follow`, until `exited` says so and the file has no more
/// data), until `limit_bytes`, or until the receiver is dropped. A file that cannot be opened
/// is an error here; a read that fails later arrives as the channel's last item.
pub async fn read(path: &Path, options: LogOptions, exited: Exited) -> io::Result<mpsc::Receiver<io::Result<Bytes>>> {
    let mut file = File::open(path).await?;
    if let Some(lines) = options.tail_lines {
        let start = tail_start(&mut file, lines).await?;
        file.seek(SeekFrom::Start(start)).await?;
    }
    let (tx, rx) = mpsc::channel(BACKLOG);
    let reader = Reader { path: path.to_path_buf(), decoder: Decoder::new(&options), follow: options.follow, exited };
    tokio::spawn(reader.run(file, tx));
    Ok(rx)
}

/// Where the last `lines` entries start: found by reading blocks backwards from the end, so a
/// long log costs no more than its tail.
async fn tail_start(file: &mut File, lines: u64) -> io::Result<u64> {
    let len = file.metadata().await?.len();
    if lines == 0 {
        return Ok(len);
    }
    let mut block = vec![0; BLOCK];
    let mut end = len;
    let mut seen = 0;
    while end > 0 {
        let start = end.saturating_sub(BLOCK as u64);
        let block = &mut block[..(end - start) as usize];
        file.seek(SeekFrom::Start(start)).await?;
        file.read_exact(block).await?;
        for (i, byte) in block.iter().enumerate().rev() {
            let at = start + i as u64;
            // The newline that ends the file ends the last entry rather than starting one.
            if *byte == b'\n' && at + 1 != len {
                seen += 1;
                if seen == lines {
                    return Ok(at + 1);
                }
            }
        }
        end = start;
    }
    Ok(0)
}

/// Turns entries into output, applying `since`, `timestamps` and `limit_bytes`.
struct Decoder {
    since: Option<DateTime<Utc>>,
    timestamps: bool,
    /// Bytes left before `limit_bytes`.
    remaining: Option<u64>,
    /// Whether the next entry starts a line (the one before was not `P`).
    line_start: bool,
}

impl Decoder {
    fn new(options: &LogOptions) -> Decoder {
        Decoder {
            since: options.since,
            timestamps: options.timestamps,
            remaining: options.limit_bytes,
            line_start: true,
        }
    }

    /// Appends the output of one line of the file; false once the limit is reached. Lines
    /// that are not entries are skipped.
    fn line(&mut self, line: &[u8], out: &mut BytesMut) -> bool {
        let Some(entry) = Entry::parse(line) else { return true };
        if self.since.is_some_and(|since| entry.time < since) {
            return true;
        }
        let start = out.len();
        if self.timestamps && self.line_start {
            out.extend_from_slice(format_time(entry.time).as_bytes());
            out.extend_from_slice(b" ");
        }
        out.extend_from_slice(entry.text);
        if !entry.partial {
            out.extend_from_slice(b"\n");
        }
        self.line_start = !entry.partial;
        let Some(remaining) = &mut self.remaining else { return true };
        let written = (out.len() - start) as u64;
        if written >= *remaining {
            out.truncate(start + *remaining as usize);
            *remaining = 0;
            return false;
        }
        *remaining -= written;
        true
    }
}

struct Reader {
    path: PathBuf,
    decoder: Decoder,
    follow: bool,
    exited: Exited,
}

/// What names a file whatever its path: a rotated log keeps it, its replacement has another.
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

impl Reader {
    async fn run(mut self, mut file: File, tx: mpsc::Sender<io::Result<Bytes>>) {
        if let Err(e) = self.pump(&mut file, &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    }

    async fn pump(&mut self, file: &mut File, tx: &mpsc::Sender<io::Result<Bytes>>) -> io::Result<()> {
        let mut current = identity(&file.metadata().await?);
        let mut buf = vec![0; BLOCK];
        // The end of a line whose newline has not been read yet.
        let mut pending = Vec::new();
        // The file was seen replaced: one more read of it, then on to the new one.
        let mut replaced = false;
        // The container was seen exited: one more read, then the end.
        let mut exited = false;
        loop {
            let n = file.read(&mut buf).await?;
            if n > 0 {
                pending.extend_from_slice(&buf[..n]);
                let mut out = BytesMut::new();
                let mut used = 0;
                let mut more = true;
                while let Some(newline) = pending[used..].iter().position(|b| *b == b'\n') {
                    more = self.decoder.line(&pending[used..used + newline], &mut out);
                    used += newline + 1;
                    if !more {
                        break;
                    }
                }
                pending.drain(..used);
                if !out.is_empty() && tx.send(Ok(out.freeze())).await.is_err() {
                    return Ok(());
                }
                if !more {
                    return Ok(());
                }
                continue;
            }
            if !self.follow {
                // An entry still being written when the read began: the kubelet gives it too.
                let mut out = BytesMut::new();
                self.decoder.line(&pending, &mut out);
                if !out.is_empty() {
                    let _ = tx.send(Ok(out.freeze())).await;
                }
                return Ok(());
            }
            let now = tokio::fs::metadata(&self.path).await.ok().map(|m| identity(&m));
            if now.is_some_and(|id| id != current) {
                if replaced {
                    *file = File::open(&self.path).await?;
                    current = identity(&file.metadata().await?);
                    pending.clear();
                    replaced = false;
                } else {
                    // The shim may have written its last entries there just before renaming it.
                    replaced = true;
                }
                continue;
            }
            if exited {
                return Ok(());
            }
            if (self.exited)() {
                // Whatever it wrote before exiting is in the file now: read it, then stop.
                exited = true;
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = tx.closed() => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri_log::{Stream, Writer};
    use std::sync::atomic::{AtomicBool, Ordering};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// A log with known times: `a` and `b` at 10:00:0N, then a line logged in two pieces.
    fn sample(dir: &Path) -> PathBuf {
        let path = dir.join("0.log");
        let mut text = Vec::new();
        for (time, stream, partial, line) in [
            ("2024-01-01T10:00:01Z", Stream::Stdout, false, "a"),
            ("2024-01-01T10:00:02.5Z", Stream::Stderr, false, "b"),
            ("2024-01-01T10:00:03Z", Stream::Stdout, true, "c1 "),
            ("2024-01-01T10:00:04Z", Stream::Stdout, false, "c2"),
        ] {
            text.extend(Entry { time: at(time), stream, partial, text: line.as_bytes() }.encode());
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    fn never() -> Exited {
        Arc::new(|| false)
    }

    async fn collect(mut rx: mpsc::Receiver<io::Result<Bytes>>) -> String {
        let mut all = Vec::new();
        while let Some(chunk) = rx.recv().await {
            all.extend_from_slice(&chunk.unwrap());
        }
        String::from_utf8(all).unwrap()
    }

    async fn output(path: &Path, options: LogOptions) -> String {
        collect(read(path, options, never()).await.unwrap()).await
    }

    #[tokio::test]
    async fn partial_entries_join_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = sample(dir.path());
        assert_eq!(output(&path, LogOptions::default()).await, "a\nb\nc1 c2\n");
    }

    #[tokio::test]
    async fn tail_counts_entries_from_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = sample(dir.path());
        let tail = |n| LogOptions { tail_lines: Some(n), ..Default::default() };
        assert_eq!(output(&path, tail(0)).await, "");
        assert_eq!(output(&path, tail(1)).await, "c2\n");
        assert_eq!(output(&path, tail(3)).await, "b\nc1 c2\n");
        assert_eq!(output(&path, tail(100)).await, "a\nb\nc1 c2\n");
    }

    #[tokio::test]
    async fn tail_of_a_file_longer_than_a_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut w = Writer::create(&path, 10 << 20, 5).unwrap();
        for i in 0..5000 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes()).unwrap();
        }
        assert!(std::fs::metadata(&path).unwrap().len() > 3 * BLOCK as u64);
        let out = output(&path, LogOptions { tail_lines: Some(2500), ..Default::default() }).await;
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!((lines.len(), lines[0], lines[2499]), (2500, "line 2500", "line 4999"));
    }

    #[tokio::test]
    async fn since_drops_older_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = sample(dir.path());
        let since = LogOptions { since: Some(at("2024-01-01T10:00:02Z")), ..Default::default() };
        assert_eq!(output(&path, since).await, "b\nc1 c2\n");
    }

    #[tokio::test]
    async fn timestamps_start_each_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = sample(dir.path());
        assert_eq!(
            output(&path, LogOptions { timestamps: true, ..Default::default() }).await,
            "2024-01-01T10:00:01.000000000Z a\n2024-01-01T10:00:02.500000000Z b\n2024-01-01T10:00:03.000000000Z c1 c2\n"
        );
    }

    #[tokio::test]
    async fn limit_bytes_cuts_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let path = sample(dir.path());
        assert_eq!(output(&path, LogOptions { limit_bytes: Some(5), ..Default::default() }).await, "a\nb\nc");
        assert_eq!(output(&path, LogOptions { limit_bytes: Some(4), ..Default::default() }).await, "a\nb\n");
    }

    #[tokio::test]
    async fn a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(&dir.path().join("none.log"), LogOptions::default(), never()).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn follow_sees_new_lines_and_rotation_and_ends_when_the_container_exits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        // Rotates after every second entry.
        let mut w = Writer::create(&path, 100, 5).unwrap();
        w.write(Stream::Stdout, b"before\n").unwrap();
        let exited = Arc::new(AtomicBool::new(false));
        let flag = exited.clone();
        let options = LogOptions { follow: true, ..Default::default() };
        let mut rx = read(&path, options, Arc::new(move || flag.load(Ordering::SeqCst))).await.unwrap();
        assert_eq!(rx.recv().await.unwrap().unwrap(), "before\n");
        let mut seen = String::new();
        for i in 0..6 {
            w.write(Stream::Stdout, format!("follow {i}\n").as_bytes()).unwrap();
            // Slower than the reader polls: it cannot see a file that lived between two polls.
            tokio::time::sleep(POLL + Duration::from_millis(50)).await;
        }
        while seen.lines().count() < 6 {
            let chunk = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("more lines");
            seen.push_str(std::str::from_utf8(&chunk.unwrap().unwrap()).unwrap());
        }
        assert_eq!(seen, (0..6).map(|i| format!("follow {i}\n")).collect::<String>());
        // The last words, then the exit: the reader gives them and ends.
        w.write(Stream::Stdout, b"bye").unwrap();
        w.finish().unwrap();
        exited.store(true, Ordering::SeqCst);
        let rest = tokio::time::timeout(Duration::from_secs(5), collect(rx)).await.expect("the reader ends");
        assert_eq!(rest, "bye\n");
    }

    #[tokio::test]
    async fn follow_ends_when_the_receiver_goes() {
        let dir = tempfile::tempdir().unwrap();
        let path = sample(dir.path());
        // The reader asks whether the container exited at each idle poll: count the asks.
        let asks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = asks.clone();
        let exited: Exited = Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            false
        });
        let mut rx = read(&path, LogOptions { follow: true, ..Default::default() }, exited).await.unwrap();
        rx.recv().await.unwrap().unwrap();
        tokio::time::sleep(POLL * 3).await;
        assert!(asks.load(Ordering::SeqCst) >= 2, "the reader is following");
        drop(rx);
        tokio::time::sleep(POLL * 2).await;
        let after_drop = asks.load(Ordering::SeqCst);
        tokio::time::sleep(POLL * 3).await;
        assert_eq!(asks.load(Ordering::SeqCst), after_drop, "the reader stopped");
    }
}
