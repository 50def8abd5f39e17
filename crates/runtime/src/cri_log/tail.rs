//! The end of what a container printed, read at once: what the kubelet reports as the
//! termination message of a container whose `terminationMessagePolicy` is
//! `FallbackToLogsOnError` and whose message file is empty.

use super::Entry;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// The last `lines` lines of the log at `path`, cut to their last `max_bytes` bytes. Only the
/// file's last block is read: the answer is small, however long the log.
pub fn tail(path: &Path, lines: usize, max_bytes: usize) -> io::Result<String> {
    // Enough for the lines wanted even when every entry carries its ~40-byte prefix.
    let window = (max_bytes as u64 + 64) * 4;
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(window);
    file.seek(SeekFrom::Start(start))?;
    let mut raw = Vec::new();
    file.read_to_end(&mut raw)?;
    // Starting mid-file, the first line is likely cut: it is dropped.
    let whole = if start > 0 { raw.splitn(2, |b| *b == b'\n').nth(1).unwrap_or(&[]) } else { &raw[..] };
    let mut text = Vec::new();
    for entry in whole.split(|b| *b == b'\n').filter_map(Entry::parse) {
        text.extend_from_slice(entry.text);
        if !entry.partial {
            text.push(b'\n');
        }
    }
    // The newline ending the text does not start a line of its own.
    let body_end = text.len() - usize::from(text.last() == Some(&b'\n'));
    let mut begin = 0;
    let mut seen = 0;
    for i in (0..body_end).rev() {
        if text[i] == b'\n' {
            seen += 1;
            if seen == lines {
                begin = i + 1;
                break;
            }
        }
    }
    let begin = begin.max(text.len().saturating_sub(max_bytes));
    Ok(String::from_utf8_lossy(&text[begin..]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri_log::Stream;

    fn log(dir: &Path, lines: &[(&str, bool)]) -> std::path::PathBuf {
        let time = chrono::Utc::now();
        let path = dir.join("0.log");
        let mut bytes = Vec::new();
        for (text, partial) in lines {
            let entry = Entry { time, stream: Stream::Stderr, partial: *partial, text: text.as_bytes() };
            bytes.extend(entry.encode());
        }
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn keeps_the_last_lines_joined_from_their_parts() {
        let dir = tempfile::tempdir().unwrap();
        let path = log(dir.path(), &[("one", false), ("tw", true), ("o", false), ("three", false)]);
        assert_eq!(tail(&path, 80, 2048).unwrap(), "one\ntwo\nthree\n");
        assert_eq!(tail(&path, 2, 2048).unwrap(), "two\nthree\n");
        assert_eq!(tail(&path, 2, 4).unwrap(), "ree\n");
    }

    #[test]
    fn reads_only_the_end_of_a_long_log() {
        let dir = tempfile::tempdir().unwrap();
        let many: Vec<String> = (0..10_000).map(|i| format!("line {i}")).collect();
        let lines: Vec<(&str, bool)> = many.iter().map(|l| (l.as_str(), false)).collect();
        let path = log(dir.path(), &lines);
        let text = tail(&path, 3, 2048).unwrap();
        assert_eq!(text, "line 9997\nline 9998\nline 9999\n");
    }
}
