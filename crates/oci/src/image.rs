//! The image model: manifest + config + layers, each layer knowing where its blob lives.
//! Untouched manifests and configs keep their exact bytes; edits go through the config as a
//! JSON value (key order and unknown fields kept) so re-serialisation is reproducible.

use std::sync::Arc;

use serde_json::{Map, Value};

pub use crate::layer::blob::{BlobSource, Layer};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::transport::{Location, RawManifest, Transport};
use crate::v1::{media_type, to_canonical_json, Descriptor, Flavor, Manifest, Platform};

#[derive(Clone, Debug)]
pub struct Image {
    flavor: Flavor,
    manifest: Manifest,
    /// Exact manifest bytes while nothing changed.
    manifest_raw: Option<Vec<u8>>,
    config: Map<String, Value>,
    /// Exact config bytes while the config is unedited.
    config_raw: Option<Vec<u8>>,
    /// Where manifest and config were read from: an unedited config can be mounted from there.
    stored_in: Option<Location>,
    layers: Vec<Layer>,
}

impl Image {
    /// An image with no layers and the given config (must be a JSON object).
    pub fn new(flavor: Flavor, config: Value) -> Result<Image> {
        let Value::Object(config) = config else {
            return Err(Error::invalid("image config", "not a JSON object"));
        };
        let placeholder = Descriptor::new(flavor.config_media_type(), Digest::of(b""), 0);
        let mut image = Image {
            flavor,
            manifest: Manifest {
                schema_version: 2,
                media_type: Some(flavor.manifest_media_type().into()),
                config: placeholder,
                layers: Vec::new(),
                annotations: None,
                extra: Map::new(),
            },
            manifest_raw: None,
            config,
            config_raw: None,
            stored_in: None,
            layers: Vec::new(),
        };
        image.set_layers(Vec::new())?;
        Ok(image)
    }

    /// Builds the model from a stored manifest and its (already verified) config, each
    /// passed both as bytes and as parsed by the reader; layer blobs are read lazily from
    /// `source`.
    pub(crate) fn from_stored(
        raw: RawManifest,
        manifest: Manifest,
        config_raw: Vec<u8>,
        config: Map<String, Value>,
        source: Arc<dyn Transport>,
    ) -> Result<Image> {
        let where_ = source.location().to_string();
        let flavor = Flavor::of_manifest(&raw.media_type)
            .filter(|_| media_type::is_image_manifest(&raw.media_type))
            .ok_or_else(|| Error::UnsupportedMediaType {
                what: format!("image manifest in {where_}"),
                media_type: raw.media_type.clone(),
            })?;
        let diff_ids = read_diff_ids(&config)?;
        if diff_ids.len() != manifest.layers.len() {
            return Err(Error::invalid(
                format!("image {} in {where_}", raw.digest()),
                format!(
                    "manifest has {} layers but config rootfs.diff_ids has {}",
                    manifest.layers.len(),
                    diff_ids.len()
                ),
            ));
        }
        let layers = manifest
            .layers
            .iter()
            .zip(diff_ids)
            .map(|(d, diff_id)| Layer {
                descriptor: d.clone(),
                diff_id,
                source: BlobSource::Stored(source.clone()),
            })
            .collect();
        Ok(Image {
            flavor,
            manifest,
            manifest_raw: Some(raw.bytes),
            config,
            config_raw: Some(config_raw),
            stored_in: Some(source.location()),
            layers,
        })
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    pub fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }

    /// Config as a JSON object (`config`, `rootfs`, `history`, `os`, ...).
    pub fn config(&self) -> &Map<String, Value> {
        &self.config
    }

    /// The `config` section (Env, Labels, ...), if any.
    pub fn container_config(&self) -> Option<&Map<String, Value>> {
        self.config().get("config")?.as_object()
    }

