//! Writing images and indexes to a transport: blobs first (skip if present, mount if the
//! source is a sibling repository, else stream verified), then the config, the manifest by
//! digest, and the tags last of all — a failure at any step leaves no tag pointing at a
//! partial image.

use std::io::{self, Read};

use tracing::{debug, info};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{BlobSource, Image, Layer};
use crate::read::IndexManifest;
use crate::transport::{ManifestRef, RawManifest, Transport};

/// How one blob reached the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    AlreadyPresent,
    Mounted,
    Uploaded,
}

/// Observer for long transfers (the CLI draws progress bars with it).
pub trait Progress: Sync {
    fn blob_started(&self, _digest: &Digest, _size: u64) {}
    fn bytes_copied(&self, _n: u64) {}
    fn blob_finished(&self, _digest: &Digest, _outcome: BlobOutcome) {}
}

/// No progress reporting.
pub struct NoProgress;
impl Progress for NoProgress {}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    pub digest: Option<Digest>,
    pub manifest_size: u64,
    pub skipped: usize,
    pub mounted: usize,
    pub uploaded: usize,
}

impl WriteReport {
    fn count(&mut self, outcome: BlobOutcome) {
        match outcome {
            BlobOutcome::AlreadyPresent => self.skipped += 1,
            BlobOutcome::Mounted => self.mounted += 1,
            BlobOutcome::Uploaded => self.uploaded += 1,
        }
    }
}

/// Writes `image` and points each of `tags` at it (none: stored by digest only).
pub fn write_image(image: &Image, target: &dyn Transport, tags: &[String], progress: &dyn Progress) -> Result<WriteReport> {
    let mut report = WriteReport::default();
    let raw = write_image_content(image, target, progress, &mut report)?;
    publish(target, &raw, tags, &mut report)?;
    Ok(report)
}

/// Writes every child image, then the index (whose descriptors must name the children's
/// digests), then the tags.
pub fn write_index(index: &IndexManifest, children: &[Image], target: &dyn Transport, tags: &[String], progress: &dyn Progress) -> Result<WriteReport> {
    let mut report = WriteReport::default();
    for child in children {
        let raw = write_image_content(child, target, progress, &mut report)?;
        target.put_manifest(&ManifestRef::Digest(raw.digest()), &raw)?;
    }
    for desc in &index.index.manifests {
        if target.blob_size(&desc.digest)?.is_none() && !children.iter().any(|c| c.digest() == desc.digest) {
            // Children not passed explicitly must already be in the target (e.g. attestations).
            target.get_manifest(&ManifestRef::Digest(desc.digest.clone())).map_err(|e| {
                Error::invalid(format!("index {}", index.raw.digest()), format!("child manifest {} is not available in {}: {e}", desc.digest, target.location()))
            })?;
        }
    }
    publish(target, &index.raw, tags, &mut report)?;
    Ok(report)
}

fn write_image_content(image: &Image, target: &dyn Transport, progress: &dyn Progress, report: &mut WriteReport) -> Result<RawManifest> {
    for layer in image.layers() {
        let outcome = copy_layer(layer, target, progress)?;
        progress.blob_finished(&layer.descriptor.digest, outcome);
        report.count(outcome);
    }
    let config = image.config_bytes();
    let config_digest = Digest::of(&config);
    if target.blob_size(&config_digest)?.is_none() {
        target.put_blob(&config_digest, config.len() as u64, &mut &config[..])?;
    }
    Ok(image.raw_manifest())
}

fn publish(target: &dyn Transport, raw: &RawManifest, tags: &[String], report: &mut WriteReport) -> Result<()> {
    target.put_manifest(&ManifestRef::Digest(raw.digest()), raw)?;
    for tag in tags {
        target.put_manifest(&ManifestRef::Tag(tag.clone()), raw)?;
        info!(tag = %tag, digest = %raw.digest(), target = %target.location(), "tagged");
    }
    report.digest = Some(raw.digest());
    report.manifest_size = raw.bytes.len() as u64;
    Ok(())
}

/// Makes one layer blob present in `target`.
pub fn copy_layer(layer: &Layer, target: &dyn Transport, progress: &dyn Progress) -> Result<BlobOutcome> {
    let d = &layer.descriptor;
    if let Some(size) = target.blob_size(&d.digest)? {
        if size == d.size {
            debug!(digest = %d.digest, "blob already present");
            return Ok(BlobOutcome::AlreadyPresent);
        }
    }
    if let BlobSource::Stored(src) = &layer.source {
        let from = src.location();
        if from != target.location() && target.mount_blob(&d.digest, d.size, &from)? {
            debug!(digest = %d.digest, from = %from, "blob mounted");
            return Ok(BlobOutcome::Mounted);
        }
    }
    progress.blob_started(&d.digest, d.size);
    let mut reader = Counting {
        inner: layer.open()?,
        progress,
    };
    target.put_blob(&d.digest, d.size, &mut reader)?;
    debug!(digest = %d.digest, size = d.size, "blob uploaded");
    Ok(BlobOutcome::Uploaded)
}

struct Counting<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.bytes_copied(n as u64);
        Ok(n)
    }
}
