//! `relaunch lifecycle-image`: derives a lifecycle image (the upstream layout:
//! `/cnb/lifecycle/lifecycle` with its phase symlinks, `/cnb/lifecycle/launcher` and its SBOM
//! files, label `io.buildpacks.lifecycle.apis`) whose launcher is another one. The exporter
//! copies `/cnb/lifecycle/launcher` and its SBOM into every app it builds, so platforms that
//! let users pick the lifecycle image adopt the launcher without any other change.

use relaunch_oci::layer::NORMALIZED_TIME;
use relaunch_oci::mutate::{self, History, LayerSel};
use relaunch_oci::{Child, Digest, Image};
use serde::{Deserialize, Serialize};

use crate::apis::ApiList;
use crate::contract::APP_LAUNCHER_PATH;
use crate::descriptor::{Descriptor, LauncherBinary, SECTION};
use crate::elf::elf_facts;
use crate::launcher::{parse_lifecycle_apis, LIFECYCLE_APIS_LABEL};

mod layer;
#[cfg(test)]
mod tests;

use layer::{launcher_layer_files, rewrite};

/// What the derivation recorded: JSON with the launcher's name, version and digest, the
/// image it was derived from and the layer it added.
pub const LAUNCHER_LABEL: &str = "io.buildpacks.lifecycle.launcher";
/// The launcher SBOM files the exporter copies into apps (RFC 0112), CycloneDX first.
pub const SBOM_FILES: [&str; 3] = [
    "/cnb/lifecycle/launcher.sbom.cdx.json",
    "/cnb/lifecycle/launcher.sbom.spdx.json",
    "/cnb/lifecycle/launcher.sbom.syft.json",
];
/// Largest SBOM accepted (ours is a few KiB).
pub const SBOM_LIMIT: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LifecycleImageError {
    #[error("launcher '{origin}' {reason}")]
    BadLauncher { origin: String, reason: String },
    #[error("launcher '{origin}' has no {SECTION} self-description: cannot check that it supports the APIs the lifecycle image advertises")]
    NotDescribed { origin: String },
    #[error("SBOM '{origin}' is not a CycloneDX JSON document ({reason})")]
    BadSbom { origin: String, reason: String },
    #[error("{image} is {platform}: relaunch's launcher runs on Linux only; pick Linux platforms with --platform")]
    NotLinux { image: String, platform: String },
    #[error("{image} is {platform} but no --launcher is for {arch} (given: {given}); add one, or pick platforms with --platform")]
    NoLauncherFor {
        image: String,
        platform: String,
        arch: String,
        given: String,
    },
    #[error("two launchers are for {0}; give one per architecture")]
    DuplicateArchitecture(String),
    #[error("{image} has no label {LIFECYCLE_APIS_LABEL}: is it a lifecycle image?")]
    NoApisLabel { image: String },
    #[error("{image}: label {LIFECYCLE_APIS_LABEL} is malformed: {reason}")]
    BadApisLabel { image: String, reason: String },
    #[error("launcher '{origin}' ({name} {version}) does not support {missing}, which {image} advertises in {LIFECYCLE_APIS_LABEL}; the exporter would package a launcher that cannot start apps built by it")]
    ApisNotCovered {
        origin: String,
        name: String,
        version: String,
        image: String,
        missing: String,
    },
    #[error("{image} has no {APP_LAUNCHER_PATH}: is it a lifecycle image?")]
    NoLauncher { image: String },
    #[error("{image}: {path} in the launcher's layer is a hard link or special file; only files, directories and symlinks can be copied")]
    UnsupportedEntry { image: String, path: String },
    #[error("{image}: {APP_LAUNCHER_PATH} is not a regular file ({kind})")]
    LauncherNotAFile { image: String, kind: String },
    #[error("{image}: {source}")]
    Oci {
        image: String,
        source: Box<relaunch_oci::Error>,
    },
}

/// A launcher ready to go into lifecycle images: a static ELF that describes itself.
#[derive(Debug, Clone)]
pub struct Replacement {
    pub binary: LauncherBinary,
    pub descriptor: Descriptor,
    /// OCI architecture of its ELF machine.
    pub architecture: String,
    /// CycloneDX JSON describing it, if one was found.
    pub sbom: Option<Vec<u8>>,
}

