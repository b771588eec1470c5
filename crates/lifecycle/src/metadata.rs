//! The labels the exporter writes (`io.buildpacks.lifecycle.metadata`,
//! `io.buildpacks.build.metadata`) and the launcher's `<layers>/config/metadata.toml`.
//!
//! Only the fields this crate reads or rewrites are typed; everything else is kept verbatim
//! in `rest` so a rewrite never drops keys another tool (rebaser, pack) relies on (G-17).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::apis::Api;
use crate::check::AppApis;

pub const LIFECYCLE_METADATA_LABEL: &str = "io.buildpacks.lifecycle.metadata";
pub const BUILD_METADATA_LABEL: &str = "io.buildpacks.build.metadata";

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("image has no {0} label: it is not a CNB app image")]
    MissingLabel(&'static str),
    #[error("label {label} is not valid JSON of the expected shape: {cause}")]
    BadLabel {
        label: &'static str,
        cause: serde_json::Error,
    },
    #[error("{LIFECYCLE_METADATA_LABEL} has no {0}")]
    MissingField(&'static str),
    #[error("cannot parse <layers>/config/metadata.toml: {0}")]
    BadMetadataToml(String),
}

/// How the app image carries its launcher (P-5a).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LauncherMode {
    /// `/cnb/lifecycle/launcher` is the launcher executable itself (what the exporter writes).
    Binary,
    /// `/cnb/lifecycle/launcher` is a symlink to the run image's launcher.
    Symlink,
}

impl std::fmt::Display for LauncherMode {
    /// The label's spelling (`binary` / `symlink`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LauncherMode::Binary => "binary",
            LauncherMode::Symlink => "symlink",
        })
    }
}

