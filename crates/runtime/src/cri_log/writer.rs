//! Writing a container's output as CRI log entries, with the kubelet's rotation.
//!
//! The shim hands over raw chunks as it reads them from the container's pipes. A chunk may end
//! in the middle of a line, so each stream keeps its unfinished line until the newline comes;
//! a line that grows past [`MAX_ENTRY`] goes out in `P` pieces, as containerd does, so that a
//! program printing without newlines neither grows the shim's memory nor hides its output.

use super::{Entry, Stream};
use chrono::Utc;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The longest text one entry carries (containerd's and CRI-O's line buffer).
pub const MAX_ENTRY: usize = 16 * 1024;

pub struct Writer {
    path: PathBuf,
    file: File,
    /// The size of the current file.
    size: u64,
    max_bytes: u64,
    max_files: usize,
    /// The unfinished line of stdout and of stderr.
    pending: [Vec<u8>; 2],
}

impl Writer {
    /// Opens the log at `path` for appending (creating it and its folders). The file is
    /// rotated once it passes `max_bytes`, keeping `max_files` files in all (the kubelet's
    /// containerLogMaxSize and containerLogMaxFiles, 10Mi and 5 by default).
    pub fn create(path: &Path, max_bytes: u64, max_files: usize) -> io::Result<Writer> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = open(path)?;
        let size = file.metadata()?.len();
        Ok(Writer { path: path.to_path_buf(), file, size, max_bytes, max_files, pending: Default::default() })
    }

    /// Takes a chunk of what the container wrote to `stream`: its complete lines become `F`
    /// entries, and the rest waits for its newline (or for [`Writer::finish`]).
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        let index = stream as usize;
        let mut pending = std::mem::take(&mut self.pending[index]);
        pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(newline) = pending[start..].iter().position(|b| *b == b'\n') {
            let mut line = &pending[start..start + newline];
            // A terminal ends lines with CRLF; like containerd, keep the text only.
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            self.line(stream, line, true)?;
            start += newline + 1;
        }
        // Of an unfinished line longer than an entry, whole pieces go out now and the last
        // 1..=MAX_ENTRY bytes wait.
        let rest = pending.len() - start;
        let out = if rest > MAX_ENTRY { rest - (rest - 1) % MAX_ENTRY - 1 } else { 0 };
        self.line(stream, &pending[start..start + out], false)?;
        pending.drain(..start + out);
        self.pending[index] = pending;
        Ok(())
    }

    /// Writes out what is left of unfinished lines as whole lines (the container has exited or
    /// closed the stream, so nothing more will come).
    pub fn finish(&mut self) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let pending = std::mem::take(&mut self.pending[stream as usize]);
            if !pending.is_empty() {
                self.line(stream, &pending, true)?;
            }
        }
        self.file.flush()
    }

    /// Writes `text` as entries of at most [`MAX_ENTRY`] bytes; all but the last are `P`, and
    /// the last is `F` if `complete`. Nothing at all is written for empty unfinished text.
    fn line(&mut self, stream: Stream, text: &[u8], complete: bool) -> io::Result<()> {
        if text.is_empty() && !complete {
            return Ok(());
        }
        let pieces = text.len().div_ceil(MAX_ENTRY).max(1);
        for (i, piece) in text.chunks(MAX_ENTRY).chain((text.is_empty()).then_some(&b""[..])).enumerate() {
            let partial = i + 1 < pieces || !complete;
            self.entry(&Entry { time: Utc::now(), stream, partial, text: piece })?;
        }
        Ok(())
    }

    /// Appends one entry in a single write, so that a reader never sees half of one unless it
    /// reads while the write is under way; then rotates if the file has grown too big.
    fn entry(&mut self, entry: &Entry) -> io::Result<()> {
        let line = entry.encode();
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        if self.size > self.max_bytes {
            self.rotate()?;
        }
        Ok(())
    }

    /// Renames the file to `<name>.<UTC time>` (the kubelet's `20060102-150405`), starts a new
    /// one, and deletes the oldest rotated files beyond `max_files - 1`.
    fn rotate(&mut self) -> io::Result<()> {
        let name = file_name(&self.path);
        let stamp = Utc::now().format("%Y%m%d-%H%M%S").to_string();
        let mut old = rotated_files(&self.path)?;
        // Rotations within one second: number the later ones, after any kept of that second,
        // rather than overwrite.
        let (n, rotated) = match old.iter().filter(|((s, _), _)| *s == stamp).map(|((_, n), _)| n + 1).max() {
            None => (0, self.path.with_file_name(format!("{name}.{stamp}"))),
            Some(n) => (n, self.path.with_file_name(format!("{name}.{stamp}.{n}"))),
        };
        std::fs::rename(&self.path, &rotated)?;
        self.file = open(&self.path)?;
        self.size = 0;
        old.push(((stamp, n), rotated));
        let keep = self.max_files.saturating_sub(1);
        if old.len() > keep {
            old.sort();
            for (_, path) in &old[..old.len() - keep] {
                std::fs::remove_file(path)?;
            }
        }
        Ok(())
    }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The rotated files of the log at `path`, each with what orders them (its time, then its
/// number within that second).
fn rotated_files(path: &Path) -> io::Result<Vec<((String, u32), PathBuf)>> {
    let prefix = format!("{}.", file_name(path));
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(suffix) = name.strip_prefix(&prefix) else { continue };
        let (stamp, n) = match suffix.split_once('.') {
            Some((stamp, n)) => match n.parse() {
                Ok(n) => (stamp, n),
                Err(_) => continue,
            },
            None => (suffix, 0),
        };
        let is_stamp = stamp.len() == 15
            && stamp.bytes().enumerate().all(|(i, b)| if i == 8 { b == b'-' } else { b.is_ascii_digit() });
        if is_stamp {
            found.push(((stamp.to_string(), n), entry.path()));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(path: &Path) -> Vec<(String, String, String)> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines()
            .map(|l| {
                let e = Entry::parse(l.as_bytes()).unwrap_or_else(|| panic!("not an entry: {l:?}"));
                let tag = if e.partial { "P" } else { "F" };
                (e.stream.as_str().to_string(), tag.to_string(), String::from_utf8(e.text.to_vec()).unwrap())
            })
            .collect()
    }

    fn e(stream: &str, tag: &str, text: &str) -> (String, String, String) {
        (stream.into(), tag.into(), text.into())
    }

    #[test]
    fn lines_become_entries_and_unfinished_lines_wait_for_their_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/app/0.log");
        let mut w = Writer::create(&path, 10 << 20, 5).unwrap();
        w.write(Stream::Stdout, b"one\ntw").unwrap();
        w.write(Stream::Stderr, b"oops\r\n").unwrap();
        w.write(Stream::Stdout, b"o\n\nthr").unwrap();
        assert_eq!(
            entries(&path),
            vec![e("stdout", "F", "one"), e("stderr", "F", "oops"), e("stdout", "F", "two"), e("stdout", "F", "")]
        );
        w.finish().unwrap();
        assert_eq!(entries(&path).last(), Some(&e("stdout", "F", "thr")));
        // Reopening appends.
        let mut w = Writer::create(&path, 10 << 20, 5).unwrap();
        w.write(Stream::Stdout, b"four\n").unwrap();
        assert_eq!(entries(&path).len(), 6);
    }

    #[test]
    fn long_lines_go_out_in_partial_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut w = Writer::create(&path, 10 << 20, 5).unwrap();
        let long = "x".repeat(MAX_ENTRY * 2 + 10);
        w.write(Stream::Stdout, long.as_bytes()).unwrap();
        let written = entries(&path);
        assert_eq!(written.len(), 2, "two whole pieces out, the rest waits");
        assert!(written.iter().all(|(_, tag, text)| tag == "P" && text.len() == MAX_ENTRY));
        w.write(Stream::Stdout, b"\n").unwrap();
        assert_eq!(entries(&path)[2], e("stdout", "F", &"x".repeat(10)));
        // A complete line longer than an entry: pieces, the last one F.
        w.write(Stream::Stderr, format!("{}\n", "y".repeat(MAX_ENTRY + 1)).as_bytes()).unwrap();
        let tags: Vec<_> = entries(&path)[3..].iter().map(|(_, t, x)| (t.clone(), x.len())).collect();
        assert_eq!(tags, vec![("P".to_string(), MAX_ENTRY), ("F".to_string(), 1)]);
    }

    #[test]
    fn rotation_renames_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut w = Writer::create(&path, 100, 3).unwrap();
        for i in 0..20 {
            w.write(Stream::Stdout, format!("line number {i:02} with some padding\n").as_bytes()).unwrap();
        }
        let mut names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names.len(), 3, "{names:?}");
        assert_eq!(names[0], "0.log");
        assert!(names[1..].iter().all(|n| n.starts_with("0.log.") && n.len() >= "0.log.20260101-000000".len()));
        // The newest lines are in the current file, the ones before in the rotated files.
        let current = entries(&path);
        assert!(current.is_empty() || current.last().unwrap().2.contains("19"));
        let mut rotated = rotated_files(&path).unwrap();
        rotated.sort();
        let newest_rotated = entries(&rotated.last().unwrap().1);
        assert!(newest_rotated.iter().any(|(_, _, t)| t.contains(if current.is_empty() { "19" } else { "18" })));
        assert!(std::fs::metadata(&path).unwrap().len() <= 100);
    }
}