impl Replacement {
    /// Checks that `binary` can be a lifecycle image's launcher and that `sbom` (where it
    /// came from, its bytes) is a CycloneDX document.
    pub fn new(
        binary: LauncherBinary,
        sbom: Option<(String, Vec<u8>)>,
    ) -> Result<Replacement, LifecycleImageError> {
        let bad = |reason: String| LifecycleImageError::BadLauncher {
            origin: binary.origin.clone(),
            reason,
        };
        let facts = elf_facts(&binary.bytes).map_err(|e| bad(format!("is not usable: {e}")))?;
        if facts.dynamic {
            return Err(bad(format!(
                "is a dynamically linked {} ELF; it must be static (apps' run images need not have its loader)",
                facts.architecture
            )));
        }
        let descriptor =
            binary
                .descriptor
                .clone()
                .ok_or_else(|| LifecycleImageError::NotDescribed {
                    origin: binary.origin.clone(),
                })?;
        if let Some((origin, bytes)) = &sbom {
            check_cyclonedx(origin, bytes)?;
        }
        Ok(Replacement {
            binary,
            descriptor,
            architecture: facts.architecture,
            sbom: sbom.map(|(_, b)| b),
        })
    }
}

fn check_cyclonedx(origin: &str, bytes: &[u8]) -> Result<(), LifecycleImageError> {
    let bad = |reason: String| LifecycleImageError::BadSbom {
        origin: origin.to_string(),
        reason,
    };
    let doc: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    match doc.get("bomFormat").and_then(|v| v.as_str()) {
        Some("CycloneDX") => Ok(()),
        other => Err(bad(format!("bomFormat is {other:?}"))),
    }
}

/// Value of [`LAUNCHER_LABEL`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LauncherRecord {
    pub name: String,
    pub version: String,
    /// sha256 of the launcher binary.
    pub digest: Digest,
    /// The lifecycle image it was derived from (its manifest digest).
    pub source: Digest,
    /// diffID of the layer the derivation added.
    pub layer: Digest,
    /// The launcher SBOM files the layer writes (`sbom`) and removes (`removed`).
    pub sbom: Vec<String>,
    pub removed: Vec<String>,
}

/// One derived image.
#[derive(Debug, Clone)]
pub struct Derived {
    pub image: Image,
    pub record: LauncherRecord,
    /// diffID of the layer of an earlier derivation replaced in place.
    pub replaced: Option<Digest>,
    /// The image already carried exactly this launcher: nothing to write.
    pub unchanged: bool,
}

