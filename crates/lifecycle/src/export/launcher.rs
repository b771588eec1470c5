//! The launcher layer in both modes and the launcher's SBOMs: the packaged binary (the
//! reference's layer byte for byte) or the symlink to the launcher the run image advertises,
//! after checking that it covers the export's APIs.

use std::path::Path;

use relaunch_oci::layer::{Entry, LayerBuilder};
use serde_json::Value;
use tracing::warn;

use super::inputs;
use super::labels::{launcher_source, LauncherSha};
use super::layers::{Job, Source};
use super::{job, Export, LauncherSource, RunImage};
use crate::app::string_labels;
use crate::check::{check, AppApis};
use crate::contract::{validate_path, AdvertisedLauncher, APP_LAUNCHER_PATH};
use crate::decouple::symlink_layer;
use crate::descriptor::read_descriptor;
use crate::error::{Error, Result};
use crate::metadata::{BuildLauncher, BuildpackApi, LauncherMode};

pub const LAUNCHER_ID: &str = "buildpacksio/lifecycle:launcher";
const SBOM_EXTENSIONS: [&str; 3] = ["sbom.cdx.json", "sbom.spdx.json", "sbom.syft.json"];

/// The launcher layer job, the `launcher` record (without sha) and the build metadata's
/// `launcher` entry.
pub(super) fn launcher_layer(
    x: &Export<'_>,
    run: RunImage<'_>,
) -> Result<(Job, LauncherSha, Value)> {
    let record = |mode, target| LauncherSha {
        sha: String::new(),
        mode,
        target,
    };
    match x.launcher {
        LauncherSource::Binary { path, tool } => {
            let bytes = inputs::read_local(path, LAUNCHER_LIMIT).map_err(|e| {
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
            let (advertised, apis) = run_image_launcher(x, run)?;
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
                    apis: &apis,
                }
                .to_value(),
            ))
        }
    }
}

/// Largest launcher file packaged (the reference Go launcher is under 4 MiB).
const LAUNCHER_LIMIT: u64 = 64 << 20;

/// The run image's advertised launcher, checked against the export's Platform API and
/// every buildpack API in the group (returned for the build metadata to record).
fn run_image_launcher(x: &Export<'_>, run: RunImage<'_>) -> Result<(AdvertisedLauncher, AppApis)> {
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
    let apis = AppApis {
        platform: x.platform_api,
        buildpacks,
        launcher_target: None,
    };
    match check(&apis, &advertised).problem() {
        Some(problem) => Err(Error::Export(format!(
            "--launcher-in-run-image: run image {}: {problem}",
            run.name
        ))),
        None => Ok((advertised, apis)),
    }
}

/// Copies the launcher's SBOMs into `<layers>/sbom/launch/buildpacksio_lifecycle/launcher`
/// (reference §3.7): from the default directory `launcher.<ext>` as `<ext>`, from any other
/// every file ending in an SBOM extension under its own name.
pub(super) fn copy_launcher_sboms(x: &Export<'_>, dir: &Path) -> Result<()> {
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
