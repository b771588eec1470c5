//! Writing images and indexes to a transport: blobs first (mounted if the source is a
//! sibling repository — tried first, one request —, else skipped if present, else streamed
//! verified), then the config, the manifest by digest, and the tags last of all — a failure
//! at any step leaves no tag pointing at a partial image.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use tracing::{debug, info};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{BlobSource, Image, Layer};
use crate::read::{Child, IndexManifest, OpaqueManifest};
use crate::transport::{BlobReader, Location, ManifestRef, Mount, RawManifest, Transport};
use crate::v1::{media_type, to_canonical_json, Descriptor, Flavor};

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
/// Docker schema 2 images written to an OCI layout are relabelled OCI (manifest digest
/// changes, config and layer bytes do not), as skopeo does: OCI layout readers ignore
/// Docker media types.
pub fn write_image(
    image: &Image,
    target: &dyn Transport,
    tags: &[String],
    progress: &dyn Progress,
) -> Result<WriteReport> {
    let mut report = WriteReport::default();
    let image = &for_target(image, target);
    let raw = write_image_content(image, target, progress, &mut report)?;
    publish(target, &raw, tags, &mut report)?;
    Ok(report)
}

/// Writes every child (images, and artifacts as opaque manifests), then the index, then
/// the tags. `children` must hold the child of every descriptor in the index. In a layout,
/// a Docker manifest list becomes an OCI index (see [`write_image`]) with its descriptors
/// updated to the relabelled children.
pub fn write_index(
    index: &IndexManifest,
    children: &[Child],
    target: &dyn Transport,
    tags: &[String],
    progress: &dyn Progress,
) -> Result<WriteReport> {
    let mut report = WriteReport::default();
    let mut index = index.clone();
    let mut changed = is_layout(target) && index.raw.media_type == media_type::DOCKER_MANIFEST_LIST;
    if changed {
        index.index.media_type = Some(media_type::OCI_INDEX.into());
        index.raw.media_type = media_type::OCI_INDEX.into();
    }
    for desc in &mut index.index.manifests {
        let child = children
            .iter()
            .find(|c| c.digest() == desc.digest)
            .ok_or_else(|| {
                Error::invalid(
                    format!("index {}", index.raw.digest()),
                    format!("no child given for its manifest {}", desc.digest),
                )
            })?;
        let raw = match child {
            Child::Image(image) => {
                write_image_content(&for_target(image, target), target, progress, &mut report)?
            }
            Child::Opaque(opaque) => {
                write_opaque_content(opaque, target, progress, &mut report)?;
                opaque.raw.clone()
            }
        };
        let digest = raw.digest();
        target.put_manifest(&ManifestRef::Digest(digest.clone()), &raw)?;
        if digest != desc.digest {
            changed = true;
            desc.digest = digest;
            desc.size = raw.bytes.len() as u64;
            desc.media_type = raw.media_type;
        }
    }
    if changed {
        index.raw.bytes = to_canonical_json(&index.index);
    }
    publish(target, &index.raw, tags, &mut report)?;
    Ok(report)
}

/// Copies an artifact's blobs (config included) one by one: artifacts are small.
fn write_opaque_content(
    opaque: &OpaqueManifest,
    target: &dyn Transport,
    progress: &dyn Progress,
    report: &mut WriteReport,
) -> Result<()> {
    let from = opaque.source.location();
    for d in &opaque.blobs {
        let open = || opaque.source.open_blob_verified(&d.digest, d.size);
        report.count(copy_blob(d, Some(&from), target, progress, open)?);
    }
    Ok(())
}

fn is_layout(target: &dyn Transport) -> bool {
    matches!(target.location(), Location::Layout { .. })
}

fn for_target(image: &Image, target: &dyn Transport) -> Image {
    let mut image = image.clone();
    if is_layout(target) && image.flavor() == Flavor::Docker {
        info!(digest = %image.digest(), "storing Docker schema 2 image as OCI in {}", target.location());
        image.set_flavor(Flavor::Oci);
    }
    image
}

