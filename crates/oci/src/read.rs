//! Opening references and loading images/indexes from any transport, verified.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::layout::Layout;
use crate::reference::{ImageRef, RegistryRef, DEFAULT_TAG};
use crate::transport::{ManifestRef, RawManifest, Transport, TransportOptions};
use crate::v1::{media_type, Descriptor, Index, Manifest, Platform};

/// Largest image config read into memory (real ones are kilobytes; the size is the
/// manifest's word, so it is checked before reading).
const MAX_CONFIG_SIZE: u64 = 16 << 20;

/// A repository plus the manifest a reference names in it.
#[derive(Clone)]
pub struct Repo {
    pub transport: Arc<dyn Transport>,
    pub reference: ManifestRef,
}

impl Repo {
    /// For reading: a layout must exist; `oci:<dir>` without tag or digest means its only
    /// manifest. A registry repository gets a client of its own (see [`crate::Session`] to
    /// share one).
    pub fn open(r: &ImageRef, opts: &TransportOptions) -> Result<Repo> {
        Repo::open_with(r, |reg| crate::open_registry(reg, opts))
    }

    /// As [`Repo::open`], with registry repositories opened by `registry`.
    pub fn open_with(
        r: &ImageRef,
        registry: impl FnOnce(&RegistryRef) -> Result<Arc<dyn Transport>>,
    ) -> Result<Repo> {
        match r {
            ImageRef::Layout { dir, tag, digest } => {
                let layout = Layout::open(dir.clone())?;
                let reference = match (digest, tag) {
                    (Some(d), _) => ManifestRef::Digest(d.clone()),
                    (None, Some(t)) => ManifestRef::Tag(t.clone()),
                    (None, None) => ManifestRef::Digest(layout.resolve(None)?.digest),
                };
                Ok(Repo {
                    transport: Arc::new(layout),
                    reference,
                })
            }
            ImageRef::Registry(reg) => Ok(Repo {
                transport: registry(reg)?,
                reference: reg.manifest_ref(),
            }),
        }
    }

    /// For writing: a layout is created if absent; a missing tag means `latest`. A layout
    /// is written by tag only (an untagged manifest would not be listed in index.json).
    pub fn create(r: &ImageRef, opts: &TransportOptions) -> Result<Repo> {
        Repo::create_with(r, |reg| crate::open_registry(reg, opts))
    }

    /// As [`Repo::create`], with registry repositories opened by `registry`.
    pub fn create_with(
        r: &ImageRef,
        registry: impl FnOnce(&RegistryRef) -> Result<Arc<dyn Transport>>,
    ) -> Result<Repo> {
        match r {
            ImageRef::Layout {
                digest: Some(_), ..
            } => Err(Error::InvalidReference {
                reference: r.to_string(),
                reason: "a layout is written by tag (oci:<dir>[:<tag>]), not by digest".into(),
            }),
            ImageRef::Layout { dir, tag, .. } => Ok(Repo {
                transport: Arc::new(Layout::create(dir.clone())?),
                reference: ManifestRef::Tag(tag.clone().unwrap_or_else(|| DEFAULT_TAG.into())),
            }),
            ImageRef::Registry(_) => Repo::open_with(r, registry),
        }
    }

    pub fn load(&self) -> Result<Artifact> {
        load(&self.transport, &self.reference)
    }

    /// The image named, choosing `platform` from an index (default: `linux/amd64`).
    pub fn load_image(&self, platform: Option<&Platform>) -> Result<Image> {
        self.image_of(self.load()?, platform)
    }

    /// The image in `artifact` (already loaded from this repository), choosing `platform`
    /// from an index (default: `linux/amd64`); only the chosen child is read.
    pub fn image_of(&self, artifact: Artifact, platform: Option<&Platform>) -> Result<Image> {
        match artifact {
            Artifact::Image(img) => Ok(img),
            Artifact::Index(idx) => {
                let default = Platform {
                    os: "linux".into(),
                    architecture: "amd64".into(),
                    ..Default::default()
                };
                let want = platform.unwrap_or(&default);
                let desc = idx.select(want, &self.transport.location().to_string())?;
                load_image_by_descriptor(&self.transport, desc)
            }
        }
    }
}

/// An image index / manifest list as stored.
#[derive(Clone, Debug)]
pub struct IndexManifest {
    pub raw: RawManifest,
    pub index: Index,
}

