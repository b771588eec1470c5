//! The export phase (spec digest §2, reference behaviour §3): the app image on top of the
//! run image, layer by layer in the reference exporter's order, with its history, labels,
//! Env, WorkingDir and ENTRYPOINT. The launcher layer holds either a launcher binary (the
//! reference's output, byte for byte) or, in run-image mode, the symlink `decouple` writes.
//! Transports are the caller's business: this works on the image model and the local
//! layers and app directories.

mod cache;
pub mod inputs;
pub mod labels;
pub mod layers;
mod slices;
mod time;

use std::path::{Path, PathBuf};

use relaunch_oci::layer::{Entry, LayerBuilder, NORMALIZED_MTIME};
use relaunch_oci::{Digest, Image, Layer};
use serde_json::{Map, Value};
use tracing::{info, warn};

use self::cache::DiffIdCache;
use self::inputs::{launch_layers, store, Analyzed, BuildFile, Group, RunImageForExport};
use self::labels::{
    build_metadata, go_json, launcher_source, project_metadata, table_to_json, BuildpackRecord,
    LauncherSha, LayerRecord, LayersMetadata, RunImageRecord, Sha, Stack, StoreRecord,
};
use self::layers::{build_all, dir_layer, Done, Job, Source};
use crate::apis::Api;
use crate::app::{env, string_labels};
use crate::check::{check, AppApis};
use crate::contract::{validate_path, AdvertisedLauncher, APP_LAUNCHER_PATH};
use crate::decouple::symlink_layer;
use crate::descriptor::read_descriptor;
use crate::error::{Error, Result};
use crate::metadata::{
    BuildLauncher, BuildpackApi, LauncherMode, BUILD_METADATA_LABEL, LIFECYCLE_METADATA_LABEL,
};

pub const PROJECT_METADATA_LABEL: &str = "io.buildpacks.project.metadata";
pub const EXEC_ENV_LABEL: &str = "io.buildpacks.exec-env";
const LAUNCHER_ID: &str = "buildpacksio/lifecycle:launcher";
const CONFIG_ID: &str = "buildpacksio/lifecycle:config";
const PROCESS_TYPES_ID: &str = "buildpacksio/lifecycle:process-types";
const SBOM_ID: &str = "buildpacksio/lifecycle:launch.sbom";
const SBOM_EXTENSIONS: [&str; 3] = ["sbom.cdx.json", "sbom.spdx.json", "sbom.syft.json"];
/// Characters a process type may not contain (they would break `/cnb/process/<type>`).
const FORBIDDEN_IN_TYPE: &str = "/><:|&\\";

/// Platform APIs the exporter supports: the launcher's (it must run what it exports).
pub fn platform_api_supported(api: Api) -> bool {
    launcher::api::PLATFORM_APIS.contains(&api.to_string().as_str())
}

/// Buildpack APIs the exporter supports: the launcher's.
pub fn buildpack_api_supported(api: Api) -> bool {
    launcher::api::BUILDPACK_APIS.contains(&api.to_string().as_str())
}

/// Where the layers and app directories are, as paths inside the image. Files are read
/// from the same paths below `root` (`/` for a real export; fixtures stage elsewhere).
#[derive(Debug, Clone)]
pub struct Dirs {
    pub layers: PathBuf,
    pub app: PathBuf,
    pub root: PathBuf,
}

impl Dirs {
    /// Where an in-image path is read from.
    pub fn on_disk(&self, in_image: &Path) -> PathBuf {
        self.root
            .join(in_image.strip_prefix("/").unwrap_or(in_image))
    }
}

/// The exporting tool's identity, recorded as the launcher's source in binary mode.
#[derive(Debug, Clone)]
pub struct Tool {
    pub version: String,
    pub repository: String,
    pub commit: String,
}

/// Where the app's `/cnb/lifecycle/launcher` comes from.
#[derive(Debug, Clone)]
pub enum LauncherSource {
    /// A launcher file to package (`-launcher`, `--launcher-path`, `CNB_LAUNCHER_PATH`).
    Binary { path: PathBuf, tool: Tool },
    /// `--launcher-in-run-image`: a symlink to the launcher the run image advertises.
    RunImage,
}

