//! The images of an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`), as
//! `skopeo copy ... oci-archive:`, `podman save --format oci-archive`, `ctr export` and
//! Docker 25+ write them.
//!
//! Each entry of `index.json` is one image: a manifest, or an image index (a multi-platform
//! image) from which the manifest for this machine (linux and its architecture) is taken.
//! Names come from the entry's annotations: `io.containerd.image.name` holds a full name;
//! `org.opencontainers.image.ref.name` often holds only a tag (`latest`), which names no
//! repository, so it is used only when it is a full reference.

use super::archive::{Found, Staged};
use super::reference::normalize;
use anyhow::{Context, bail};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

const CONTAINERD_NAME: &str = "io.containerd.image.name";
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// An index nested in an index is legal; deeper than this it is a loop or an attack.
const MAX_INDEX_DEPTH: usize = 4;

/// This machine's architecture as images name it (Go's GOARCH).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// The images `index.json` lists, each for this machine's platform.
pub(crate) fn images(staged: &Staged) -> anyhow::Result<Vec<Found>> {
    let index = staged.read_path("index.json")?.context("the archive lacks index.json")?;
    let index: ImageIndex = serde_json::from_slice(&index).context("index.json is not an OCI image index")?;
    let mut found = Vec::new();
    let mut other_platforms = Vec::new();
    for descriptor in index.manifests() {
        if let Some(platform) = foreign_platform(descriptor) {
            other_platforms.push(platform);
            continue;
        }
        let names = names(descriptor)?;
        if let Some(manifest) = manifest_for_host(staged, descriptor, 0)? {
            found.push(image(staged, manifest, names)?);
        }
    }
    if found.is_empty() && !other_platforms.is_empty() {
        bail!("the archive has no image for linux/{}, only for {}", host_arch(), other_platforms.join(", "));
    }
    Ok(found)
}

/// `os/arch` of a descriptor made for another platform than this machine; None when it has
/// no platform or this one.
pub(crate) fn foreign_platform(descriptor: &Descriptor) -> Option<String> {
    let platform = descriptor.platform().as_ref()?;
    let (os, arch) = (platform.os().to_string(), platform.architecture().to_string());
    (os != "linux" || arch != host_arch()).then(|| format!("{os}/{arch}"))
}

/// The image's names from its `index.json` annotations.
fn names(descriptor: &Descriptor) -> anyhow::Result<Vec<String>> {
    let Some(annotations) = descriptor.annotations() else { return Ok(Vec::new()) };
    let name = match (annotations.get(CONTAINERD_NAME), annotations.get(REF_NAME)) {
        (Some(name), _) => name,
        (None, Some(name)) if name.contains(['/', ':', '@']) => name,
        _ => return Ok(Vec::new()),
    };
    Ok(vec![normalize(name)?])
}

pub(crate) fn is_index(media_type: &str) -> bool {
    media_type == "application/vnd.oci.image.index.v1+json"
        || media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
}

pub(crate) fn is_manifest(media_type: &str) -> bool {
    media_type == "application/vnd.oci.image.manifest.v1+json"
        || media_type == "application/vnd.docker.distribution.manifest.v2+json"
}

/// The digest (hex) of the manifest a descriptor stands for on this machine, descending into
/// image indexes; None for content that is no image (signatures, attestations, artifacts).
fn manifest_for_host(staged: &Staged, descriptor: &Descriptor, depth: usize) -> anyhow::Result<Option<String>> {
    let media_type = descriptor.media_type().to_string();
    let digest = descriptor.digest().to_string();
    if is_manifest(&media_type) {
        return staged.require(&digest).map(Some);
    }
    if !is_index(&media_type) {
        tracing::debug!(%digest, %media_type, "skipping content that is not an image");
        return Ok(None);
    }
    if depth >= MAX_INDEX_DEPTH {
        bail!("image indexes nest deeper than {MAX_INDEX_DEPTH} levels");
    }
    let index: ImageIndex = serde_json::from_slice(&staged.read_blob(&staged.require(&digest)?)?)
        .with_context(|| format!("{digest} is not an image index"))?;
    let mut platforms = Vec::new();
    for entry in index.manifests() {
        match foreign_platform(entry) {
            Some(platform) => platforms.push(platform),
            None if entry.platform().is_some() => return manifest_for_host(staged, entry, depth + 1),
            None => {}
        }
    }
    bail!(
        "the multi-platform image {digest} has no manifest for linux/{}, only for {}",
        host_arch(),
        platforms.join(", ")
    )
}