impl IndexManifest {
    /// An index document built here (serialised canonically), e.g. over mutated children.
    pub fn new(index: Index) -> IndexManifest {
        let media_type = index
            .media_type
            .clone()
            .unwrap_or_else(|| media_type::OCI_INDEX.into());
        let raw = RawManifest {
            media_type,
            bytes: crate::v1::to_canonical_json(&index),
        };
        IndexManifest { raw, index }
    }

    /// Loads every child (index order): images, and artifacts as opaque manifests; nested
    /// indexes are refused.
    pub fn load_children(&self, transport: &Arc<dyn Transport>) -> Result<Vec<Child>> {
        self.index
            .manifests
            .iter()
            .map(|d| load_child(transport, d))
            .collect()
    }

    /// This index with descriptor `i` pointing at `children[i]` (e.g. after mutating every
    /// platform's image); platforms and annotations are kept. Unchanged children keep the
    /// index bytes unchanged.
    pub fn with_children(&self, children: &[Child]) -> Result<IndexManifest> {
        if children.len() != self.index.manifests.len() {
            return Err(Error::invalid(
                format!("index {}", self.raw.digest()),
                format!(
                    "{} manifests but {} children given",
                    self.index.manifests.len(),
                    children.len()
                ),
            ));
        }
        let mut index = self.index.clone();
        for (d, child) in index.manifests.iter_mut().zip(children) {
            let raw = child.raw_manifest();
            d.digest = raw.digest();
            d.size = raw.bytes.len() as u64;
            d.media_type = raw.media_type;
        }
        if index == self.index {
            return Ok(self.clone());
        }
        let mut out = IndexManifest::new(index);
        out.raw.media_type = self.raw.media_type.clone();
        Ok(out)
    }

    /// Descriptor for a child image, with the platform taken from its config.
    pub fn child_descriptor(image: &Image) -> Descriptor {
        let mut d = image.raw_manifest().descriptor();
        d.platform = Some(image.platform());
        d
    }

    pub fn select(&self, want: &Platform, location: &str) -> Result<&Descriptor> {
        self.index
            .manifests
            .iter()
            .filter(|d| media_type::is_image_manifest(&d.media_type))
            .find(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)))
            .ok_or_else(|| Error::NoMatchingPlatform {
                index: format!("{} in {location}", self.raw.digest()),
                platform: want.to_string(),
            })
    }
}

/// Returned one at a time, so the size gap between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Artifact {
    Image(Image),
    Index(IndexManifest),
}

/// A manifest listed in an index.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Child {
    Image(Image),
    /// Not a runnable image: an OCI 1.1 artifact (signature, SBOM, attestation...), whose
    /// config is not an image config or has no `rootfs`. Copied as is, blobs and manifest.
    Opaque(OpaqueManifest),
}

impl Child {
    pub fn raw_manifest(&self) -> RawManifest {
        match self {
            Child::Image(image) => image.raw_manifest(),
            Child::Opaque(opaque) => opaque.raw.clone(),
        }
    }

    pub fn digest(&self) -> Digest {
        match self {
            Child::Image(image) => image.digest(),
            Child::Opaque(opaque) => opaque.raw.digest(),
        }
    }
}

impl From<Image> for Child {
    fn from(image: Image) -> Child {
        Child::Image(image)
    }
}

/// A manifest kept byte for byte, with the blobs it references and where they are.
#[derive(Clone)]
pub struct OpaqueManifest {
    pub raw: RawManifest,
    /// Config first, then layers: every blob that must exist before the manifest.
    pub blobs: Vec<Descriptor>,
    pub source: Arc<dyn Transport>,
}

impl fmt::Debug for OpaqueManifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpaqueManifest")
            .field("digest", &self.raw.digest())
            .field("blobs", &self.blobs.len())
            .field("source", &self.source.location())
            .finish()
    }
}

impl OpaqueManifest {
    /// The error for using it as an image.
    fn not_an_image(&self) -> Error {
        let manifest: Option<Manifest> = serde_json::from_slice(&self.raw.bytes).ok();
        let kind = manifest
            .as_ref()
            .and_then(|m| m.extra.get("artifactType").and_then(|v| v.as_str()))
            .map(String::from)
            .or_else(|| manifest.map(|m| m.config.media_type))
            .unwrap_or_default();
        Error::invalid(
            format!(
                "manifest {} in {}",
                self.raw.digest(),
                self.source.location()
            ),
            format!("it is an artifact ({kind}), not a container image"),
        )
    }
}

