//! The export phase (spec digest §2, reference behaviour §3): the app image on top of the
//! run image, layer by layer in the reference exporter's order, with its history, labels,
//! Env, WorkingDir and ENTRYPOINT. The launcher layer holds either a launcher binary (the
//! reference's output, byte for byte) or, in run-image mode, the symlink `decouple` writes.
//! Transports are the caller's business: this works on the image model and the local
//! layers and app directories.

mod cache;
mod config;
pub mod inputs;
pub mod labels;
mod launcher;
pub mod layers;
mod slices;
mod time;

use std::path::{Path, PathBuf};

use relaunch_oci::{Digest, Image};
use serde_json::Value;

use self::cache::DiffIdCache;
pub use self::config::process_types_builder;
use self::config::{assemble, configure, entrypoint, process_types_layer_for};
use self::inputs::{launch_layers, store, Analyzed, BuildFile, Group, RunImageForExport};
use self::labels::{
    build_metadata, go_json, project_metadata, table_to_json, BuildpackRecord, LauncherSha,
    LayerRecord, LayersMetadata, RunImageRecord, Sha, Stack, StoreRecord,
};
use self::launcher::{copy_launcher_sboms, launcher_layer, LAUNCHER_ID};
use self::layers::{build_all, dir_layer, Done, Job, Source};
use crate::apis::Api;
use crate::error::{Error, Result};
use crate::metadata::{BUILD_METADATA_LABEL, LIFECYCLE_METADATA_LABEL};

pub const PROJECT_METADATA_LABEL: &str = "io.buildpacks.project.metadata";
pub const EXEC_ENV_LABEL: &str = "io.buildpacks.exec-env";
const CONFIG_ID: &str = "buildpacksio/lifecycle:config";
const PROCESS_TYPES_ID: &str = "buildpacksio/lifecycle:process-types";
const SBOM_ID: &str = "buildpacksio/lifecycle:launch.sbom";

/// Platform APIs the exporter supports: the launcher's (it must run what it exports).
pub fn platform_api_supported(api: Api) -> bool {
    ::launcher::api::PLATFORM_APIS.contains(&api.to_string().as_str())
}

/// Buildpack APIs the exporter supports: the launcher's.
pub fn buildpack_api_supported(api: Api) -> bool {
    ::launcher::api::BUILDPACK_APIS.contains(&api.to_string().as_str())
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

pub(super) fn job(id: &str, created_by: &str, source: Source) -> Job {
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
