//! `relaunch lifecycle-image`: derives a lifecycle image (the upstream layout:
//! `/cnb/lifecycle/lifecycle` with its phase symlinks, `/cnb/lifecycle/launcher` and its SBOM
//! files, label `io.buildpacks.lifecycle.apis`) whose launcher is another one. The exporter
//! copies `/cnb/lifecycle/launcher` and its SBOM into every app it builds, so platforms that
//! let users pick the lifecycle image adopt the launcher without any other change.

use relaunch_oci::layer::read::{layer_files, FsEntry, FsKind};
use relaunch_oci::layer::{Content, Entry, LayerBuilder, NORMALIZED_TIME};
use relaunch_oci::mutate::{self, History, LayerSel};
use relaunch_oci::{Child, Digest, Image};
use serde::{Deserialize, Serialize};

use crate::apis::ApiList;
use crate::contract::APP_LAUNCHER_PATH;
use crate::descriptor::{Descriptor, LauncherBinary, SECTION};
use crate::elf::elf_facts;
use crate::launcher::{parse_lifecycle_apis, LIFECYCLE_APIS_LABEL};

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
/// Most file content read from the layer holding the launcher (upstream's is ~35 MB).
const LAYER_LIMIT: u64 = 512 << 20;
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

#[derive(Debug, thiserror::Error)]
pub enum LifecycleImageError {
    #[error("launcher '{origin}' {reason}")]
    BadLauncher { origin: String, reason: String },
    #[error("launcher '{origin}' has no {SECTION} self-description: cannot check that it supports the APIs the lifecycle image advertises")]
    NotDescribed { origin: String },
    #[error("SBOM '{origin}' is not a CycloneDX JSON document ({reason})")]
    BadSbom { origin: String, reason: String },
    #[error("{image} is {platform}: relaunch's launcher runs on Linux only")]
    NotLinux { image: String, platform: String },
    #[error("{image} is {platform} but no --launcher is for {arch} (given: {given})")]
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
    /// Checks that `binary` can be a lifecycle image's launcher and `sbom` (named
    /// `sbom_origin` in messages) is a CycloneDX document.
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

/// The entries (with contents) of the topmost layer holding `/cnb/lifecycle/launcher`,
/// reading layers from the top down and stopping there, so lower layers (the base image)
/// are never downloaded. `skip` is an earlier derivation's layer.
fn launcher_layer_files(
    image: &Image,
    skip: Option<&Digest>,
    name: &str,
) -> Result<Vec<(FsEntry, Vec<u8>)>, LifecycleImageError> {
    let no_launcher = || LifecycleImageError::NoLauncher {
        image: name.to_string(),
    };
    for (i, layer) in image.layers().iter().enumerate().rev() {
        if Some(&layer.diff_id) == skip {
            continue;
        }
        let files = layer_files(layer, i, LAYER_LIMIT).map_err(|e| LifecycleImageError::Oci {
            image: name.to_string(),
            source: Box::new(e),
        })?;
        if files.iter().any(|(e, _)| e.path == APP_LAUNCHER_PATH) {
            return Ok(files);
        }
        if files.iter().any(|(e, _)| hides_launcher(e)) {
            return Err(no_launcher());
        }
    }
    Err(no_launcher())
}

/// Whether `e` hides a launcher in lower layers: a whiteout of it or of a parent, an opaque
/// whiteout in a parent, or a parent replaced by something that is not a directory.
fn hides_launcher(e: &FsEntry) -> bool {
    let is_parent = |p: &str| {
        APP_LAUNCHER_PATH
            .strip_prefix(p)
            .is_some_and(|rest| rest.starts_with('/'))
    };
    let (dir, file) = e.path.rsplit_once('/').unwrap_or(("", &e.path));
    if file == OPAQUE_WHITEOUT {
        return is_parent(dir);
    }
    if let Some(hidden) = file.strip_prefix(WHITEOUT_PREFIX) {
        let target = format!("{dir}/{hidden}");
        return target == APP_LAUNCHER_PATH || is_parent(&target);
    }
    e.kind != FsKind::Dir && is_parent(&e.path)
}

/// The launcher layer's entries with the launcher and its SBOM files swapped; returns the
/// builder, the SBOM files written and those whited out.
fn rewrite(
    files: Vec<(FsEntry, Vec<u8>)>,
    launcher: &Replacement,
    name: &str,
) -> Result<(LayerBuilder, Vec<String>, Vec<String>), LifecycleImageError> {
    let original = files
        .iter()
        .map(|(e, _)| e)
        .rfind(|e| e.path == APP_LAUNCHER_PATH)
        .cloned()
        .expect("the launcher layer holds the launcher");
    if original.kind != FsKind::File {
        return Err(LifecycleImageError::LauncherNotAFile {
            image: name.to_string(),
            kind: format!("{:?}", original.kind).to_lowercase(),
        });
    }
    let cdx = SBOM_FILES[0];
    let sbom_in_layer = files.iter().any(|(e, _)| e.path == cdx);
    let ours = |path: &str, mode, uid, gid, bytes: &[u8]| Entry {
        path: path.to_string(),
        mode,
        uid,
        gid,
        content: Content::Bytes(bytes.to_vec()),
    };
    let mut builder = LayerBuilder::new();
    let mut written = Vec::new();
    for (e, data) in files {
        let whiteout_of_sbom = SBOM_FILES.iter().any(|f| {
            let (dir, file) = f.rsplit_once('/').unwrap_or(("", f));
            e.path == format!("{dir}/{WHITEOUT_PREFIX}{file}")
        });
        if whiteout_of_sbom {
            continue; // written again below
        }
        if e.path == APP_LAUNCHER_PATH {
            let (mode, uid, gid) = (original.mode, original.uid, original.gid);
            builder = builder.entry(ours(&e.path, mode, uid, gid, &launcher.binary.bytes));
            if let (Some(sbom), false) = (&launcher.sbom, sbom_in_layer) {
                // Upstream's mode and owner for SBOM files.
                builder = builder.entry(ours(cdx, 0o644, uid, gid, sbom));
                written.push(cdx.to_string());
            }
            continue;
        }
        if SBOM_FILES.contains(&e.path.as_str()) {
            if let (Some(sbom), true) = (&launcher.sbom, e.path == cdx) {
                builder = builder.entry(ours(cdx, e.mode, e.uid, e.gid, sbom));
                written.push(cdx.to_string());
            }
            continue;
        }
        let content = match e.kind {
            FsKind::Dir => Content::Dir,
            FsKind::File => Content::Bytes(data),
            FsKind::Symlink(target) => Content::Symlink(target),
            FsKind::Hardlink(_) | FsKind::Other => {
                return Err(LifecycleImageError::UnsupportedEntry {
                    image: name.to_string(),
                    path: e.path,
                })
            }
        };
        builder = builder.entry(Entry {
            path: e.path,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            content,
        });
    }
    // Whiteouts hide the Go launcher's SBOM files in the layer below.
    let mut removed = Vec::new();
    for path in SBOM_FILES {
        if !written.iter().any(|w| w == path) {
            let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
            let whiteout = format!("{dir}/{WHITEOUT_PREFIX}{file}");
            builder = builder.entry(Entry::file(whiteout, 0o644, Vec::new()));
            removed.push(path.to_string());
        }
    }
    Ok((builder, written, removed))
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use object::Architecture;
    use relaunch_oci::layer::read::{layer_entries, list_files, read_file};

    use super::*;
    use crate::fixtures::{upstream_lifecycle_image, LifecycleFiles, PHASES};
    use crate::testing::elf_for;

    const SBOM: &[u8] = br#"{"bomFormat":"CycloneDX","specVersion":"1.5"}"#;
    const P_ALL: [&str; 9] = [
        "0.7", "0.8", "0.9", "0.10", "0.11", "0.12", "0.13", "0.14", "0.15",
    ];
    const B_ALL: [&str; 6] = ["0.7", "0.8", "0.9", "0.10", "0.11", "0.12"];

    fn ours(arch: Architecture, version: &str, platform_apis: &str) -> Replacement {
        let json = format!(
            r#"{{"name":"relaunch-launcher","version":"{version}","platform-apis":[{platform_apis}],"buildpack-apis":["0.7","0.8","0.9","0.10","0.11","0.12"]}}"#
        );
        let bytes = elf_for(arch, Some(json.as_bytes()));
        let binary = LauncherBinary::from_bytes("ours".into(), bytes, 0o755).unwrap();
        Replacement::new(binary, Some(("ours.cdx.json".into(), SBOM.to_vec()))).unwrap()
    }

    fn full(arch: Architecture) -> Replacement {
        let all = P_ALL.map(|v| format!("\"{v}\"")).join(",");
        ours(arch, "1.0.0", &all)
    }

    fn upstream(arch: &str) -> Image {
        upstream_lifecycle_image(&LifecycleFiles {
            version: "0.21.17".into(),
            platform_apis: P_ALL.map(String::from).to_vec(),
            buildpack_apis: B_ALL.map(String::from).to_vec(),
            architecture: arch.into(),
            lifecycle: relaunch_oci::layer::Content::Bytes(b"go lifecycle".to_vec()),
            launcher: relaunch_oci::layer::Content::Bytes(b"go launcher".to_vec()),
        })
        .unwrap()
    }

    fn tree(image: &Image) -> BTreeMap<String, FsEntry> {
        list_files(image)
            .unwrap()
            .into_iter()
            .map(|e| (e.path.clone(), e))
            .collect()
    }

    #[test]
    fn one_layer_swaps_the_launcher_and_its_sboms_keeping_everything_else() {
        let mut src = upstream("amd64");
        // An unusual mode and owner, to see both kept.
        let odd = LayerBuilder::new()
            .entry(Entry::file(APP_LAUNCHER_PATH, 0o750, b"go launcher".to_vec()).owned_by(7, 8))
            .build()
            .unwrap();
        mutate::append_layers(&mut src, vec![(odd, None)]).unwrap();
        let launcher = full(Architecture::X86_64);
        let d = derive(src.clone(), "src", &launcher).unwrap();
        assert_eq!(d.image.layers().len(), src.layers().len() + 1);
        assert_eq!(d.image.diff_ids()[..src.layers().len()], src.diff_ids()[..]);

        let (entry, bytes) = read_file(&d.image, APP_LAUNCHER_PATH, 1 << 20).unwrap();
        assert_eq!(bytes, launcher.binary.bytes);
        assert_eq!((entry.mode & 0o7777, entry.uid, entry.gid), (0o750, 7, 8));
        let (_, sbom) = read_file(&d.image, SBOM_FILES[0], 1 << 20).unwrap();
        assert_eq!(sbom, SBOM);

        let (before, after) = (tree(&src), tree(&d.image));
        for path in &SBOM_FILES[1..] {
            assert!(
                before.contains_key(*path) && !after.contains_key(*path),
                "{path}"
            );
        }
        for (path, e) in &before {
            if path != APP_LAUNCHER_PATH && !SBOM_FILES.contains(&path.as_str()) {
                assert_eq!(after.get(path), Some(e), "{path} unchanged");
            }
        }
        assert_eq!(
            after["/cnb/lifecycle/exporter"].kind,
            FsKind::Symlink("lifecycle".into())
        );

        let record: LauncherRecord =
            serde_json::from_str(&d.image.label(LAUNCHER_LABEL).unwrap()).unwrap();
        assert_eq!(record, d.record);
        assert_eq!(record.source, src.digest());
        assert_eq!(record.digest, Digest::of(&launcher.binary.bytes));
        assert_eq!(record.removed, SBOM_FILES[1..].to_vec());
        assert_eq!(
            d.image.label(LIFECYCLE_APIS_LABEL),
            src.label(LIFECYCLE_APIS_LABEL)
        );
    }

    #[test]
    fn the_new_top_layer_alone_is_a_complete_lifecycle_layer() {
        let launcher = full(Architecture::X86_64);
        let d = derive(upstream("amd64"), "src", &launcher).unwrap();
        let top = d.image.layers().len() - 1;
        let entries = layer_entries(&d.image.layers()[top], top).unwrap();
        // pack strips the first entry (`/cnb`) and the `/cnb/` prefix; kpack copies it as is.
        assert_eq!(entries[0].path, "/cnb");
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        for phase in PHASES
            .iter()
            .chain(&["lifecycle", "lifecycle.toml", "launcher"])
        {
            assert!(
                paths.contains(&format!("/cnb/lifecycle/{phase}").as_str()),
                "{phase}: {paths:?}"
            );
        }
        assert!(paths.contains(&SBOM_FILES[0]));
        for gone in &SBOM_FILES[1..] {
            assert!(!paths.contains(gone), "{gone}");
            let whiteout = gone.replace("/launcher.sbom", "/.wh.launcher.sbom");
            assert!(paths.contains(&whiteout.as_str()), "{whiteout}");
        }
    }

    #[test]
    fn layers_below_the_launchers_are_never_read() {
        let mut src = upstream("amd64");
        let mut layers = src.layers().to_vec();
        // The base layer's blob is garbage: reading it would fail verification.
        layers[0].source =
            relaunch_oci::BlobSource::Memory(std::sync::Arc::new(b"garbage".to_vec()));
        src.set_layers(layers).unwrap();
        assert!(list_files(&src).is_err(), "reading every layer fails");
        derive(src, "src", &full(Architecture::X86_64)).unwrap();
    }

    #[test]
    fn deriving_is_deterministic_and_re_deriving_replaces_in_place() {
        let src = upstream("amd64");
        let a = derive(src.clone(), "src", &full(Architecture::X86_64)).unwrap();
        let b = derive(src.clone(), "src", &full(Architecture::X86_64)).unwrap();
        assert_eq!(a.image.digest(), b.image.digest());

        let again = derive(a.image.clone(), "derived", &full(Architecture::X86_64)).unwrap();
        assert!(again.unchanged);
        assert_eq!(again.image.digest(), a.image.digest());

        let all = P_ALL.map(|v| format!("\"{v}\"")).join(",");
        let newer = ours(Architecture::X86_64, "2.0.0", &all);
        let c = derive(a.image.clone(), "derived", &newer).unwrap();
        assert_eq!(c.replaced.as_ref(), Some(&a.record.layer));
        assert_eq!(c.image.layers().len(), a.image.layers().len());
        assert_eq!(c.record.source, src.digest(), "still names the original");
        assert_eq!(
            c.record.removed, a.record.removed,
            "SBOMs below still whited out"
        );
        let (_, bytes) = read_file(&c.image, APP_LAUNCHER_PATH, 1 << 20).unwrap();
        assert_eq!(bytes, newer.binary.bytes);
    }

    #[test]
    fn a_launcher_missing_an_advertised_api_is_refused_naming_it() {
        let narrow = ours(Architecture::X86_64, "1.0.0", r#""0.7","0.14""#);
        let e = derive(upstream("amd64"), "src", &narrow).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("does not support Platform API 0.8,0.9,0.10,0.11,0.12,0.13,0.15"),
            "{msg}"
        );
        assert!(!msg.contains("Buildpack"), "{msg}");
    }

    #[test]
    fn bad_sources_are_named() {
        let launcher = full(Architecture::X86_64);
        let mut no_label = upstream("amd64");
        mutate::set_labels(&mut no_label, [(LIFECYCLE_APIS_LABEL, None)]).unwrap();
        let e = derive(no_label, "src", &launcher).unwrap_err();
        assert!(
            e.to_string()
                .contains("has no label io.buildpacks.lifecycle.apis"),
            "{e}"
        );

        let mut bad_label = upstream("amd64");
        mutate::set_labels(&mut bad_label, [(LIFECYCLE_APIS_LABEL, Some("[]"))]).unwrap();
        let e = derive(bad_label, "src", &launcher).unwrap_err();
        assert!(e.to_string().contains("is malformed"), "{e}");

        let mut no_launcher = upstream("amd64");
        let wh = LayerBuilder::new()
            .entry(Entry::file(
                "/cnb/lifecycle/.wh.launcher",
                0o644,
                Vec::new(),
            ))
            .build()
            .unwrap();
        mutate::append_layers(&mut no_launcher, vec![(wh, None)]).unwrap();
        let e = derive(no_launcher, "src", &launcher).unwrap_err();
        assert_eq!(
            e.to_string(),
            "src has no /cnb/lifecycle/launcher: is it a lifecycle image?"
        );
    }

    #[test]
    fn launchers_must_be_static_self_described_elf_with_a_cyclonedx_sbom() {
        let described =
            br#"{"name":"x","version":"1","platform-apis":["0.7"],"buildpack-apis":["0.7"]}"#;
        let bin = |bytes| LauncherBinary::from_bytes("l".into(), bytes, 0o755).unwrap();
        let e = Replacement::new(bin(elf_for(Architecture::X86_64, None)), None).unwrap_err();
        assert!(
            e.to_string().contains("no .cnb_launcher self-description"),
            "{e}"
        );
        let sbom = Some((
            "l.cdx.json".to_string(),
            br#"{"spdxVersion":"SPDX-2.3"}"#.to_vec(),
        ));
        let e = Replacement::new(bin(elf_for(Architecture::X86_64, Some(described))), sbom)
            .unwrap_err();
        assert!(
            e.to_string().contains("not a CycloneDX JSON document"),
            "{e}"
        );
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let e = Replacement::new(bin(me), None).unwrap_err();
        assert!(e.to_string().contains("dynamically linked"), "{e}");
    }

    #[test]
    fn each_platform_gets_the_launcher_of_its_machine() {
        let launchers = [full(Architecture::Aarch64), full(Architecture::X86_64)];
        let children = vec![
            Child::Image(upstream("amd64")),
            Child::Image(upstream("arm64")),
        ];
        let derived = derive_children(children, "idx", &launchers).unwrap();
        for ((_, d), want) in derived.iter().zip([&launchers[1], &launchers[0]]) {
            let d = d.as_ref().unwrap();
            let (_, bytes) = read_file(&d.image, APP_LAUNCHER_PATH, 1 << 20).unwrap();
            assert_eq!(bytes, want.binary.bytes);
        }

        let only_amd = [full(Architecture::X86_64)];
        let children = vec![
            Child::Image(upstream("amd64")),
            Child::Image(upstream("arm64")),
        ];
        let e = derive_children(children, "idx", &only_amd).unwrap_err();
        assert_eq!(
            e.to_string(),
            "idx (linux/arm64) is linux/arm64 but no --launcher is for arm64 (given: amd64)"
        );
        let twice = [full(Architecture::X86_64), full(Architecture::X86_64)];
        assert!(derive_children(vec![], "idx", &twice).is_err());
    }
}