/// Everything the export needs besides the images.
#[derive(Debug, Clone)]
pub struct Export<'a> {
    pub platform_api: Api,
    pub dirs: Dirs,
    pub uid: u64,
    pub gid: u64,
    pub group: &'a Group,
    pub analyzed: &'a Analyzed,
    pub build: &'a BuildFile,
    pub project_metadata: Option<&'a toml::Table>,
    pub run_for_export: &'a RunImageForExport,
    /// `-process-type` / `CNB_PROCESS_TYPE`.
    pub process_type: Option<&'a str>,
    /// `SOURCE_DATE_EPOCH` (seconds), honoured from Platform 0.9.
    pub source_date_epoch: Option<i64>,
    /// `CNB_EXEC_ENV`, labelled from Platform 0.15.
    pub exec_env: &'a str,
    pub launcher: &'a LauncherSource,
    /// Where to keep the stat-fingerprint → diffID cache that lets a re-export skip
    /// reading unchanged layers; `None` reads every layer.
    pub diff_id_cache: Option<PathBuf>,
    /// Directory holding the launcher's SBOMs (`-launcher-sbom`, Platform >= 0.11);
    /// `None` skips them.
    pub launcher_sbom: Option<&'a Path>,
}

/// The run image the app goes on.
#[derive(Debug, Clone, Copy)]
pub struct RunImage<'a> {
    pub image: &'a Image,
    /// `runImage.reference`: the run image's digest reference.
    pub reference: &'a str,
    /// For messages.
    pub name: &'a str,
}

/// The exported image and how each added layer came about.
#[derive(Debug, Clone)]
pub struct Exported {
    pub image: Image,
    pub layers: Vec<Done>,
}

impl Exported {
    pub fn reused(&self) -> usize {
        self.layers.iter().filter(|l| l.reused).count()
    }
}

/// Builds the app image. Fails before anything is built when the inputs are wrong (bad
/// process types, a missing launcher, a run image that cannot provide the launcher).
pub fn export(x: &Export<'_>, run: RunImage<'_>, previous: Option<&Image>) -> Result<Exported> {
    let (launcher_job, launcher_record, build_launcher) = launcher_layer(x, run)?;
    let process_types = process_types_layer_for(&x.build.processes)?;
    let entrypoint = entrypoint(x)?;
    let mut jobs = Vec::new();
    let mut buildpacks = Vec::new();
    for bp in &x.group.group {
        let (records, bp_jobs) = buildpack_layers(x, bp)?;
        jobs.extend(bp_jobs);
        buildpacks.push(records);
    }
    if x.platform_api >= Api::new(0, 11) {
        if let (Some(dir), LauncherSource::Binary { .. }) = (x.launcher_sbom, x.launcher) {
            copy_launcher_sboms(x, dir)?;
        }
    }
    let sbom_dir = x.dirs.layers.join("sbom/launch");
    let has_sbom = x.platform_api >= Api::new(0, 8) && x.dirs.on_disk(&sbom_dir).is_dir();
    if has_sbom {
        jobs.push(job(
            SBOM_ID,
            "Software Bill-of-Materials",
            dir_job(x, &sbom_dir)?,
        ));
    }
    let slice_paths: Vec<Vec<String>> = x.build.slices.iter().map(|s| s.paths.clone()).collect();
    let app_layers = slices::app_layers(&x.dirs, &x.dirs.app, &slice_paths, x.uid, x.gid)?;
    let app_ids: Vec<String> = app_layers.iter().map(|(id, _, _)| id.clone()).collect();
    for (id, created_by, layer) in app_layers {
        jobs.push(job(&id, &created_by, Source::Build(layer)));
    }
    jobs.push(launcher_job);
    let config_dir = x.dirs.layers.join("config");
    jobs.push(job(
        CONFIG_ID,
        "Buildpacks Launcher Config",
        dir_job(x, &config_dir)?,
    ));
    if let Some(pt) = process_types {
        jobs.push(job(
            PROCESS_TYPES_ID,
            "Buildpacks Process Types",
            Source::Build(pt),
        ));
    }

    let cache = x
        .diff_id_cache
        .clone()
        .map_or_else(DiffIdCache::none, DiffIdCache::open);
    let done = build_all(jobs, previous, &cache)?;
    cache.save();
    let sha = |id: &str| {
        done.iter()
            .find(|d| d.id == id)
            .map(|d| d.layer.diff_id.to_string())
            .unwrap_or_default()
    };
    for bp in &mut buildpacks {
        for (name, record) in &mut bp.layers {
            record.sha = sha(&format!("{}:{name}", bp.key));
        }
    }
    let top_layer = run
        .image
        .layers()
        .last()
        .map(|l| l.diff_id.to_string())
        .unwrap_or_default();
    let at_012 = x.platform_api >= Api::new(0, 12);
    let lifecycle_md = LayersMetadata {
        app: app_ids.iter().map(|id| Sha { sha: sha(id) }).collect(),
        sbom: has_sbom.then(|| Sha { sha: sha(SBOM_ID) }),
        buildpacks,
        config: Sha {
            sha: sha(CONFIG_ID),
        },
        launcher: LauncherSha {
            sha: sha(LAUNCHER_ID),
            ..launcher_record
        },
        process_types: Sha {
            sha: sha(PROCESS_TYPES_ID),
        },
        run_image: RunImageRecord {
            top_layer,
            reference: run.reference.to_string(),
            name: if at_012 {
                x.run_for_export.into()
            } else {
                Default::default()
            },
        },
        stack: Stack {
            run_image: x.run_for_export.into(),
        },
    };
    let build_md = build_metadata(x.platform_api, x.build, &build_launcher);

    let mut image = run.image.clone();
    assemble(&mut image, x, &done)?;
    let mut labels: Vec<(String, String)> = vec![
        (LIFECYCLE_METADATA_LABEL.into(), go_json(&lifecycle_md)),
        (BUILD_METADATA_LABEL.into(), build_md),
        (
            PROJECT_METADATA_LABEL.into(),
            project_metadata(x.project_metadata),
        ),
    ];
    labels.extend(
        x.build
            .labels
            .iter()
            .map(|l| (l.key.clone(), l.value.clone())),
    );
    if x.platform_api >= Api::new(0, 15) && !x.exec_env.is_empty() {
        labels.push((EXEC_ENV_LABEL.into(), x.exec_env.into()));
    }
    configure(&mut image, x, labels, entrypoint)?;
    Ok(Exported {
        image,
        layers: done,
    })
}