/// Loads what `reference` names: manifest verified (by digest), config verified.
pub fn load(transport: &Arc<dyn Transport>, reference: &ManifestRef) -> Result<Artifact> {
    load_fetched(transport, transport.get_manifest_verified(reference)?)
}

/// Loads the artifact a manifest already fetched from `transport` describes (config verified):
/// lets a caller tell a missing manifest apart from a failure to read what it references.
pub fn load_fetched(transport: &Arc<dyn Transport>, raw: RawManifest) -> Result<Artifact> {
    if media_type::is_index(&raw.media_type) {
        let index: Index = serde_json::from_slice(&raw.bytes).map_err(|e| {
            let where_ = transport.location();
            Error::json(format!("index {} in {where_}", raw.digest()), e)
        })?;
        return Ok(Artifact::Index(IndexManifest { raw, index }));
    }
    match load_manifest(transport, raw)? {
        Child::Image(image) => Ok(Artifact::Image(image)),
        Child::Opaque(opaque) => Err(opaque.not_an_image()),
    }
}

/// Loads an index's child image (its digest and size are checked).
pub fn load_image_by_descriptor(
    transport: &Arc<dyn Transport>,
    desc: &Descriptor,
) -> Result<Image> {
    match load_child(transport, desc)? {
        Child::Image(image) => Ok(image),
        Child::Opaque(opaque) => Err(opaque.not_an_image()),
    }
}

/// Loads a manifest an index lists (its digest and size are checked); nested indexes are
/// refused.
pub fn load_child(transport: &Arc<dyn Transport>, desc: &Descriptor) -> Result<Child> {
    let raw = transport.get_manifest_verified(&ManifestRef::Digest(desc.digest.clone()))?;
    if raw.bytes.len() as u64 != desc.size {
        return Err(Error::SizeMismatch {
            what: format!("manifest {}", desc.digest),
            expected: desc.size,
            actual: raw.bytes.len() as u64,
        });
    }
    if media_type::is_index(&raw.media_type) {
        return Err(Error::UnsupportedMediaType {
            what: format!("manifest {} (nested index)", desc.digest),
            media_type: raw.media_type,
        });
    }
    load_manifest(transport, raw)
}

/// An image manifest: an image if its config is an image config with a `rootfs` (config
/// read and verified), else an opaque artifact.
fn load_manifest(transport: &Arc<dyn Transport>, raw: RawManifest) -> Result<Child> {
    let where_ = transport.location().to_string();
    if !media_type::is_image_manifest(&raw.media_type) {
        return Err(Error::UnsupportedMediaType {
            what: format!("manifest {} in {where_}", raw.digest()),
            media_type: raw.media_type,
        });
    }
    let manifest: Manifest = serde_json::from_slice(&raw.bytes)
        .map_err(|e| Error::json(format!("manifest {} in {where_}", raw.digest()), e))?;
    let opaque = |raw: RawManifest| {
        let blobs = std::iter::once(manifest.config.clone())
            .chain(manifest.layers.iter().cloned())
            .collect();
        Ok(Child::Opaque(OpaqueManifest {
            raw,
            blobs,
            source: transport.clone(),
        }))
    };
    if !media_type::is_image_config(&manifest.config.media_type) {
        return opaque(raw);
    }
    if manifest.config.size > MAX_CONFIG_SIZE {
        return Err(Error::TooLarge {
            path: format!(
                "config {} of manifest {}",
                manifest.config.digest,
                raw.digest()
            ),
            size: manifest.config.size,
            limit: MAX_CONFIG_SIZE,
        });
    }
    let config_raw = transport.read_blob_verified(&manifest.config.digest, manifest.config.size)?;
    let config = match serde_json::from_slice::<Value>(&config_raw) {
        Ok(Value::Object(config)) if config.contains_key("rootfs") => config,
        Ok(_) => return opaque(raw),
        Err(e) => {
            let what = format!("config {} in {where_}", manifest.config.digest);
            return Err(Error::json(what, e));
        }
    };
    Ok(Child::Image(Image::from_stored(
        raw,
        manifest,
        config_raw,
        config,
        transport.clone(),
    )?))
}
