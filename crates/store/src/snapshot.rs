//! Snapshots: every pair of a store at one revision, in a file that any backend can be restored
//! from, so a cluster saved on the embedded store can come back on etcd and the other way round.
//!
//! The file is gzip (whose CRC-32 and length trailer tell a damaged or cut file) holding a header
//! line, `skiff-snapshot/1 revision=R pairs=N`, then N pairs, each a key and a value preceded by
//! their lengths (32-bit, big-endian), then the word `end`. A snapshot is read and checked whole
//! before a restore touches the store.
//!
//! Restoring writes the difference: keys missing from the store are created, keys whose value
//! differs are updated, and keys the snapshot does not have are deleted. Through the store's own
//! writes, revisions keep growing and every watch sees the changes as events, so the servers on
//! the store need no restart.

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Read, Write};

use bytes::Bytes;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use crate::{Error, RangeRequest, Result, Store};

/// Every key: a snapshot is of the whole store.
const EVERY_KEY: &str = "/";
const FORMAT: &str = "skiff-snapshot/1";
const END: &[u8] = b"end";
/// How many pairs each read of a save asks for.
const PAGE: usize = 1000;
/// How many times a restore retries a key that a live cluster changed under it.
const RACE_RETRIES: usize = 5;

/// A store's pairs at one revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The store's revision the pairs were read at.
    pub revision: i64,
    pub pairs: BTreeMap<String, Bytes>,
}

/// What a restore changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
}

impl Snapshot {
    /// Reads every pair in `store`, page by page at one revision.
    pub async fn take(store: &dyn Store) -> Result<Snapshot> {
        let mut snapshot = Snapshot::default();
        let mut request = RangeRequest { prefix: EVERY_KEY.to_owned(), limit: PAGE, ..Default::default() };
        loop {
            let page = store.range(request.clone()).await?;
            request.revision = page.revision;
            request.start_after = page.kvs.last().map(|kv| kv.key.clone());
            snapshot.pairs.extend(page.kvs.into_iter().map(|kv| (kv.key, kv.value)));
            if !page.more {
                snapshot.revision = page.revision;
                return Ok(snapshot);
            }
        }
    }

    pub fn write_to(&self, out: impl Write) -> std::io::Result<()> {
        let mut out = GzEncoder::new(BufWriter::new(out), Compression::fast());
        writeln!(out, "{FORMAT} revision={} pairs={}", self.revision, self.pairs.len())?;
        for (key, value) in &self.pairs {
            write_field(&mut out, key.as_bytes())?;
            write_field(&mut out, value)?;
        }
        out.write_all(END)?;
        out.finish()?.flush()
    }

    /// Reads a snapshot written by [`Snapshot::write_to`], refusing one that is damaged or cut.
    pub fn read_from(input: impl Read) -> Result<Snapshot> {
        let mut bytes = Vec::new();
        GzDecoder::new(BufReader::new(input))
            .read_to_end(&mut bytes)
            .map_err(|e| damaged(format!("it is not an intact gzip file ({e})")))?;
        let mut rest = bytes.as_slice();
        let (revision, count) = header(&mut rest)?;
        let mut pairs = BTreeMap::new();
        for _ in 0..count {
            let key = String::from_utf8(read_field(&mut rest)?.to_vec()).map_err(|_| damaged("a key is not UTF-8"))?;
            pairs.insert(key, Bytes::copy_from_slice(read_field(&mut rest)?));
        }
        if rest != END {
            return Err(damaged(format!("it does not end after its {count} pairs")));
        }
        Ok(Snapshot { revision, pairs })
    }

