//! `index.json`: the store's images, each with its names, and the blobs it holds on to.
//!
//! Readers (find, list) read the file without a lock: it is only ever replaced whole, by a
//! rename. Writers (import, remove) hold `lock` for their whole change of blobs, layers and
//! index, so that an agent and a `skiff image` command can share a store.

use super::Image;
use super::reference::normalize;
use anyhow::{Context, bail};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

/// All images, by id.
#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Index {
    pub images: BTreeMap<String, Record>,
}

/// One image and the blobs (hex digests of its manifest, config and layer blobs) it keeps.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    #[serde(flatten)]
    pub image: Image,
    pub blobs: Vec<String>,
}

/// How a reference matched an image.
#[derive(Debug, PartialEq)]
pub(crate) enum Match {
    /// By one of its names (normalized).
    Name(String),
    /// By its id, a prefix of it, or a repo digest: the image itself rather than a name.
    Image,
}

/// Takes the store's writer lock (blocking while another writer holds it).
pub(crate) fn lock(root: &Path) -> anyhow::Result<Flock<fs::File>> {
    let path = root.join("lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("locking {}", path.display()))
}

impl Index {
    /// The index at `path`; empty when there is none yet.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Index> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("{} is corrupt", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Replaces the index at `path` durably: a reader or a crash sees the old or the new one.
    pub(crate) fn save(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("json.tmp");
        let mut file = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(&serde_json::to_vec_pretty(self)?)?;
        file.sync_all()?;
        fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
        fs::File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()?;
        Ok(())
    }

    /// Adds an image, or merges it into the record of the same id. Its names move off any
    /// other image, as `docker load` moves a tag; that image stays, findable by id.
    pub(crate) fn add(&mut self, record: Record) {
        for other in self.images.values_mut().filter(|r| r.image.id != record.image.id) {
            other.image.names.retain(|n| !record.image.names.contains(n));
        }
        match self.images.get_mut(&record.image.id) {
            Some(existing) => {
                let image = &mut existing.image;
                union(&mut image.names, &record.image.names);
                union(&mut image.repo_digests, &record.image.repo_digests);
                union(&mut existing.blobs, &record.blobs);
                image.size = record.image.size;
            }
            None => {
                self.images.insert(record.image.id.clone(), record);
            }
        }
    }

    /// The image a reference names: a name (normalized first), a repo digest, `sha256:<id>`,
    /// or a prefix of an id that only one image has, as `docker` accepts them.
    pub(crate) fn resolve(&self, reference: &str) -> anyhow::Result<Option<(&Record, Match)>> {
        if let Some(prefix) = reference.strip_prefix("sha256:") {
            return self.by_id_prefix(prefix);
        }
        match normalize(reference) {
            Ok(name) => {
                for record in self.images.values() {
                    if record.image.names.contains(&name) {
                        return Ok(Some((record, Match::Name(name))));
                    }
                    if record.image.repo_digests.contains(&name) {
                        return Ok(Some((record, Match::Image)));
                    }
                }
            }
            Err(e) if !is_hex(reference) => return Err(e),
            Err(_) => {}
        }
        if is_hex(reference) { self.by_id_prefix(reference) } else { Ok(None) }
    }

    fn by_id_prefix(&self, prefix: &str) -> anyhow::Result<Option<(&Record, Match)>> {
        if !is_hex(prefix) {
            bail!("{prefix:?} is not an image id: ids are hex digits");
        }
        let mut matching = self.images.values().filter(|r| r.image.id["sha256:".len()..].starts_with(prefix));
        match (matching.next(), matching.next()) {
            (Some(record), None) => Ok(Some((record, Match::Image))),
            (None, _) => Ok(None),
            (Some(_), Some(_)) => bail!("more than one image has an id starting with {prefix}: give more of the id"),
        }
    }
}

/// Lowercase hex, at most a digest long: what an image id or a prefix of one looks like.
fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Appends the items of `more` that `list` lacks, keeping the order.
fn union(list: &mut Vec<String>, more: &[String]) {
    for item in more {
        if !list.contains(item) {
            list.push(item.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id_hex: &str, names: &[&str]) -> Record {
        let image = Image {
            id: format!("sha256:{id_hex:0<64}"),
            names: names.iter().map(|n| n.to_string()).collect(),
            repo_digests: Vec::new(),
            size: 1,
            diff_ids: Vec::new(),
            config: Default::default(),
        };
        Record { image, blobs: vec![format!("{id_hex:0<64}")] }
    }

    #[test]
    fn finds_by_name_id_and_unique_prefix() {
        let mut index = Index::default();
        index.add(record("abc1", &["docker.io/library/busybox:latest"]));
        index.add(record("abc2", &["ghcr.io/x/y:1"]));
        let find = |r: &str| index.resolve(r).unwrap().map(|(rec, how)| (rec.image.id[7..11].to_string(), how));
        assert_eq!(find("busybox"), Some(("abc1".into(), Match::Name("docker.io/library/busybox:latest".into()))));
        assert_eq!(find("ghcr.io/x/y:1").map(|f| f.0), Some("abc2".into()));
        assert_eq!(find("abc2"), Some(("abc2".into(), Match::Image)));
        assert_eq!(find(&format!("sha256:{:0<64}", "abc1")).map(|f| f.0), Some("abc1".into()));
        assert_eq!(find("busybox:2"), None);
        assert_eq!(find("fff"), None);
        assert!(index.resolve("abc").is_err(), "an ambiguous prefix");
        assert!(index.resolve("Not/Valid").is_err());
    }

    #[test]
    fn a_name_moves_to_the_image_added_last() {
        let mut index = Index::default();
        index.add(record("aaaa", &["docker.io/library/app:1", "docker.io/library/app:latest"]));
        index.add(record("bbbb", &["docker.io/library/app:latest"]));
        index.add(record("bbbb", &["docker.io/library/app:2"]));
        let names = |id: &str| index.images[&format!("sha256:{id:0<64}")].image.names.clone();
        assert_eq!(names("aaaa"), ["docker.io/library/app:1"]);
        assert_eq!(names("bbbb"), ["docker.io/library/app:latest", "docker.io/library/app:2"]);
    }

    #[test]
    fn saves_and_loads() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("index.json");
        assert!(Index::load(&path).unwrap().images.is_empty());
        let mut index = Index::default();
        index.add(record("abcd", &["docker.io/library/busybox:latest"]));
        index.save(&path).unwrap();
        let loaded = Index::load(&path).unwrap();
        assert_eq!(
            loaded.images.values().map(|r| r.image.clone()).collect::<Vec<_>>(),
            [record("abcd", &[]).image].map(|mut i| {
                i.names = vec!["docker.io/library/busybox:latest".into()];
                i
            })
        );
        fs::write(&path, b"{").unwrap();
        assert!(format!("{:#}", Index::load(&path).err().unwrap()).contains("corrupt"));
    }
}