fn job(id: &str, created_by: &str, source: Source) -> Job {
    Job {
        id: id.into(),
        created_by: created_by.into(),
        source,
    }
}

fn dir_job(x: &Export<'_>, dir: &Path) -> Result<Source> {
    Ok(Source::Build(dir_layer(&x.dirs, dir, x.uid, x.gid)?))
}

/// A buildpack's launch layers (name order) and its `buildpacks[]` record (shas filled in
/// once the layers are built).
fn buildpack_layers(
    x: &Export<'_>,
    bp: &inputs::GroupEntry,
) -> Result<(BuildpackRecord, Vec<Job>)> {
    let bp_dir = x.dirs.layers.join(bp.id.replace('/', "_"));
    let on_disk = x.dirs.on_disk(&bp_dir);
    let previous = x
        .analyzed
        .metadata
        .buildpacks
        .iter()
        .find(|b| b.key == bp.id);
    let mut jobs = Vec::new();
    let mut records = std::collections::BTreeMap::new();
    for layer in launch_layers(&on_disk, &bp.id)? {
        let id = format!("{}:{}", bp.id, layer.name);
        let source = match &layer.dir {
            Some(_) => dir_job(x, &bp_dir.join(&layer.name))?,
            None => {
                let sha = previous
                    .and_then(|p| p.layers.get(&layer.name))
                    .map(|l| l.sha.as_str())
                    .unwrap_or_default();
                Source::Previous(Digest::parse(sha).map_err(|_| {
                    Error::Export(format!(
                        "layer '{id}' has metadata but no directory, and analyzed.toml has no previous digest for it"
                    ))
                })?)
            }
        };
        jobs.push(job(
            &id,
            &format!(
                "Layer: '{}', Created by buildpack: {}@{}",
                layer.name, bp.id, bp.version
            ),
            source,
        ));
        let t = layer.file.types;
        records.insert(
            layer.name.clone(),
            LayerRecord {
                sha: String::new(),
                data: layer
                    .file
                    .metadata
                    .as_ref()
                    .map_or(Value::Null, table_to_json),
                build: t.build,
                launch: t.launch,
                cache: t.cache,
            },
        );
    }
    let record = BuildpackRecord {
        key: bp.id.clone(),
        version: bp.version.clone(),
        layers: records,
        store: store(&on_disk).map(|m| StoreRecord {
            metadata: table_to_json(&m),
        }),
    };
    Ok((record, jobs))
}

