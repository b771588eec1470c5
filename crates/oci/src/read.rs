//! Opening references and loading images/indexes from any transport, verified.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::image::Image;
use crate::layout::Layout;
use crate::reference::{ImageRef, DEFAULT_TAG};
use crate::transport::{ManifestRef, RawManifest, Transport, TransportOptions};
use crate::v1::{media_type, Descriptor, Index, Platform};

/// A repository plus the manifest a reference names in it.
#[derive(Clone)]
pub struct Repo {
    pub transport: Arc<dyn Transport>,
    pub reference: ManifestRef,
}

impl Repo {
    /// For reading: a layout must exist; `oci:<dir>` without tag means its only manifest.
    pub fn open(r: &ImageRef, opts: &TransportOptions) -> Result<Repo> {
        match r {
            ImageRef::Layout { dir, tag } => {
                let layout = Layout::open(dir.clone())?;
                let reference = match tag {
                    Some(t) => ManifestRef::Tag(t.clone()),
                    None => ManifestRef::Digest(layout.resolve(None)?.digest),
                };
                Ok(Repo {
                    transport: Arc::new(layout),
                    reference,
                })
            }
            ImageRef::Registry(reg) => Ok(Repo {
                transport: crate::open_registry(reg, opts)?,
                reference: reg.manifest_ref(),
            }),
        }
    }

    /// For writing: a layout is created if absent; a missing tag means `latest`.
    pub fn create(r: &ImageRef, opts: &TransportOptions) -> Result<Repo> {
        match r {
            ImageRef::Layout { dir, tag } => Ok(Repo {
                transport: Arc::new(Layout::create(dir.clone())?),
                reference: ManifestRef::Tag(tag.clone().unwrap_or_else(|| DEFAULT_TAG.into())),
            }),
            ImageRef::Registry(_) => Repo::open(r, opts),
        }
    }

    pub fn load(&self) -> Result<Artifact> {
        load(&self.transport, &self.reference)
    }

    /// The image named, choosing `platform` from an index (default: `linux/amd64`).
    pub fn load_image(&self, platform: Option<&Platform>) -> Result<Image> {
        match self.load()? {
            Artifact::Image(img) => Ok(img),
            Artifact::Index(idx) => {
                let default = Platform::parse("linux/amd64").expect("valid literal");
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

    /// Loads every child image (index order); nested indexes are refused.
    pub fn load_children(&self, transport: &Arc<dyn Transport>) -> Result<Vec<Image>> {
        self.index
            .manifests
            .iter()
            .map(|d| load_image_by_descriptor(transport, d))
            .collect()
    }

    /// This index with descriptor `i` pointing at `children[i]` (e.g. after mutating every
    /// platform's image); platforms and annotations are kept. Unchanged children keep the
    /// index bytes unchanged.
    pub fn with_children(&self, children: &[Image]) -> Result<IndexManifest> {
        if children.len() != self.index.manifests.len() {
            return Err(Error::invalid(
                format!("index {}", self.raw.digest()),
                format!(
                    "{} manifests but {} images given",
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

/// Loads what `reference` names: manifest verified (by digest), config verified.
pub fn load(transport: &Arc<dyn Transport>, reference: &ManifestRef) -> Result<Artifact> {
    let raw = transport.get_manifest_verified(reference)?;
    artifact_from_raw(transport, raw)
}

/// Loads a child manifest of an index (its digest and size are checked).
pub fn load_image_by_descriptor(
    transport: &Arc<dyn Transport>,
    desc: &Descriptor,
) -> Result<Image> {
    let raw = transport.get_manifest_verified(&ManifestRef::Digest(desc.digest.clone()))?;
    if raw.bytes.len() as u64 != desc.size {
        return Err(Error::SizeMismatch {
            what: format!("manifest {}", desc.digest),
            expected: desc.size,
            actual: raw.bytes.len() as u64,
        });
    }
    match artifact_from_raw(transport, raw)? {
        Artifact::Image(img) => Ok(img),
        Artifact::Index(_) => Err(Error::UnsupportedMediaType {
            what: format!("manifest {} (nested index)", desc.digest),
            media_type: desc.media_type.clone(),
        }),
    }
}

fn artifact_from_raw(transport: &Arc<dyn Transport>, raw: RawManifest) -> Result<Artifact> {
    let where_ = transport.location().to_string();
    if media_type::is_index(&raw.media_type) {
        let index: Index = serde_json::from_slice(&raw.bytes)
            .map_err(|e| Error::json(format!("index {} in {where_}", raw.digest()), e))?;
        return Ok(Artifact::Index(IndexManifest { raw, index }));
    }
    if !media_type::is_image_manifest(&raw.media_type) {
        return Err(Error::UnsupportedMediaType {
            what: format!("manifest {} in {where_}", raw.digest()),
            media_type: raw.media_type,
        });
    }
    let config_desc: Descriptor = serde_json::from_slice::<serde_json::Value>(&raw.bytes)
        .ok()
        .and_then(|v| v.get("config").cloned())
        .and_then(|c| serde_json::from_value(c).ok())
        .ok_or_else(|| {
            Error::invalid(
                format!("manifest {} in {where_}", raw.digest()),
                "no valid config descriptor",
            )
        })?;
    let config = transport.read_blob_verified(&config_desc.digest, config_desc.size)?;
    Ok(Artifact::Image(Image::from_stored(
        raw,
        config,
        transport.clone(),
    )?))
}
