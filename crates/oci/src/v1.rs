//! OCI / Docker schema 2 data types. Unknown fields are kept in `extra` so a parsed and
//! re-serialised document loses nothing.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::error::{Error, Result};

pub mod media_type {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const OCI_LAYER_NONDIST_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

    /// Everything a registry should be asked for (`Accept`), images and indexes.
    pub const MANIFEST_ACCEPT: [&str; 4] = [
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
    ];

    pub fn is_image_manifest(mt: &str) -> bool {
        mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
    }
    pub fn is_index(mt: &str) -> bool {
        mt == OCI_INDEX || mt == DOCKER_MANIFEST_LIST
    }
    /// A runnable image's config (anything else in `config` makes the manifest an artifact).
    pub fn is_image_config(mt: &str) -> bool {
        mt == OCI_CONFIG || mt == DOCKER_CONFIG
    }
}

/// How a layer blob is compressed, derived from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn of_media_type(mt: &str) -> Option<Compression> {
        use media_type::*;
        match mt {
            OCI_LAYER | "application/vnd.oci.image.layer.nondistributable.v1.tar" => {
                Some(Compression::None)
            }
            OCI_LAYER_GZIP
            | OCI_LAYER_NONDIST_GZIP
            | DOCKER_LAYER_GZIP
            | DOCKER_FOREIGN_LAYER_GZIP => Some(Compression::Gzip),
            OCI_LAYER_ZSTD => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// Manifest flavour: decides the media types written for manifest, config and layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Oci,
    Docker,
}

impl Flavor {
    pub fn of_manifest(mt: &str) -> Option<Flavor> {
        match mt {
            media_type::OCI_MANIFEST | media_type::OCI_INDEX => Some(Flavor::Oci),
            media_type::DOCKER_MANIFEST | media_type::DOCKER_MANIFEST_LIST => Some(Flavor::Docker),
            _ => None,
        }
    }
    pub fn manifest_media_type(self) -> &'static str {
        match self {
            Flavor::Oci => media_type::OCI_MANIFEST,
            Flavor::Docker => media_type::DOCKER_MANIFEST,
        }
    }
    pub fn config_media_type(self) -> &'static str {
        match self {
            Flavor::Oci => media_type::OCI_CONFIG,
            Flavor::Docker => media_type::DOCKER_CONFIG,
        }
    }
    /// The same-bytes media type of `mt` in this flavour (gzip/tar layers only);
    /// anything else is returned unchanged.
    pub fn layer_media_type(self, mt: &str) -> String {
        use media_type::*;
        match (self, mt) {
            (Flavor::Oci, DOCKER_LAYER_GZIP) => OCI_LAYER_GZIP.into(),
            (Flavor::Docker, OCI_LAYER_GZIP) => DOCKER_LAYER_GZIP.into(),
            _ => mt.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Platform {
    /// Parses `os/arch[/variant]`, e.g. `linux/arm64/v8`.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(Error::invalid(
                format!("platform {s:?}"),
                "expected os/arch[/variant]",
            ));
        }
        Ok(Platform {
            os: parts[0].into(),
            architecture: parts[1].into(),
            variant: parts.get(2).map(|v| v.to_string()),
            ..Default::default()
        })
    }

    /// Whether `self` (a wanted platform) accepts `candidate`; an unset variant accepts any,
    /// and an architecture's default variant equals an unset one (`arm64` = `arm64/v8`, as
    /// containers/image normalises).
    pub fn matches(&self, candidate: &Platform) -> bool {
        self.os == candidate.os
            && self.architecture == candidate.architecture
            && (self.variant.is_none() || self.variant() == candidate.variant())
    }

    /// The variant, with the architecture's default filled in when unset.
    fn variant(&self) -> Option<&str> {
        let default = match self.architecture.as_str() {
            "arm64" => Some("v8"),
            "arm" => Some("v7"),
            _ => None,
        };
        self.variant.as_deref().or(default)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Descriptor {
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
            extra: Map::new(),
        }
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key)?.as_str()
    }
}

/// OCI image manifest or Docker schema 2 manifest (same shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// OCI image index or Docker manifest list (same shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Index {
    pub fn empty_oci() -> Index {
        Index {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.into()),
            manifests: Vec::new(),
            annotations: None,
            extra: Map::new(),
        }
    }
}

/// Media type of a manifest document: the declared one if any, else sniffed from its shape
/// (OCI allows omitting `mediaType`).
pub fn sniff_manifest_media_type(bytes: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    if let Some(mt) = v.get("mediaType").and_then(Value::as_str) {
        return Some(mt.to_string());
    }
    if v.get("manifests").is_some() {
        Some(media_type::OCI_INDEX.into())
    } else if v.get("config").is_some() {
        Some(media_type::OCI_MANIFEST.into())
    } else {
        None
    }
}

/// Serialises a document the way this engine always does (compact, key order as held),
/// so the same model always yields the same digest.
pub fn to_canonical_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON serialisation of in-memory model cannot fail")
}

#[cfg(test)]
mod tests {
    use super::Platform;

    #[test]
    fn default_variants_match_unset_ones() {
        let p = |s: &str| Platform::parse(s).unwrap();
        assert!(p("linux/arm64/v8").matches(&p("linux/arm64")));
        assert!(p("linux/arm64").matches(&p("linux/arm64/v8")));
        assert!(p("linux/arm/v7").matches(&p("linux/arm")));
        assert!(!p("linux/arm/v6").matches(&p("linux/arm")));
        assert!(!p("linux/arm64/v8").matches(&p("linux/amd64")));
    }
}