    /// Makes `store` hold what the snapshot holds.
    pub async fn restore(&self, store: &dyn Store) -> Result<Restored> {
        let mut restored = Restored::default();
        let present = Snapshot::take(store).await?;
        for key in present.pairs.keys().filter(|key| !self.pairs.contains_key(*key)) {
            match store.delete(key, None).await {
                Ok(_) => restored.deleted += 1,
                // Someone else deleted it first: that is what restoring wants.
                Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        for (key, value) in &self.pairs {
            match self.put(store, key, value).await? {
                Put::Created => restored.created += 1,
                Put::Updated => restored.updated += 1,
                Put::Unchanged => restored.unchanged += 1,
            }
        }
        Ok(restored)
    }

    /// Gives `key` the value `value`, reading it again when a live cluster changes it meanwhile.
    async fn put(&self, store: &dyn Store, key: &str, value: &Bytes) -> Result<Put> {
        let mut attempts = 0;
        loop {
            let written = match store.get(key).await? {
                None => store.create(key, value.clone()).await.map(|_| Put::Created),
                Some(current) if current.value == *value => return Ok(Put::Unchanged),
                Some(current) => store.update(key, value.clone(), current.mod_revision).await.map(|_| Put::Updated),
            };
            attempts += 1;
            match written {
                Err(e @ (Error::AlreadyExists | Error::NotFound | Error::Conflict { .. }))
                    if attempts == RACE_RETRIES =>
                {
                    return Err(Error::Backend(format!("{key} kept changing during the restore: {e}")));
                }
                Err(Error::AlreadyExists | Error::NotFound | Error::Conflict { .. }) => {}
                outcome => return outcome,
            }
        }
    }
}

enum Put {
    Created,
    Updated,
    Unchanged,
}

fn write_field(out: &mut impl Write, field: &[u8]) -> std::io::Result<()> {
    let length = u32::try_from(field.len()).map_err(|_| std::io::Error::other("a value over 4 GiB"))?;
    out.write_all(&length.to_be_bytes())?;
    out.write_all(field)
}

fn read_field<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8]> {
    let (length, after) = rest.split_first_chunk::<4>().ok_or_else(|| damaged("it ends inside a pair"))?;
    let length = u32::from_be_bytes(*length) as usize;
    if after.len() < length {
        return Err(damaged("it ends inside a pair"));
    }
    let (field, after) = after.split_at(length);
    *rest = after;
    Ok(field)
}

/// The revision and the pair count of the header line.
fn header(rest: &mut &[u8]) -> Result<(i64, usize)> {
    let end = rest.iter().position(|&b| b == b'\n').ok_or_else(|| damaged("it has no header"))?;
    let line = std::str::from_utf8(&rest[..end]).map_err(|_| damaged("its header is not text"))?;
    *rest = &rest[end + 1..];
    let mut words = line.split(' ');
    if words.next() != Some(FORMAT) {
        return Err(Error::Backend(format!("not a skiff snapshot of a format this skiff reads ({FORMAT}): {line:?}")));
    }
    let mut field = |name: &str| {
        words.next().and_then(|word| word.strip_prefix(name)).ok_or_else(|| damaged(format!("its header lacks {name}")))
    };
    let revision = field("revision=")?.parse().map_err(|_| damaged("its revision is not a number"))?;
    let count = field("pairs=")?.parse().map_err(|_| damaged("its pair count is not a number"))?;
    Ok((revision, count))
}

fn damaged(why: impl std::fmt::Display) -> Error {
    Error::Backend(format!("the snapshot is damaged: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        let pairs = [("/registry/a", "1"), ("/registry/b/c", ""), ("/registry/d", "{\"x\":1}")];
        let pairs = pairs.into_iter().map(|(k, v)| (k.to_owned(), Bytes::from(v))).collect();
        Snapshot { revision: 42, pairs }
    }

    fn written(snapshot: &Snapshot) -> Vec<u8> {
        let mut file = Vec::new();
        snapshot.write_to(&mut file).unwrap();
        file
    }

    #[test]
    fn a_snapshot_reads_back_as_written() {
        assert_eq!(Snapshot::read_from(written(&sample()).as_slice()).unwrap(), sample());
        let empty = Snapshot { revision: 1, pairs: BTreeMap::new() };
        assert_eq!(Snapshot::read_from(written(&empty).as_slice()).unwrap(), empty);
    }

    #[test]
    fn a_cut_or_damaged_snapshot_is_refused() {
        let file = written(&sample());
        for cut in [0, 10, file.len() / 2, file.len() - 1] {
            let e = Snapshot::read_from(&file[..cut]).unwrap_err();
            assert!(e.to_string().contains("damaged"), "cut at {cut}: {e}");
        }
        let mut flipped = file.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x40;
        assert!(Snapshot::read_from(flipped.as_slice()).unwrap_err().to_string().contains("damaged"));
    }

    #[test]
    fn another_format_is_named() {
        let mut other = GzEncoder::new(Vec::new(), Compression::fast());
        other.write_all(b"skiff-snapshot/9 revision=1 pairs=0\nend").unwrap();
        let e = Snapshot::read_from(other.finish().unwrap().as_slice()).unwrap_err();
        assert!(e.to_string().contains("skiff-snapshot/1"), "{e}");
    }
}
