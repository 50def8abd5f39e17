//! Pulling an image: its manifest (for a multi-platform image, the one for this machine),
//! then its config and layers, each verified against its digest as it downloads, into a
//! folder of the pull's own; then into the store, as an archive's blobs go.
//!
//! The endpoints are tried in order (mirrors, then the registry), each with the
//! credentials that apply to it, until one serves the image.

use super::client::{RegistryError, Session, read_small};
use super::credentials::{Credential, Keyring};
use super::hosts::RegistriesConfig;
use crate::image::reference::Reference;
use crate::image::{Image, ImageStore, foreign_platform, host_arch, is_index, is_manifest};
use anyhow::bail;
use http_body_util::BodyExt;
use oci_spec::image::{ImageIndex, ImageManifest};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// Every manifest type a pull takes; a registry may answer with any of them.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
/// How often a download's progress goes to the log.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Pulls `reference` into the store and returns the image as stored. `keyring` holds the
/// pod's pull secrets, which go to the image's own registry; an endpoint that
/// registries.yaml gives credentials uses those.
pub async fn pull(
    store: &ImageStore,
    reference: &str,
    registries: &RegistriesConfig,
    keyring: &Keyring,
) -> anyhow::Result<Image> {
    let image: Reference = reference.parse()?;
    let secrets = keyring.lookup(&image);
    let mut failures: Vec<(String, RegistryError)> = Vec::new();
    for endpoint in registries.endpoints(&image) {
        let credentials: Vec<Option<Credential>> = match &endpoint.config.auth {
            Some(auth) => vec![Some(Credential::from_entry(&auth.username, &auth.password, &auth.auth)?)],
            None if endpoint.is_default && !secrets.is_empty() => secrets.iter().cloned().map(Some).collect(),
            None => vec![None],
        };
        for credential in credentials {
            let where_ = format!("{}://{}", endpoint.scheme, endpoint.authority);
            let session = Session::new(endpoint.clone(), credential)?;
            match pull_from(store, &image, session).await {
                Ok(pulled) => return Ok(pulled),
                Err(e) => {
                    tracing::info!(image = %image, endpoint = where_, error = %e, "could not pull from this endpoint");
                    failures.push((where_, e));
                }
            }
        }
    }
    let reasons: Vec<String> = failures.iter().map(|(at, e)| format!("{at}: {e}")).collect();
    bail!("failed to pull and unpack image \"{image}\": {}", reasons.join("; "))
}

async fn pull_from(store: &ImageStore, image: &Reference, mut session: Session) -> Result<Image, RegistryError> {
    let other = |e: anyhow::Error| RegistryError::Other(format!("{e:#}"));
    let wanted = image.digest.clone().or_else(|| image.tag.clone()).unwrap_or_else(|| "latest".into());
    let (mut body, mut digest) = manifest(&mut session, &wanted, image.digest.as_deref()).await?;
    let parsed: serde_json::Value = serde_json::from_slice(&body).map_err(|e| other(e.into()))?;
    // An index for several platforms: the manifest for this one is a second fetch.
    if is_index(parsed["mediaType"].as_str().unwrap_or_default()) || parsed.get("manifests").is_some() {
        let index: ImageIndex = serde_json::from_slice(&body).map_err(|e| other(e.into()))?;
        let entry = index
            .manifests()
            .iter()
            .find(|d| {
                is_manifest(&d.media_type().to_string()) && d.platform().is_some() && foreign_platform(d).is_none()
            })
            .ok_or_else(|| {
                let platforms: Vec<String> = index.manifests().iter().filter_map(foreign_platform).collect();
                RegistryError::Other(format!("no image for linux/{}, only for {}", host_arch(), platforms.join(", ")))
            })?;
        let chosen = entry.digest().to_string();
        (body, digest) = manifest(&mut session, &chosen, Some(&chosen)).await?;
    }
    let manifest: ImageManifest = serde_json::from_slice(&body)
        .map_err(|e| other(anyhow::anyhow!("the manifest {digest} is not an image manifest: {e}")))?;
    let downloads = store.downloads().map_err(other)?;
    let hex = |d: &str| {
        d.strip_prefix("sha256:").map(str::to_string).ok_or_else(|| other(anyhow::anyhow!("unsupported digest {d}")))
    };
    let manifest_hex = hex(&digest)?;
    std::fs::write(downloads.path().join(&manifest_hex), &body).map_err(|e| other(e.into()))?;
    let config = manifest.config();
    let blobs: Vec<(String, u64)> =
        std::iter::once(config).chain(manifest.layers()).map(|d| (d.digest().to_string(), d.size())).collect();
    let total: u64 = blobs.iter().skip(1).map(|(_, size)| size).sum();
    tracing::info!(image = %image, layers = blobs.len() - 1, bytes = total, from = %session.endpoint().authority, "pulling image");
    for (i, (digest, size)) in blobs.iter().enumerate() {
        let blob_hex = hex(digest)?;
        if store.reuse_blob(&blob_hex, downloads.path()) {
            continue;
        }
        let what = if i == 0 { "config".to_string() } else { format!("layer {i}/{}", blobs.len() - 1) };
        download(&mut session, digest, *size, &downloads.path().join(&blob_hex), &format!("{image} {what}")).await?;
    }
    let name = image.digest.is_none().then(|| image.to_string());
    let layers: Vec<String> = blobs[1..].iter().map(|(d, _)| hex(d)).collect::<Result<_, _>>()?;
    let (config_hex, repository, dir) = (hex(&blobs[0].0)?, image.name(), downloads.path().to_path_buf());
    let store = store.clone();
    let stored = tokio::task::spawn_blocking(move || {
        store.store_pulled(&dir, name, repository, manifest_hex, config_hex, layers)
    })
    .await
    .map_err(|e| other(e.into()))?
    .map_err(other)?;
    drop(downloads);
    Ok(stored)
}