/// Picks the launcher for `image`'s platform (by ELF machine).
pub fn launcher_for<'a>(
    image: &Image,
    name: &str,
    launchers: &'a [Replacement],
) -> Result<&'a Replacement, LifecycleImageError> {
    let platform = image.platform();
    if platform.os != "linux" {
        return Err(LifecycleImageError::NotLinux {
            image: name.to_string(),
            platform: platform.to_string(),
        });
    }
    launchers
        .iter()
        .find(|l| l.architecture == platform.architecture)
        .ok_or_else(|| LifecycleImageError::NoLauncherFor {
            image: name.to_string(),
            platform: platform.to_string(),
            arch: platform.architecture.clone(),
            given: launchers
                .iter()
                .map(|l| l.architecture.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Derives one lifecycle image (named `name` in messages): checks API coverage, then adds
/// one layer that is the layer providing `/cnb/lifecycle/launcher` rewritten: the launcher
/// replaced (same mode and owner), its CycloneDX SBOM at `launcher.sbom.cdx.json`, the
/// other launcher SBOM files dropped and whited out. The new top layer is thus a complete
/// lifecycle layer: pack (builder `lifecycle.uri = "docker://…"`) and kpack take only the
/// last layer of a lifecycle image. A layer of an earlier derivation is replaced in place.
pub fn derive(
    source: Image,
    name: &str,
    launcher: &Replacement,
) -> Result<Derived, LifecycleImageError> {
    check_apis(&source, name, launcher)?;
    let oci = |e: relaunch_oci::Error| LifecycleImageError::Oci {
        image: name.to_string(),
        source: Box::new(e),
    };
    let earlier: Option<LauncherRecord> = source
        .label(LAUNCHER_LABEL)
        .and_then(|v| serde_json::from_str(&v).ok())
        .filter(|r: &LauncherRecord| source.layers().iter().any(|l| l.diff_id == r.layer));
    let files = launcher_layer_files(&source, earlier.as_ref().map(|r| &r.layer), name)?;
    let (layer, written, removed) = rewrite(files, launcher, name)?;
    let layer = layer.build().map_err(oci)?;

    let d = &launcher.descriptor;
    let record = LauncherRecord {
        name: d.name.clone(),
        version: d.version.clone(),
        digest: Digest::of(&launcher.binary.bytes),
        source: earlier
            .as_ref()
            .map_or_else(|| source.digest(), |r| r.source.clone()),
        layer: layer.diff_id.clone(),
        sbom: written,
        removed,
    };
    let label = serde_json::to_string(&record).expect("a record serialises");
    if earlier.as_ref() == Some(&record) && source.label(LAUNCHER_LABEL).as_deref() == Some(&label)
    {
        return Ok(Derived {
            image: source,
            record,
            replaced: None,
            unchanged: true,
        });
    }
    let history = History::created_by(
        format!(
            "relaunch lifecycle-image: {APP_LAUNCHER_PATH} is {} {}",
            d.name, d.version
        ),
        NORMALIZED_TIME,
    );
    let mut image = source;
    match &earlier {
        Some(r) => {
            let at = LayerSel::DiffId(r.layer.clone());
            mutate::replace_layer(&mut image, &at, layer, Some(history)).map_err(oci)?
        }
        None => mutate::append_layers(&mut image, vec![(layer, Some(history))]).map_err(oci)?,
    }
    mutate::set_labels(&mut image, [(LAUNCHER_LABEL, Some(label.as_str()))]).map_err(oci)?;
    Ok(Derived {
        image,
        record,
        replaced: earlier.map(|r| r.layer),
        unchanged: false,
    })
}

/// Refuses a launcher that does not support every API the lifecycle advertises.
fn check_apis(
    image: &Image,
    name: &str,
    launcher: &Replacement,
) -> Result<(), LifecycleImageError> {
    let value =
        image
            .label(LIFECYCLE_APIS_LABEL)
            .ok_or_else(|| LifecycleImageError::NoApisLabel {
                image: name.to_string(),
            })?;
    let (platform, buildpack) =
        parse_lifecycle_apis(&value).map_err(|reason| LifecycleImageError::BadApisLabel {
            image: name.to_string(),
            reason,
        })?;
    let d = &launcher.descriptor;
    let missing: Vec<String> = [
        ("Platform", platform.not_supported_by(&d.platform_apis)),
        ("Buildpack", buildpack.not_supported_by(&d.buildpack_apis)),
    ]
    .into_iter()
    .filter(|(_, m): &(_, ApiList)| !m.is_empty())
    .map(|(kind, m)| format!("{kind} API {m}"))
    .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(LifecycleImageError::ApisNotCovered {
        origin: launcher.binary.origin.clone(),
        name: d.name.clone(),
        version: d.version.clone(),
        image: name.to_string(),
        missing: missing.join(" and "),
    })
}

/// Derives every image of an index (artifacts are kept as they are); fails, deriving
/// nothing, when any platform cannot be derived.
pub fn derive_children(
    children: Vec<Child>,
    name: &str,
    launchers: &[Replacement],
) -> Result<Vec<(Child, Option<Derived>)>, LifecycleImageError> {
    check_distinct(launchers)?;
    children
        .into_iter()
        .map(|child| match child {
            Child::Image(image) => {
                let child_name = format!("{name} ({})", image.platform());
                let launcher = launcher_for(&image, &child_name, launchers)?;
                let derived = derive(image, &child_name, launcher)?;
                Ok((Child::Image(derived.image.clone()), Some(derived)))
            }
            opaque => Ok((opaque, None)),
        })
        .collect()
}

/// One launcher per architecture.
pub fn check_distinct(launchers: &[Replacement]) -> Result<(), LifecycleImageError> {
    for (i, l) in launchers.iter().enumerate() {
        if launchers[..i]
            .iter()
            .any(|o| o.architecture == l.architecture)
        {
            return Err(LifecycleImageError::DuplicateArchitecture(
                l.architecture.clone(),
            ));
        }
    }
    Ok(())
}
