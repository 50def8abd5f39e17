//! The images of a `docker save` archive: `manifest.json` lists, for each image, its config
//! and its layer tars by their paths in the archive (`<id>/layer.tar` in the classic layout,
//! `blobs/sha256/<hex>` since Docker 25), and its repo tags.

use super::archive::{Found, Staged};
use super::reference::normalize;
use anyhow::{Context, bail};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// The images `manifest.json` lists.
pub(crate) fn images(staged: &Staged) -> anyhow::Result<Vec<Found>> {
    let manifest = staged.read_path("manifest.json")?.context("the archive lacks manifest.json")?;
    let entries: Vec<Entry> =
        serde_json::from_slice(&manifest).context("manifest.json is not a docker save manifest")?;
    entries.into_iter().map(|entry| found(staged, entry)).collect()
}

fn found(staged: &Staged, entry: Entry) -> anyhow::Result<Found> {
    let file = |path: &str| match staged.digest_of(path) {
        Some(hex) => Ok(hex.to_string()),
        None => bail!("manifest.json names {path}, which the archive lacks"),
    };
    let names =
        entry.repo_tags.unwrap_or_default().iter().map(|tag| normalize(tag)).collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Found {
        names,
        manifest: None,
        config: file(&entry.config)?,
        layers: entry.layers.iter().map(|l| file(l)).collect::<anyhow::Result<_>>()?,
        repository: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::digest::sha256_hex;
    use super::super::testdata::{ArchiveBuilder, LayerBuilder, TestImage, docker_save, staged};
    use super::*;

    #[test]
    fn lists_configs_layers_and_normalized_tags() {
        let tmp = tempfile::tempdir().unwrap();
        let base = LayerBuilder::new().file("a", b"a", 0o644).build();
        let top = LayerBuilder::new().file("b", b"b", 0o644).build();
        let one = TestImage::new(vec![base.clone(), top.clone()], "one");
        let two = TestImage::new(vec![base.clone()], "two");
        let staged = staged(docker_save(&[(&one, &["busybox:1", "foo/bar"]), (&two, &[])]), tmp.path());
        let found = images(&staged).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].names, ["docker.io/library/busybox:1", "docker.io/foo/bar:latest"]);
        assert_eq!(found[0].config, sha256_hex(&one.config));
        assert_eq!(found[0].layers, [sha256_hex(&base), sha256_hex(&top)]);
        assert_eq!(found[0].manifest, None);
        assert!(found[1].names.is_empty());
        assert_eq!(found[1].layers, [sha256_hex(&base)]);
    }

    #[test]
    fn a_layer_the_archive_lacks_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let manifest = br#"[{"Config":"c.json","RepoTags":["x"],"Layers":["gone/layer.tar"]}]"#;
        let staged =
            staged(ArchiveBuilder::new().add("c.json", b"{}").add("manifest.json", manifest).build(), tmp.path());
        let err = format!("{:#}", images(&staged).unwrap_err());
        assert!(err.contains("gone/layer.tar"), "{err}");
    }
}