/// A manifest's bytes and digest. The bytes are checked against the digest asked for, and
/// against the one the registry says it sent.
async fn manifest(
    session: &mut Session,
    reference: &str,
    expected: Option<&str>,
) -> Result<(bytes::Bytes, String), RegistryError> {
    let response = session.get(&format!("manifests/{reference}"), Some(ACCEPT)).await?;
    let claimed = response.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = read_small(response).await.map_err(|e| RegistryError::Other(format!("reading the manifest: {e:#}")))?;
    let actual = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
    for wanted in [expected, claimed.as_deref()].into_iter().flatten() {
        if wanted != actual {
            return Err(RegistryError::Other(format!(
                "the manifest for {reference} is corrupt: expected {wanted}, got {actual}"
            )));
        }
    }
    Ok((body, actual))
}

/// Downloads a blob to `path`, checking its size and digest on the way; logs progress.
async fn download(
    session: &mut Session,
    digest: &str,
    size: u64,
    path: &Path,
    what: &str,
) -> Result<(), RegistryError> {
    let other = |e: String| RegistryError::Other(format!("downloading {what} ({digest}): {e}"));
    let response = session.get(&format!("blobs/{digest}"), None).await?;
    let partial = path.with_extension("partial");
    let mut file = tokio::fs::File::create(&partial).await.map_err(|e| other(e.to_string()))?;
    let mut body = response.into_body();
    let (mut hasher, mut got) = (Sha256::new(), 0u64);
    let (started, mut reported) = (Instant::now(), Instant::now());
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| other(e.to_string()))?;
        let Some(data) = frame.data_ref() else { continue };
        got += data.len() as u64;
        if got > size {
            return Err(other(format!("the registry sent more than the {size} bytes the manifest gives")));
        }
        hasher.update(data);
        file.write_all(data).await.map_err(|e| other(e.to_string()))?;
        if reported.elapsed() >= PROGRESS_EVERY {
            reported = Instant::now();
            tracing::info!("pulling {what}: {} of {} MiB", got >> 20, size >> 20);
        }
    }
    file.sync_all().await.map_err(|e| other(e.to_string()))?;
    let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
    if got != size || actual != digest {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(other(format!(
            "corrupt download: {got} bytes with digest {actual}, expected {size} bytes with {digest}"
        )));
    }
    tokio::fs::rename(&partial, path).await.map_err(|e| other(e.to_string()))?;
    tracing::info!("pulled {what}: {size} bytes in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accepted_types_are_the_four_image_types() {
        for t in ["image.index.v1", "image.manifest.v1", "manifest.list.v2", "distribution.manifest.v2"] {
            assert!(ACCEPT.contains(t));
        }
    }
}
