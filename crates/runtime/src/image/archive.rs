//! Reading an image archive: `docker save` output or an OCI image layout in a tar, either
//! possibly gzip'd. One pass over the archive stages every file in a scratch folder under
//! the name of its content's digest, so each blob is hashed once, while it is copied, and
//! the formats then look blobs up by digest or by their path in the archive.

use super::compression::decompressed;
use super::digest::{HashingReader, hex_of};
use super::{docker_save, oci_layout};
use anyhow::{Context, bail};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use tar::EntryType;

/// Symlinks may point at symlinks; a chain longer than this is a loop.
const MAX_LINK_HOPS: usize = 8;

/// One image an archive holds, as the formats describe it; digests are given as their hex.
#[derive(Debug)]
pub(crate) struct Found {
    /// Normalized names (none for an image the archive does not name).
    pub names: Vec<String>,
    /// The manifest's digest, when the archive has one (OCI layouts do; `docker save` does not).
    pub manifest: Option<String>,
    /// The config's digest: the image's id.
    pub config: String,
    /// The layer blobs' digests, bottom layer first.
    pub layers: Vec<String>,
    /// The repository the manifest came from, when the names do not say it (an image
    /// pulled by digest has no name, but a repo digest).
    pub repository: Option<String>,
}

/// The files of an archive, staged as `<dir>/<sha256 hex>` and indexed by their path in it.
pub(crate) struct Staged {
    dir: PathBuf,
    paths: HashMap<String, String>,
}

impl Staged {
    /// Blobs already staged under their digests in `dir`, as a pull downloads them.
    pub(crate) fn of_blobs(dir: &Path) -> Staged {
        Staged { dir: dir.to_path_buf(), paths: HashMap::new() }
    }

    /// Stages every file of the archive at `archive` into `dir` (created). A file under
    /// `blobs/sha256/` whose content does not match its name fails the whole read.
    pub(crate) fn read(archive: &Path, dir: &Path) -> anyhow::Result<Staged> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let file = fs::File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
        let mut tar = tar::Archive::new(decompressed(file)?);
        let mut paths = HashMap::new();
        let mut links = Vec::new();
        let incoming = dir.join("incoming");
        for entry in tar.entries().context("the file is not a tar archive")? {
            let mut entry = entry.context("reading the archive")?;
            let path = normalize(&entry.path()?);
            match entry.header().entry_type() {
                EntryType::Regular | EntryType::Continuous => {
                    let hex = stage(&mut entry, &incoming, dir).with_context(|| format!("reading {path}"))?;
                    if let Some(named) = path.strip_prefix("blobs/sha256/")
                        && named != hex
                    {
                        bail!("the blob {path} is corrupt: expected digest sha256:{named}, actual sha256:{hex}");
                    }
                    paths.insert(path, hex);
                }
                // `docker save` writes a layer two images share once, and a symlink to it.
                EntryType::Symlink => {
                    let target = entry.link_name()?.context("a symlink without a target")?;
                    let parent = Path::new(&path).parent().unwrap_or(Path::new(""));
                    links.push((path.clone(), normalize(&parent.join(target))));
                }
                EntryType::Link => {
                    let target = entry.link_name()?.context("a hard link without a target")?;
                    links.push((path, normalize(&target)));
                }
                _ => {}
            }
        }
        for _ in 0..MAX_LINK_HOPS {
            for (path, target) in &links {
                if let Some(hex) = paths.get(target).cloned() {
                    paths.entry(path.clone()).or_insert(hex);
                }
            }
        }
        Ok(Staged { dir: dir.to_path_buf(), paths })
    }

    /// The digest (hex) of the file at `path` in the archive.
    pub(crate) fn digest_of(&self, path: &str) -> Option<&str> {
        self.paths.get(&normalize(Path::new(path))).map(String::as_str)
    }

    /// The contents of the file at `path` in the archive, if it has one.
    pub(crate) fn read_path(&self, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.digest_of(path).map(|hex| self.read_blob(hex)).transpose()
    }

    /// Where the blob with this digest (hex) is staged; it may not exist.
    pub(crate) fn blob_path(&self, hex: &str) -> PathBuf {
        self.dir.join(hex)
    }

    /// The blob with this digest (hex), which the archive must hold.
    pub(crate) fn read_blob(&self, hex: &str) -> anyhow::Result<Vec<u8>> {
        fs::read(self.blob_path(hex)).with_context(|| format!("the archive lacks the blob sha256:{hex}"))
    }

    /// Checks that the archive holds a blob a manifest names, and gives its hex.
    pub(crate) fn require(&self, digest: &str) -> anyhow::Result<String> {
        let hex = hex_of(digest)?;
        if !self.blob_path(hex).is_file() {
            bail!("the archive lacks the blob {digest}");
        }
        Ok(hex.to_string())
    }
}