/// The launcher layer job, the `launcher` record (without sha) and the build metadata's
/// `launcher` entry.
fn launcher_layer(x: &Export<'_>, run: RunImage<'_>) -> Result<(Job, LauncherSha, Value)> {
    let record = |mode, target| LauncherSha {
        sha: String::new(),
        mode,
        target,
    };
    match x.launcher {
        LauncherSource::Binary { path, tool } => {
            let bytes = read_launcher(path).map_err(|e| {
                Error::Export(format!(
                    "creating launcher layers: failed to stat launcher at path '{}': stat {}: {}",
                    path.display(),
                    path.display(),
                    inputs::go_io_error(&e)
                ))
            })?;
            // A launcher that describes itself (`.cnb_launcher`) names its own version.
            let version = read_descriptor(&bytes)
                .ok()
                .flatten()
                .map_or(tool.version.clone(), |d| d.version);
            let layer = LayerBuilder::new()
                .entry(Entry::dir("/cnb", 0o755))
                .entry(Entry::dir("/cnb/lifecycle", 0o755))
                .entry(Entry::file(APP_LAUNCHER_PATH, 0o755, bytes));
            Ok((
                job(
                    LAUNCHER_ID,
                    "Buildpacks Application Launcher",
                    Source::Build(layer),
                ),
                record(None, None),
                launcher_source(&version, &tool.repository, &tool.commit),
            ))
        }
        LauncherSource::RunImage => {
            let advertised = run_image_launcher(x, run)?;
            let layer = symlink_layer(&advertised.path)?;
            Ok((
                job(
                    LAUNCHER_ID,
                    "Buildpacks Application Launcher",
                    Source::Ready(Box::new(layer)),
                ),
                record(Some(LauncherMode::Symlink), Some(advertised.path.clone())),
                BuildLauncher::Symlink {
                    target: &advertised.path,
                }
                .to_value(),
            ))
        }
    }
}

/// Largest launcher file packaged (the reference Go launcher is under 4 MiB).
const LAUNCHER_LIMIT: u64 = 64 << 20;

fn read_launcher(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(LAUNCHER_LIMIT + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > LAUNCHER_LIMIT {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            LAUNCHER_LIMIT >> 20
        )));
    }
    Ok(bytes)
}

/// The run image's advertised launcher, checked against the export's Platform API and
/// every buildpack API in the group.
fn run_image_launcher(x: &Export<'_>, run: RunImage<'_>) -> Result<AdvertisedLauncher> {
    let advertised = AdvertisedLauncher::from_labels(&string_labels(run.image))?
        .ok_or_else(|| Error::NoAdvertisedLauncher(run.name.to_string()))?;
    validate_path(&advertised.path)?;
    let buildpacks = x
        .group
        .group
        .iter()
        .map(|bp| {
            bp.api
                .parse()
                .map(|api| BuildpackApi {
                    id: bp.id.clone(),
                    api,
                })
                .map_err(|e| Error::Export(format!("buildpack '{}': {e}", bp.id)))
        })
        .collect::<Result<Vec<_>>>()?;
    let report = check(
        &AppApis {
            platform: x.platform_api,
            buildpacks,
            launcher_target: None,
        },
        &advertised,
    );
    match report.problem() {
        Some(problem) => Err(Error::Export(format!(
            "--launcher-in-run-image: run image {}: {problem}",
            run.name
        ))),
        None => Ok(advertised),
    }
}