fn image(staged: &Staged, manifest: String, names: Vec<String>) -> anyhow::Result<Found> {
    let parsed: ImageManifest = serde_json::from_slice(&staged.read_blob(&manifest)?)
        .with_context(|| format!("sha256:{manifest} is not an image manifest"))?;
    let layers = parsed.layers().iter().map(|l| staged.require(l.digest().as_ref())).collect::<anyhow::Result<_>>()?;
    Ok(Found {
        names,
        config: staged.require(parsed.config().digest().as_ref())?,
        manifest: Some(manifest),
        layers,
        repository: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::digest::sha256_hex;
    use super::super::testdata::{ArchiveBuilder, LayerBuilder, TestImage, descriptor, oci_layout, staged};
    use super::*;
    use serde_json::json;

    fn image() -> TestImage {
        TestImage::new(vec![LayerBuilder::new().file("a", b"a", 0o644).build()], "x").gzipped()
    }

    #[test]
    fn names_come_from_containerd_or_full_ref_names_only() {
        let cases = [
            (json!({CONTAINERD_NAME: "busybox:1", REF_NAME: "1"}), vec!["docker.io/library/busybox:1"]),
            (json!({REF_NAME: "ghcr.io/a/b:v2"}), vec!["ghcr.io/a/b:v2"]),
            (json!({REF_NAME: "latest"}), vec![]),
            (json!({}), vec![]),
        ];
        for (annotations, want) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let image = image();
            let found = images(&staged(oci_layout(&image, annotations.clone()), tmp.path())).unwrap();
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].names, want, "{annotations}");
            assert_eq!(found[0].manifest, Some(sha256_hex(&image.manifest())));
            assert_eq!(found[0].config, sha256_hex(&image.config));
            assert_eq!(found[0].layers, [sha256_hex(&image.blobs()[0])]);
        }
    }

    /// A multi-platform index whose entry for another architecture is there but whose
    /// layers are not, as `ctr export` writes one platform of a multi-platform image.
    fn multi_platform(ours: Option<&TestImage>, theirs: &TestImage) -> Vec<u8> {
        let mut archive = ArchiveBuilder::new();
        archive.add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        let foreign_arch = if host_arch() == "arm64" { "amd64" } else { "arm64" };
        let mut entries = Vec::new();
        let mut foreign = descriptor("application/vnd.oci.image.manifest.v1+json", &theirs.manifest());
        foreign["platform"] = json!({"os": "linux", "architecture": foreign_arch});
        entries.push(foreign);
        archive.blob(&theirs.manifest());
        if let Some(ours) = ours {
            let mut native = descriptor("application/vnd.oci.image.manifest.v1+json", &ours.manifest());
            native["platform"] = json!({"os": "linux", "architecture": host_arch()});
            entries.push(native);
            archive.blob(&ours.manifest()).blob(&ours.config);
            for blob in ours.blobs() {
                archive.blob(&blob);
            }
        }
        let list = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        }))
        .unwrap();
        archive.blob(&list);
        let mut top = descriptor("application/vnd.oci.image.index.v1+json", &list);
        top["annotations"] = json!({CONTAINERD_NAME: "registry.k8s.io/pause:3.10"});
        archive.add("index.json", &serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [top]})).unwrap());
        archive.build()
    }

    #[test]
    fn takes_this_machines_manifest_from_a_multi_platform_image() {
        let tmp = tempfile::tempdir().unwrap();
        let ours = image();
        let theirs = TestImage::new(vec![LayerBuilder::new().file("b", b"b", 0o644).build()], "y");
        let found = images(&staged(multi_platform(Some(&ours), &theirs), tmp.path())).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].names, ["registry.k8s.io/pause:3.10"]);
        assert_eq!(found[0].config, sha256_hex(&ours.config));
        assert_eq!(found[0].manifest, Some(sha256_hex(&ours.manifest())));
    }

    #[test]
    fn an_image_for_other_platforms_only_is_an_error_that_lists_them() {
        let tmp = tempfile::tempdir().unwrap();
        let theirs = image();
        let err = format!("{:#}", images(&staged(multi_platform(None, &theirs), tmp.path())).unwrap_err());
        assert!(err.contains(&format!("no manifest for linux/{}", host_arch())), "{err}");
        assert!(err.contains("linux/a"), "{err}");
    }
}