/// The images of a staged archive, in the format it is in.
pub(crate) fn images(staged: &Staged) -> anyhow::Result<Vec<Found>> {
    // Docker 25 and later write both; the OCI side also carries the manifest digests.
    if staged.digest_of("oci-layout").is_some() && staged.digest_of("index.json").is_some() {
        oci_layout::images(staged).context("reading the OCI image layout")
    } else if staged.digest_of("manifest.json").is_some() {
        docker_save::images(staged).context("reading the docker save manifest.json")
    } else {
        bail!(
            "this is not an image archive: it has neither manifest.json (docker save) nor oci-layout and \
             index.json (OCI image layout); make one with `docker save`, `podman save` or `skopeo copy ... oci-archive:`"
        )
    }
}

/// An archive path as a key: `./a/b/../c` → `a/c`. Nothing is written under these names, so
/// `..` needs no refusing here.
fn normalize(path: &Path) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => parts.push(p.to_str().unwrap_or_default()),
            Component::ParentDir => {
                parts.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    parts.join("/")
}

/// Copies one file into `dir`, named by the hex of its sha256, and gives that hex.
fn stage(reader: &mut impl io::Read, incoming: &Path, dir: &Path) -> anyhow::Result<String> {
    let mut out = fs::File::create(incoming).with_context(|| format!("creating {}", incoming.display()))?;
    let mut hashing = HashingReader::new(reader);
    io::copy(&mut hashing, &mut out)?;
    let (hex, _) = hashing.finish()?;
    fs::rename(incoming, dir.join(&hex))?;
    Ok(hex)
}

#[cfg(test)]
mod tests {
    use super::super::digest::sha256_hex;
    use super::super::testdata::{ArchiveBuilder, gzip};
    use super::*;

    #[test]
    fn stages_files_by_digest_and_follows_links() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = ArchiveBuilder::new()
            .add("./a/layer.tar", b"layer")
            .symlink("b/layer.tar", "../a/layer.tar")
            .symlink("c/layer.tar", "../b/layer.tar")
            .blob(b"blob")
            .build();
        let path = tmp.path().join("archive.tar.gz");
        fs::write(&path, gzip(&archive)).unwrap();
        let staged = Staged::read(&path, &tmp.path().join("staged")).unwrap();
        let layer = sha256_hex(b"layer");
        for path in ["a/layer.tar", "b/layer.tar", "c/layer.tar", "./c/../c/layer.tar"] {
            assert_eq!(staged.digest_of(path), Some(layer.as_str()), "{path}");
        }
        assert_eq!(staged.read_blob(&layer).unwrap(), b"layer");
        assert_eq!(staged.read_path(&format!("blobs/sha256/{}", sha256_hex(b"blob"))).unwrap().unwrap(), b"blob");
        assert_eq!(staged.read_path("missing").unwrap(), None);
        assert!(staged.require(&format!("sha256:{}", sha256_hex(b"absent"))).is_err());
    }

    #[test]
    fn a_blob_that_does_not_match_its_name_is_an_error_naming_both_digests() {
        let tmp = tempfile::tempdir().unwrap();
        let claimed = sha256_hex(b"what it should be");
        let archive = ArchiveBuilder::new().add(&format!("blobs/sha256/{claimed}"), b"what it is").build();
        let path = tmp.path().join("archive.tar");
        fs::write(&path, archive).unwrap();
        let err = format!("{:#}", Staged::read(&path, &tmp.path().join("staged")).err().unwrap());
        assert!(err.contains(&format!("expected digest sha256:{claimed}")), "{err}");
        assert!(err.contains(&format!("actual sha256:{}", sha256_hex(b"what it is"))), "{err}");
    }

    #[test]
    fn says_what_to_do_with_a_tar_that_is_no_image_archive() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("archive.tar");
        fs::write(&path, ArchiveBuilder::new().add("hello.txt", b"hi").build()).unwrap();
        let staged = Staged::read(&path, &tmp.path().join("staged")).unwrap();
        let err = format!("{:#}", images(&staged).unwrap_err());
        assert!(err.contains("docker save"), "{err}");
    }
}