/// The process-types layer, `None` without processes (reference §3.4 item 8).
fn process_types_layer_for(processes: &[inputs::Process]) -> Result<Option<LayerBuilder>> {
    if processes.is_empty() {
        return Ok(None);
    }
    for p in processes {
        if p.kind.is_empty() {
            return Err(Error::Export(
                "creating layer '': type is required for all processes".into(),
            ));
        }
        if p.kind.contains(|c| FORBIDDEN_IN_TYPE.contains(c)) {
            return Err(Error::Export(format!(
                "creating layer '': invalid process type '{}': type may not contain characters '{FORBIDDEN_IN_TYPE}'",
                p.kind
            )));
        }
    }
    Ok(Some(process_types_builder(
        processes.iter().map(|p| p.kind.as_str()),
    )))
}

/// `/cnb`, `/cnb/process` and one symlink `/cnb/process/<type>` → `/cnb/lifecycle/launcher`
/// per process, in metadata order.
pub fn process_types_builder<'a>(types: impl IntoIterator<Item = &'a str>) -> LayerBuilder {
    let builder = LayerBuilder::new()
        .entry(Entry::dir("/cnb", 0o755))
        .entry(Entry::dir("/cnb/process", 0o755));
    types.into_iter().fold(builder, |b, t| {
        b.entry(Entry::symlink(
            format!("/cnb/process/{t}"),
            APP_LAUNCHER_PATH,
        ))
    })
}

/// ENTRYPOINT (E-6): `-process-type` if it exists, else the buildpack default, else the
/// launcher itself.
fn entrypoint(x: &Export<'_>) -> Result<String> {
    let exists = |t: &str| x.build.processes.iter().any(|p| p.kind == t);
    if let Some(t) = x.process_type.filter(|t| !t.is_empty()) {
        if !exists(t) {
            return Err(Error::Export(format!(
                "determining entrypoint: tried to set {t} to default but it doesn't exist"
            )));
        }
        info!("Setting default process type '{t}'");
        return Ok(format!("/cnb/process/{t}"));
    }
    let default = &x.build.default_process_type;
    if !default.is_empty() {
        if !exists(default) {
            warn!("default process type '{default}' not present in list of process types");
        } else {
            info!("Setting default process type '{default}'");
            return Ok(format!("/cnb/process/{default}"));
        }
    }
    info!("no default process type");
    Ok(APP_LAUNCHER_PATH.into())
}

/// Copies the launcher's SBOMs into `<layers>/sbom/launch/buildpacksio_lifecycle/launcher`
/// (reference §3.7): from the default directory `launcher.<ext>` as `<ext>`, from any other
/// every file ending in an SBOM extension under its own name.
fn copy_launcher_sboms(x: &Export<'_>, dir: &Path) -> Result<()> {
    let dest = x.dirs.on_disk(
        &x.dirs
            .layers
            .join("sbom/launch/buildpacksio_lifecycle/launcher"),
    );
    let copy = |from: &Path, name: &str| -> Result<()> {
        std::fs::create_dir_all(&dest)
            .and_then(|_| std::fs::copy(from, dest.join(name)).map(|_| ()))
            .map_err(|e| Error::Export(format!("copying SBOM {}: {e}", from.display())))?;
        tracing::debug!(
            "Copying SBOM {} to {}",
            from.display(),
            dest.join(name).display()
        );
        Ok(())
    };
    if dir == Path::new("/cnb/lifecycle") {
        for ext in SBOM_EXTENSIONS {
            let from = dir.join(format!("launcher.{ext}"));
            if from.is_file() {
                copy(&from, ext)?;
            } else {
                warn!("Did not find SBOM launcher.{ext} in {}", dir.display());
            }
        }
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|_| {
        warn!("Failed to list contents of directory {}", dir.display());
        Error::Export(format!(
            "failed to list contents of directory {}",
            dir.display()
        ))
    })?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| SBOM_EXTENSIONS.iter().any(|ext| n.ends_with(ext)))
        .collect();
    names.sort();
    for n in names {
        copy(&dir.join(&n), &n)?;
    }
    Ok(())
}

