//! The exporter's input files, read as the reference lifecycle reads them: group.toml,
//! analyzed.toml, `<layers>/config/metadata.toml`, project-metadata.toml, run.toml /
//! stack.toml, and each buildpack's `<layer>.toml` / `store.toml`.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// An input file that cannot be read or parsed; `what` is the reference's wording
/// (`group file`, `analyzed file`, …).
#[derive(Debug, thiserror::Error)]
#[error("failed to read {what}: {reason}")]
pub struct InputError {
    pub what: &'static str,
    pub reason: String,
}

/// Reads and parses a TOML file; `Ok(None)` when it does not exist and `optional`.
fn read_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
    optional: bool,
) -> Result<Option<T>, InputError> {
    let text = match read_bounded(path) {
        Ok(t) => t,
        Err(e) if optional && e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(InputError {
                what,
                reason: format!("open {}: {}", path.display(), go_io_error(&e)),
            })
        }
    };
    toml::from_str(&text).map(Some).map_err(|e| InputError {
        what,
        reason: format!("toml: {}", one_line(&e.to_string())),
    })
}

/// Input TOML files are small; anything larger is refused rather than read into memory.
pub const TOML_LIMIT: u64 = 16 << 20;

/// The file's text, refusing files over [`TOML_LIMIT`] (buildpacks write some of them) and
/// anything but a regular file; a missing file stays `NotFound`.
fn read_bounded(path: &Path) -> io::Result<String> {
    let bytes = read_local(path, TOML_LIMIT)?;
    String::from_utf8(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
}

/// The engine's bounded read of a local file, as an `io::Error` that keeps `NotFound`.
pub fn read_local(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    relaunch_oci::local::read_bounded(path, limit, &path.display().to_string()).map_err(|e| {
        if e.is_missing_file() {
            io::ErrorKind::NotFound.into()
        } else {
            io::Error::other(e.to_string())
        }
    })
}

/// Go's wording for the common I/O errors, so messages read like the reference's.
pub fn go_io_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One `[[group]]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct GroupEntry {
    pub id: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub api: String,
    #[serde(default)]
    pub homepage: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Group {
    #[serde(default)]
    pub group: Vec<GroupEntry>,
    #[serde(default, rename = "group-extensions")]
    pub extensions: Vec<GroupEntry>,
}

impl Group {
    pub fn read(path: &Path) -> Result<Group, InputError> {
        Ok(read_toml(path, "group file", false)?.unwrap_or_default())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageRecord {
    #[serde(default)]
    pub reference: String,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub mirrors: Vec<String>,
}

/// The previous image's layer digests, as the analyzer copied them into analyzed.toml.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PreviousMetadata {
    #[serde(default)]
    pub buildpacks: Vec<PreviousBuildpack>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PreviousBuildpack {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub layers: BTreeMap<String, PreviousLayer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PreviousLayer {
    #[serde(default)]
    pub sha: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Analyzed {
    /// `[previous-image]` (Platform >= 0.8) or `[image]` (older).
    #[serde(default, rename = "previous-image", alias = "image")]
    pub previous_image: Option<ImageRecord>,
    #[serde(default, rename = "run-image")]
    pub run_image: Option<ImageRecord>,
    #[serde(default)]
    pub metadata: PreviousMetadata,
}

impl Analyzed {
    pub fn read(path: &Path) -> Result<Analyzed, InputError> {
        let analyzed: Analyzed = read_toml(path, "analyzed file", false)?.unwrap_or_default();
        if analyzed
            .run_image
            .as_ref()
            .is_none_or(|r| r.reference.is_empty())
        {
            return Err(InputError {
                what: "analyzed file",
                reason: format!("{} has no [run-image] reference", path.display()),
            });
        }
        Ok(analyzed)
    }

    pub fn previous_reference(&self) -> Option<&str> {
        self.previous_image
            .as_ref()
            .map(|p| p.reference.as_str())
            .filter(|r| !r.is_empty())
    }
}

/// `command` is a string (old builders) or an array.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Command {
    One(String),
    Many(Vec<String>),
}

impl Command {
    pub fn entries(&self) -> Vec<String> {
        match self {
            Command::One(s) => vec![s.clone()],
            Command::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Process {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub command: Option<Command>,
    /// `None` when absent: Go serialises that nil slice as `null`.
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub direct: bool,
    #[serde(default)]
    pub default: bool,
    #[serde(rename = "buildpack-id", default)]
    pub buildpack_id: String,
    #[serde(rename = "working-dir", default)]
    pub working_dir: String,
    #[serde(rename = "exec-env", default)]
    pub exec_env: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Slice {
    #[serde(default)]
    pub paths: Vec<String>,
}

/// `<layers>/config/metadata.toml` as the builder wrote it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BuildFile {
    #[serde(default)]
    pub buildpacks: Vec<GroupEntry>,
    #[serde(default)]
    pub extensions: Vec<GroupEntry>,
    #[serde(default)]
    pub processes: Vec<Process>,
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(default)]
    pub slices: Vec<Slice>,
    #[serde(default)]
    pub bom: Vec<toml::Value>,
    #[serde(rename = "buildpack-default-process-type", default)]
    pub default_process_type: String,
}

impl BuildFile {
    pub fn read(path: &Path) -> Result<BuildFile, InputError> {
        Ok(read_toml(path, "build metadata file", false)?.unwrap_or_default())
    }
}

/// project-metadata.toml, kept as a TOML table; absent means `{}`.
pub fn read_project_metadata(path: &Path) -> Result<Option<toml::Table>, InputError> {
    read_toml(path, "project metadata file", true)
}

/// The run image to record (`runImage.image/mirrors`, `stack.runImage`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunImageForExport {
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub mirrors: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RunFile {
    #[serde(default)]
    images: Vec<RunImageForExport>,
}

#[derive(Debug, Default, Deserialize)]
struct StackFile {
    #[serde(default, rename = "run-image")]
    run_image: RunImageForExport,
}

/// run.toml (Platform >= 0.12): the entry naming analyzed.toml's run image (or one of its
/// mirrors), else the first; a missing file means none.
pub fn read_run_image_for_export(
    run_toml: &Path,
    analyzed: &Analyzed,
) -> Result<RunImageForExport, InputError> {
    let Some(run) = read_toml::<RunFile>(run_toml, "run metadata file", true)? else {
        tracing::info!(
            "No run metadata found at path {:?}",
            run_toml.display().to_string()
        );
        return Ok(RunImageForExport::default());
    };
    let wanted = analyzed
        .run_image
        .as_ref()
        .map(|r| r.image.as_str())
        .unwrap_or_default();
    Ok(run
        .images
        .iter()
        .find(|i| i.image == wanted || i.mirrors.iter().any(|m| m == wanted))
        .or(run.images.first())
        .cloned()
        .unwrap_or_default())
}

/// stack.toml (Platform < 0.12).
pub fn read_stack(stack_toml: &Path) -> Result<RunImageForExport, InputError> {
    Ok(
        read_toml::<StackFile>(stack_toml, "stack metadata file", true)?
            .unwrap_or_default()
            .run_image,
    )
}

/// `<layer>.toml`: which phases the layer is for, and its metadata.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LayerFile {
    #[serde(default)]
    pub types: LayerTypes,
    pub metadata: Option<toml::Table>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct LayerTypes {
    #[serde(default)]
    pub launch: bool,
    #[serde(default)]
    pub build: bool,
    #[serde(default)]
    pub cache: bool,
}

/// A buildpack's launch layers under `<layers>/<escaped id>`, in name order.
#[derive(Debug, Clone)]
pub struct LaunchLayer {
    pub name: String,
    /// The layer directory; `None` when only `<name>.toml` is left (restored metadata: the
    /// layer is reused from the previous image).
    pub dir: Option<PathBuf>,
    pub file: LayerFile,
}

/// `failed to parse metadata for layers '[<id>:<name> …]'` (reference wording).
#[derive(Debug, thiserror::Error)]
#[error("failed to parse metadata for layers '[{}]'", .0.join(" "))]
pub struct LayerMetadataError(pub Vec<String>);

/// Reads `<bp dir>/*.toml` (except launch/build/store.toml) and keeps the launch layers.
pub fn launch_layers(bp_dir: &Path, bp_id: &str) -> Result<Vec<LaunchLayer>, LayerMetadataError> {
    let Ok(read) = fs::read_dir(bp_dir) else {
        return Ok(Vec::new());
    };
    let mut names: Vec<String> = read
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".toml").map(String::from))
        .filter(|n| !matches!(n.as_str(), "launch" | "build" | "store"))
        .collect();
    names.sort();
    let mut layers = Vec::new();
    let mut bad = Vec::new();
    for name in names {
        let parsed = read_bounded(&bp_dir.join(format!("{name}.toml")))
            .ok()
            .and_then(|t| toml::from_str::<LayerFile>(&t).ok());
        let Some(file) = parsed else {
            bad.push(format!("{bp_id}:{name}"));
            continue;
        };
        if !file.types.launch {
            continue;
        }
        let dir = bp_dir.join(&name);
        layers.push(LaunchLayer {
            dir: dir.is_dir().then_some(dir),
            name,
            file,
        });
    }
    if bad.is_empty() {
        Ok(layers)
    } else {
        Err(LayerMetadataError(bad))
    }
}

/// `<bp dir>/store.toml` `[metadata]`, when present.
pub fn store(bp_dir: &Path) -> Option<toml::Table> {
    #[derive(Deserialize)]
    struct Store {
        metadata: Option<toml::Table>,
    }
    let text = read_bounded(&bp_dir.join("store.toml")).ok()?;
    Some(
        toml::from_str::<Store>(&text)
            .ok()?
            .metadata
            .unwrap_or_default(),
    )
}