fn write_image_content(
    image: &Image,
    target: &dyn Transport,
    progress: &dyn Progress,
    report: &mut WriteReport,
) -> Result<RawManifest> {
    for outcome in copy_layers(image.layers(), target, progress)? {
        report.count(outcome);
    }
    let config = image.config_bytes();
    let descriptor = image.config_descriptor();
    match image.config_source() {
        // An unedited config may already be there, or be mountable from where it was read.
        Some(from) => {
            let open = || Ok(Box::new(&config[..]) as BlobReader<'_>);
            copy_blob(&descriptor, Some(from), target, &NoProgress, open)?;
        }
        // An edited config is new content that a HEAD would almost never find: upload it
        // directly (a registry keeps identical content once anyway) and save a round trip.
        None => target.put_blob_from(&descriptor.digest, descriptor.size, &|| {
            Ok(Box::new(&config[..]) as BlobReader<'_>)
        })?,
    }
    Ok(image.raw_manifest())
}

fn publish(
    target: &dyn Transport,
    raw: &RawManifest,
    tags: &[String],
    report: &mut WriteReport,
) -> Result<()> {
    // (registry helper) A manifest put by tag is also stored under its digest, so the
    // separate put by digest is only needed when there is no tag to publish.
    let digest = raw.digest();
    if tags.is_empty() {
        target.put_manifest(&ManifestRef::Digest(digest.clone()), raw)?;
    }
    for tag in tags {
        target.put_manifest(&ManifestRef::Tag(tag.clone()), raw)?;
        info!(tag = %tag, %digest, target = %target.location(), "tagged");
    }
    report.digest = Some(digest);
    report.manifest_size = raw.bytes.len() as u64;
    Ok(())
}

/// Blobs copied at once: registry round trips overlap, two cores stay busy hashing.
const PARALLEL_BLOBS: usize = 3;

/// Copies each distinct layer blob, a few at a time; the first failure stops the rest.
fn copy_layers(
    layers: &[Layer],
    target: &dyn Transport,
    progress: &dyn Progress,
) -> Result<Vec<BlobOutcome>> {
    let mut unique: Vec<&Layer> = Vec::new();
    for l in layers {
        if !unique
            .iter()
            .any(|u| u.descriptor.digest == l.descriptor.digest)
        {
            unique.push(l);
        }
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<(usize, Result<BlobOutcome>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL_BLOBS.min(unique.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= unique.len() || failed.load(Ordering::SeqCst) {
                    break;
                }
                let r = copy_layer(unique[i], target, progress);
                if let Ok(outcome) = &r {
                    progress.blob_finished(&unique[i].descriptor.digest, *outcome);
                } else {
                    failed.store(true, Ordering::SeqCst);
                }
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Makes one layer blob present in `target`.
pub fn copy_layer(
    layer: &Layer,
    target: &dyn Transport,
    progress: &dyn Progress,
) -> Result<BlobOutcome> {
    let d = &layer.descriptor;
    match &layer.source {
        // The target verifies what it stores (the `put_blob` contract): hashing the
        // stream on the way out of the source as well would only double the work.
        BlobSource::Stored(src) => copy_blob(d, Some(&src.location()), target, progress, || {
            let what = format!("blob {} from {}", d.digest, src.location());
            d.digest.check_verifiable(&what)?;
            src.open_blob(&d.digest)
        }),
        BlobSource::Memory(_) | BlobSource::File(_) => {
            copy_blob(d, None, target, progress, || layer.open())
        }
    }
}

/// Makes the blob `d` present in `target`: mounted from `from` if the target can (tried
/// first: one request when it works, and a declining registry says whether the blob is
/// there), else skipped when present, else streamed from `open()`.
fn copy_blob<'a>(
    d: &Descriptor,
    from: Option<&Location>,
    target: &dyn Transport,
    progress: &'a dyn Progress,
    open: impl Fn() -> Result<BlobReader<'a>>,
) -> Result<BlobOutcome> {
    let mut presence_known = false;
    if let Some(from) = from.filter(|from| **from != target.location()) {
        match target.mount_blob(&d.digest, d.size, from)? {
            Mount::Mounted => {
                debug!(digest = %d.digest, from = %from, "blob mounted");
                return Ok(BlobOutcome::Mounted);
            }
            Mount::Present => return Ok(BlobOutcome::AlreadyPresent),
            Mount::Absent => presence_known = true,
            Mount::Unsupported => {}
        }
    }
    // A blob whose source is this very repository is reused by size: rewriting it could
    // only copy the same bytes (and reading them verifies them anyway).
    let present = || match from == Some(&target.location()) {
        true => Ok(target.blob_size(&d.digest)? == Some(d.size)),
        false => target.has_blob(&d.digest, d.size),
    };
    if !presence_known && present()? {
        debug!(digest = %d.digest, "blob already present");
        return Ok(BlobOutcome::AlreadyPresent);
    }
    progress.blob_started(&d.digest, d.size);
    let counted = || -> Result<BlobReader<'a>> {
        Ok(Box::new(Counting {
            inner: open()?,
            progress,
        }))
    };
    target.put_blob_from(&d.digest, d.size, &counted)?;
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