/// `io.buildpacks.lifecycle.metadata` `launcher` object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LauncherRecord {
    /// diffID of the launcher layer, in both modes.
    #[serde(default)]
    pub sha: String,
    /// Absent on images from the reference exporter, which means `binary`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<LauncherMode>,
    /// Symlink target (run-image launcher path); only in symlink mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl LauncherRecord {
    pub fn mode(&self) -> LauncherMode {
        self.mode.unwrap_or(LauncherMode::Binary)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShaRecord {
    #[serde(default)]
    pub sha: String,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunImageRecord {
    #[serde(rename = "topLayer", default)]
    pub top_layer: String,
    #[serde(default)]
    pub reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirrors: Option<Vec<String>>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `io.buildpacks.lifecycle.metadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LifecycleMetadata {
    /// Top-level key order as read, so a rewrite only changes what it means to.
    #[serde(skip)]
    order: Vec<String>,
    #[serde(default)]
    pub launcher: LauncherRecord,
    #[serde(default)]
    pub config: ShaRecord,
    #[serde(rename = "runImage", default)]
    pub run_image: RunImageRecord,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl LifecycleMetadata {
    /// Parses the label value; `None` (label absent) is an error naming the label, and so
    /// is a missing `launcher.sha` (every launcher operation needs the launcher layer).
    pub fn from_label(value: Option<&str>) -> Result<Self, MetadataError> {
        let md = Self::parse_label(value)?;
        if md.launcher.sha.is_empty() {
            return Err(MetadataError::MissingField("launcher.sha"));
        }
        Ok(md)
    }

    /// As [`Self::from_label`] but without requiring `launcher.sha`: a rebase only needs
    /// `runImage`, and the reference rebaser accepts images from exporters that omit it.
    pub fn parse_label(value: Option<&str>) -> Result<Self, MetadataError> {
        let value = value.ok_or(MetadataError::MissingLabel(LIFECYCLE_METADATA_LABEL))?;
        let mut md: Self =
            serde_json::from_str(value).map_err(|cause| MetadataError::BadLabel {
                label: LIFECYCLE_METADATA_LABEL,
                cause,
            })?;
        md.order = key_order(value);
        Ok(md)
    }

    pub fn to_label(&self) -> String {
        in_order(self, &self.order)
    }

    /// The run image's name: `runImage.image` (Platform >= 0.12), else
    /// `stack.runImage.image`, which the exporter records at every Platform API.
    pub fn run_image_name(&self) -> Option<&str> {
        let stack = || {
            self.rest
                .get("stack")?
                .get("runImage")?
                .get("image")?
                .as_str()
        };
        self.run_image
            .image
            .as_deref()
            .or_else(stack)
            .filter(|n| !n.is_empty())
    }
}

/// Top-level keys of a JSON object, in document order (empty if it is not one).
fn key_order(json: &str) -> Vec<String> {
    serde_json::from_str::<Map<String, Value>>(json)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Compact JSON of `value` with the keys listed in `order` first, in that order.
fn in_order<T: Serialize>(value: &T, order: &[String]) -> String {
    let Value::Object(mut map) = serde_json::to_value(value).expect("metadata serialises") else {
        unreachable!("metadata serialises to an object")
    };
    let mut out = Map::new();
    for key in order {
        if let Some(v) = map.remove(key) {
            out.insert(key.clone(), v);
        }
    }
    out.extend(map);
    Value::Object(out).to_string()
}

/// `io.buildpacks.build.metadata`; only `launcher` is rewritten.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildMetadata {
    #[serde(skip)]
    order: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launcher: Option<Value>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl BuildMetadata {
    /// A missing label yields an empty document (the exporter always writes one, but the
    /// launcher rewrite must not fail on images from other tools).
    pub fn from_label(value: Option<&str>) -> Result<Self, MetadataError> {
        match value {
            None => Ok(Self::default()),
            Some(v) => {
                let mut md: Self =
                    serde_json::from_str(v).map_err(|cause| MetadataError::BadLabel {
                        label: BUILD_METADATA_LABEL,
                        cause,
                    })?;
                md.order = key_order(v);
                Ok(md)
            }
        }
    }

    pub fn to_label(&self) -> String {
        in_order(self, &self.order)
    }

    /// The Buildpack APIs a symlink-mode `launcher` entry records, `None` when it records
    /// none (binary mode, other tools, relaunch before they were recorded) or they do not
    /// parse: the caller then reads them from the config layer.
    pub fn recorded_buildpack_apis(&self) -> Option<Vec<Api>> {
        self.launcher
            .as_ref()?
            .get("buildpack-apis")?
            .as_array()?
            .iter()
            .map(|v| v.as_str()?.parse().ok())
            .collect()
    }
}

/// The `launcher` entry of `io.buildpacks.build.metadata` for each mode. In symlink mode no
/// version is recorded: the launcher that runs is whatever the run image provides at start
/// time, which changes with every base swap without touching this label
/// (docs/run-image-contract.md). The APIs that launcher must support are recorded instead,
/// so validating a new run image needs no read of the config layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BuildLauncher<'a> {
    Symlink { target: &'a str, apis: &'a AppApis },
    Binary { version: &'a str },
}

impl BuildLauncher<'_> {
    pub fn to_value(self) -> Value {
        match self {
            BuildLauncher::Symlink { target, apis } => {
                let buildpack_apis: BTreeSet<Api> = apis.buildpacks.iter().map(|b| b.api).collect();
                serde_json::json!({
                    "type": "symlink",
                    "target": target,
                    "provided-by": "run-image",
                    "platform-api": apis.platform,
                    "buildpack-apis": buildpack_apis,
                })
            }
            BuildLauncher::Binary { version } => {
                serde_json::json!({"version": version, "type": "binary"})
            }
        }
    }
}

/// The parts of `<layers>/config/metadata.toml` the launcher verifies at start (L-6).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LaunchMetadata {
    pub buildpacks: Vec<BuildpackApi>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildpackApi {
    pub id: String,
    pub api: Api,
}

impl LaunchMetadata {
    /// Decodes with the launcher's own metadata.toml decoder, so a file the launcher would
    /// refuse at start is refused here too.
    pub fn parse(bytes: &[u8]) -> Result<Self, MetadataError> {
        let md =
            launcher::metadata::Metadata::parse(bytes).map_err(MetadataError::BadMetadataToml)?;
        let buildpacks = md
            .buildpacks
            .into_iter()
            .map(|b| match b.api.parse() {
                Ok(api) => Ok(BuildpackApi { id: b.id, api }),
                Err(e) => Err(MetadataError::BadMetadataToml(format!(
                    "buildpack '{}': {e}",
                    b.id
                ))),
            })
            .collect::<Result<_, _>>()?;
        Ok(LaunchMetadata { buildpacks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPORTED: &str = r#"{"app":[{"sha":"sha256:a"}],"config":{"sha":"sha256:c"},"launcher":{"sha":"sha256:l"},"process-types":{"sha":"sha256:p"},"buildpacks":[{"key":"bp","version":"1","layers":{},"store":{"metadata":{"x":1}}}],"runImage":{"topLayer":"sha256:t","reference":"r@sha256:d","image":"r","mirrors":["m"]},"stack":{"runImage":{"image":"r"}}}"#;

    #[test]
    fn rewriting_the_launcher_keeps_every_other_key() {
        let mut md = LifecycleMetadata::from_label(Some(EXPORTED)).unwrap();
        assert_eq!(md.launcher.mode(), LauncherMode::Binary);
        md.launcher.mode = Some(LauncherMode::Symlink);
        md.launcher.target = Some("/usr/local/bin/launcher".into());
        let label = md.to_label();
        let back: Value = serde_json::from_str(&label).unwrap();
        let orig: Value = serde_json::from_str(EXPORTED).unwrap();
        assert_eq!(key_order(&label), key_order(EXPORTED), "key order kept");
        for key in [
            "app",
            "config",
            "process-types",
            "buildpacks",
            "runImage",
            "stack",
        ] {
            assert_eq!(back[key], orig[key], "{key} changed");
        }
        assert_eq!(back["launcher"]["type"], "symlink");
        assert_eq!(back["launcher"]["target"], "/usr/local/bin/launcher");
        assert_eq!(back["launcher"]["sha"], "sha256:l");
    }

    #[test]
    fn missing_or_broken_labels_are_named() {
        let e = LifecycleMetadata::from_label(None).unwrap_err();
        assert!(e.to_string().contains(LIFECYCLE_METADATA_LABEL));
        let e = LifecycleMetadata::from_label(Some("{")).unwrap_err();
        assert!(e.to_string().contains("not valid JSON"));
        let e = LifecycleMetadata::from_label(Some(r#"{"app":[]}"#)).unwrap_err();
        assert!(e.to_string().contains("launcher.sha"));
    }

    #[test]
    fn launch_metadata_reads_buildpack_apis_and_ignores_the_rest() {
        let md = LaunchMetadata::parse(
            b"buildpack-default-process-type = \"web\"\n[[buildpacks]]\nid = \"a/b\"\nversion = \"1\"\napi = \"0.10\"\n[[processes]]\ntype = \"web\"\ncommand = [\"x\"]\n",
        )
        .unwrap();
        assert_eq!(md.buildpacks[0].api, Api::new(0, 10));
        let e = LaunchMetadata::parse(b"[[buildpacks]]\nid = \"a\"\napi = \"zz\"\n").unwrap_err();
        assert!(e.to_string().contains("buildpack 'a'"), "{e}");
        assert!(e.to_string().contains("'zz'"), "{e}");
        let e = LaunchMetadata::parse(b"[[buildpacks]]\nid = \"a\"\napi = 10\n").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
    }
}
