//! Manifests: HEAD, GET (checked against the digest asked for and `Docker-Content-Digest`)
//! and PUT.

use super::client::Call;
use super::failure::status_error;
use super::RegistryTransport;
use crate::digest::{check_digest, Digest};
use crate::error::{Error, Result};
use crate::transport::{ManifestRef, RawManifest};
use crate::v1::{media_type, Manifest};

fn accept() -> String {
    media_type::MANIFEST_ACCEPT.join(", ")
}

fn path(reference: &ManifestRef) -> String {
    match reference {
        ManifestRef::Tag(tag) => format!("manifests/{tag}"),
        ManifestRef::Digest(digest) => format!("manifests/{digest}"),
    }
}

/// What a HEAD of a manifest tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    pub digest: Digest,
    pub media_type: Option<String>,
    pub size: Option<u64>,
}

impl RegistryTransport {
    fn what(&self, reference: &ManifestRef) -> String {
        format!("{reference} in {}", self.describe())
    }

    fn manifest_call(&self, method: &'static str, reference: &ManifestRef) -> Call<'_> {
        Call {
            headers: vec![("accept", accept())],
            ..Call::new(
                method,
                self.api_url(&path(reference)),
                &self.registry,
                &self.pull,
            )
        }
    }

    /// The digest a tag (or digest) resolves to, without downloading the manifest;
    /// `None` when there is no such manifest.
    pub fn head_manifest(&self, reference: &ManifestRef) -> Result<Option<ManifestHead>> {
        let reply = self.client.fetch(&self.manifest_call("HEAD", reference))?;
        match reply.status {
            200 => {}
            404 => return Ok(None),
            _ => {
                return Err(status_error(
                    &reply,
                    &self.describe(),
                    &self.what(reference),
                ))
            }
        }
        let digest = match (reply.header("docker-content-digest"), reference) {
            (Some(header), _) => Digest::parse(header)?,
            (None, ManifestRef::Digest(d)) => d.clone(),
            (None, ManifestRef::Tag(_)) => {
                return Err(Error::invalid(
                    self.what(reference),
                    "the registry's HEAD answer has no Docker-Content-Digest",
                ))
            }
        };
        if let ManifestRef::Digest(asked) = reference {
            check_digest(asked, &digest, &self.what(reference))?;
        }
        Ok(Some(ManifestHead {
            digest,
            media_type: reply.header("content-type").map(str::to_string),
            size: reply.header("content-length").and_then(|v| v.parse().ok()),
        }))
    }

    pub(super) fn fetch_manifest(&self, reference: &ManifestRef) -> Result<RawManifest> {
        let what = self.what(reference);
        let reply = self.client.fetch(&self.manifest_call("GET", reference))?;
        if reply.status != 200 {
            return Err(status_error(&reply, &self.describe(), &what));
        }
        let actual = Digest::of(&reply.body);
        if let ManifestRef::Digest(asked) = reference {
            check_digest(asked, &actual, &what)?;
        }
        if let Some(header) = reply.header("docker-content-digest") {
            check_digest(&Digest::parse(header)?, &actual, &what)?;
        }
        let content_type = reply
            .header("content-type")
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
            .unwrap_or_default();
        let raw = RawManifest::new(reply.body, &content_type);
        self.remember_manifest_blobs(&raw);
        Ok(raw)
    }

    /// A registry serves a manifest only when it holds every blob it references (it checks
    /// on PUT), so those blobs are known to be present here.
    fn remember_manifest_blobs(&self, raw: &RawManifest) {
        if !media_type::is_image_manifest(&raw.media_type) {
            return;
        }
        if let Ok(manifest) = serde_json::from_slice::<Manifest>(&raw.bytes) {
            for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
                self.remember_blob(&d.digest, d.size);
            }
        }
    }

    pub(super) fn store_manifest(
        &self,
        reference: &ManifestRef,
        manifest: &RawManifest,
    ) -> Result<()> {
        let digest = manifest.digest();
        let what = format!("putting {}", self.what(reference));
        if let ManifestRef::Digest(asked) = reference {
            check_digest(asked, &digest, &what)?;
        }
        // Putting the same bytes again is harmless, so a broken attempt is repeated.
        let url = self.api_url(&path(reference));
        let reply = self.client.fetch(&Call {
            headers: vec![("content-type", manifest.media_type.clone())],
            body: Some(&manifest.bytes),
            ..Call::new("PUT", url, &self.registry, &self.push)
        })?;
        if !(200..=202).contains(&reply.status) {
            return Err(status_error(&reply, &self.describe(), &what));
        }
        if let Some(header) = reply.header("docker-content-digest") {
            check_digest(&digest, &Digest::parse(header)?, &what)?;
        }
        tracing::debug!(%digest, target = %self.describe(), "manifest stored");
        self.remember_manifest_blobs(manifest);
        Ok(())
    }
}