    pub fn labels(&self) -> Map<String, Value> {
        self.container_config()
            .and_then(|c| c.get("Labels"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    pub fn label(&self, key: &str) -> Option<String> {
        self.labels().get(key)?.as_str().map(String::from)
    }

    /// `history` entries as stored (possibly empty).
    pub fn history(&self) -> Vec<Value> {
        self.config()
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    pub fn platform(&self) -> Platform {
        let s = |k: &str| {
            self.config()
                .get(k)
                .and_then(Value::as_str)
                .map(String::from)
        };
        Platform {
            os: s("os").unwrap_or_default(),
            architecture: s("architecture").unwrap_or_default(),
            variant: s("variant"),
            os_version: s("os.version"),
            ..Default::default()
        }
    }

    /// Edits the config object. The closure sees the whole config; rootfs.diff_ids is owned by
    /// the layer list and restored afterwards.
    pub fn edit_config(
        &mut self,
        f: impl FnOnce(&mut Map<String, Value>) -> Result<()>,
    ) -> Result<()> {
        // Edit a copy: a failing closure leaves the image untouched, and an edit that changes
        // nothing keeps the exact bytes (and digest).
        let mut edited = self.config().clone();
        f(&mut edited)?;
        if &edited == self.config() {
            return Ok(());
        }
        self.config = edited;
        self.config_raw = None;
        self.manifest_raw = None;
        let layers = std::mem::take(&mut self.layers);
        self.set_layers(layers)
    }

    /// Replaces the layer list and rewrites `rootfs` to match. History is the caller's job
    /// (see `mutate`).
    pub fn set_layers(&mut self, layers: Vec<Layer>) -> Result<()> {
        let diff_ids: Vec<Value> = layers
            .iter()
            .map(|l| Value::String(l.diff_id.to_string()))
            .collect();
        let rootfs = self
            .config
            .entry("rootfs")
            .or_insert_with(|| Value::Object(Map::new()));
        let rootfs = rootfs
            .as_object_mut()
            .ok_or_else(|| Error::invalid("image config", "rootfs is not an object"))?;
        let unchanged = rootfs.get("diff_ids").and_then(Value::as_array) == Some(&diff_ids)
            && rootfs.get("type").and_then(Value::as_str) == Some("layers")
            && self.layers.len() == layers.len()
            && self
                .layers
                .iter()
                .zip(&layers)
                .all(|(a, b)| a.descriptor == b.descriptor);
        if !unchanged {
            rootfs.insert("type".into(), "layers".into());
            rootfs.insert("diff_ids".into(), Value::Array(diff_ids));
            self.config_raw = None;
            self.manifest_raw = None;
        }
        self.layers = layers;
        Ok(())
    }

    /// Manifest-level annotations (e.g. `org.opencontainers.image.base.name`).
    pub fn annotations(&self) -> Map<String, Value> {
        self.manifest.annotations.clone().unwrap_or_default()
    }

    pub fn set_annotations(&mut self, annotations: Map<String, Value>) {
        let new = (!annotations.is_empty()).then_some(annotations);
        if new != self.manifest.annotations {
            self.manifest.annotations = new;
            self.manifest_raw = None;
        }
    }

    pub fn config_bytes(&self) -> Vec<u8> {
        match &self.config_raw {
            Some(raw) => raw.clone(),
            None => to_canonical_json(&self.config),
        }
    }

    pub fn config_descriptor(&self) -> Descriptor {
        if self.config_raw.is_some() {
            return self.manifest.config.clone();
        }
        let bytes = self.config_bytes();
        let mut d = self.manifest.config.clone();
        d.digest = Digest::of(&bytes);
        d.size = bytes.len() as u64;
        d
    }

    /// The manifest as it will be written.
    pub fn manifest(&self) -> Manifest {
        if self.manifest_raw.is_some() {
            return self.manifest.clone();
        }
        let mut m = self.manifest.clone();
        m.config = self.config_descriptor();
        m.layers = self
            .layers
            .iter()
            .map(|l| {
                let mut d = l.descriptor.clone();
                d.media_type = self.flavor.layer_media_type(&d.media_type);
                d
            })
            .collect();
        m
    }

    pub fn raw_manifest(&self) -> RawManifest {
        let bytes = match &self.manifest_raw {
            Some(raw) => raw.clone(),
            None => to_canonical_json(&self.manifest()),
        };
        RawManifest {
            media_type: self.flavor.manifest_media_type().into(),
            bytes,
        }
    }

    /// Manifest digest (what a registry reports as the image digest).
    pub fn digest(&self) -> Digest {
        self.raw_manifest().digest()
    }

    /// Re-labels the image as OCI or Docker schema 2: manifest and config media types change,
    /// config and layer bytes do not (gzip/tar layers have the same bytes in both).
    pub fn set_flavor(&mut self, flavor: Flavor) {
        if flavor == self.flavor {
            return;
        }
        self.flavor = flavor;
        self.manifest.media_type = Some(flavor.manifest_media_type().into());
        self.manifest.config.media_type = flavor.config_media_type().into();
        self.manifest_raw = None;
    }

    /// Whether manifest and config are byte-identical to what was read.
    pub fn is_unmodified(&self) -> bool {
        self.manifest_raw.is_some() && self.config_raw.is_some()
    }

    /// The repository the config blob can be copied (mounted) from: set while the config
    /// is byte-identical to the one read from there.
    pub fn config_source(&self) -> Option<&Location> {
        self.config_raw.as_ref().and(self.stored_in.as_ref())
    }
}

fn read_diff_ids(config: &Map<String, Value>) -> Result<Vec<Digest>> {
    let Some(ids) = config.get("rootfs").and_then(|r| r.get("diff_ids")) else {
        return Ok(Vec::new());
    };
    let ids = ids
        .as_array()
        .ok_or_else(|| Error::invalid("image config", "rootfs.diff_ids is not an array"))?;
    ids.iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| {
                    Error::invalid("image config", "rootfs.diff_ids entry is not a string")
                })
                .and_then(Digest::parse)
        })
        .collect()
}