/// Appends the layers with their history: every entry's `created` is the export time;
/// below Platform 0.12 history carries nothing else (imgutil without `WithHistory`).
fn assemble(image: &mut Image, x: &Export<'_>, done: &[Done]) -> Result<()> {
    let created = created_at(x);
    let keep = x.platform_api >= Api::new(0, 12);
    let entry = |created_by: Option<&str>| -> Value {
        let mut h = Map::new();
        h.insert("created".into(), Value::String(created.clone()));
        if let Some(by) = created_by.filter(|_| keep) {
            h.insert("created_by".into(), Value::String(by.into()));
        }
        Value::Object(h)
    };
    // imgutil's normalisation: one entry per layer (empty-layer entries dropped, missing
    // ones added at the bottom), each stamped with the export time.
    let n_base = image.layers().len();
    let mut history: Vec<Value> = image
        .history()
        .into_iter()
        .filter(|h| {
            !h.get("empty_layer")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        })
        .map(|h| {
            if !keep {
                return entry(None);
            }
            let mut h = h.as_object().cloned().unwrap_or_default();
            h.insert("created".into(), Value::String(created.clone()));
            Value::Object(h)
        })
        .collect();
    while history.len() < n_base {
        history.insert(0, entry(None));
    }
    history.truncate(n_base);
    // Layer media types follow the manifest's flavour when it is written (the engine maps
    // them), unlike the reference's Docker types under an OCI manifest.
    let mut all: Vec<Layer> = image.layers().to_vec();
    for d in done {
        all.push(d.layer.clone());
        history.push(entry(Some(&d.created_by)));
    }
    image.set_layers(all)?;
    image.edit_config(|c| {
        c.insert("history".into(), Value::Array(history));
        c.insert("created".into(), Value::String(created.clone()));
        c.shift_remove("container");
        Ok(())
    })?;
    Ok(())
}

/// `SOURCE_DATE_EPOCH` (Platform >= 0.9) or 1980-01-01T00:00:01Z.
fn created_at(x: &Export<'_>) -> String {
    let epoch = x
        .source_date_epoch
        .filter(|_| x.platform_api >= Api::new(0, 9))
        .unwrap_or(NORMALIZED_MTIME as i64);
    time::rfc3339(epoch)
}

/// Labels (sorted, as Go writes the map), Env, WorkingDir, ENTRYPOINT, no CMD.
fn configure(
    image: &mut Image,
    x: &Export<'_>,
    labels: Vec<(String, String)>,
    entrypoint: String,
) -> Result<()> {
    let run_path = env(image, "PATH").unwrap_or_default();
    let layers = x.dirs.layers.display().to_string();
    let app = x.dirs.app.display().to_string();
    let platform = x.platform_api.to_string();
    let path = format!("/cnb/process:/cnb/lifecycle:{run_path}");
    let env_vars = [
        ("CNB_LAYERS_DIR", layers.as_str()),
        ("CNB_APP_DIR", app.as_str()),
        ("CNB_PLATFORM_API", platform.as_str()),
        ("CNB_DEPRECATION_MODE", "quiet"),
        ("PATH", path.as_str()),
    ];
    image.edit_config(|c| {
        let cfg = c
            .entry("config")
            .or_insert_with(|| Value::Object(Map::new()));
        if !cfg.is_object() {
            *cfg = Value::Object(Map::new());
        }
        let cfg = cfg.as_object_mut().expect("just made an object");
        let mut all: std::collections::BTreeMap<String, Value> = cfg
            .get("Labels")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        for (k, v) in labels {
            all.insert(k, Value::String(v));
        }
        cfg.insert("Labels".into(), Value::Object(all.into_iter().collect()));
        let mut envs: Vec<Value> = cfg
            .get("Env")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (name, value) in env_vars {
            let entry = Value::String(format!("{name}={value}"));
            let prefix = format!("{name}=");
            match envs
                .iter()
                .position(|e| e.as_str().is_some_and(|s| s.starts_with(&prefix)))
            {
                Some(i) => envs[i] = entry,
                None => envs.push(entry),
            }
        }
        cfg.insert("Env".into(), Value::Array(envs));
        cfg.insert("WorkingDir".into(), Value::String(app.clone()));
        cfg.insert(
            "Entrypoint".into(),
            Value::Array(vec![Value::String(entrypoint)]),
        );
        cfg.shift_remove("Cmd");
        Ok(())
    })?;
    Ok(())
}
