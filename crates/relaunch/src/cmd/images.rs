//! Image access shared by the launcher subcommands: loading (including the digest
//! references `runImage.reference` holds), writing, resolving `--launcher`, and finding the
//! run image an app is based on (policy: `relaunch_lifecycle::run_image`).

use std::path::Path;

use anyhow::{bail, Context};
use relaunch_lifecycle::apis::ApiList;
use relaunch_lifecycle::app::string_labels;
use relaunch_lifecycle::contract::APP_LAUNCHER_PATH;
use relaunch_lifecycle::descriptor::{LauncherBinary, LAUNCHER_SIZE_LIMIT};
use relaunch_lifecycle::launcher::{resolve, Overrides, ResolvedLauncher};
use relaunch_lifecycle::metadata::{LauncherMode, LifecycleMetadata};
use relaunch_lifecycle::run_image::{current_run_image, RunImage};
use relaunch_oci::layer::read::read_file;
use relaunch_oci::{Digest, Image, ImageRef, ManifestRef, Repo};

use super::{BarProgress, Global};

/// Loads an image from `oci:<dir>[:<tag>]`, `oci:<dir>@<digest>` or a registry reference.
pub fn load(global: &Global, reference: &str) -> anyhow::Result<Image> {
    let opened = || -> anyhow::Result<Image> {
        let r = ImageRef::parse(reference)?;
        Ok(Repo::open(&r, &global.transport_options())?.load_image(None)?)
    };
    opened().with_context(|| format!("reading image {reference}"))
}

/// `oci:<dir>@<digest>`: how a layout image is named in `runImage.reference`.
pub fn layout_digest_ref(dir: &Path, digest: &Digest) -> String {
    format!("oci:{}@{digest}", dir.display())
}

/// Writes `image` to `out` (blobs first, the tag last) and returns the manifest digest.
pub fn write(global: &Global, image: &Image, out: &ImageRef) -> anyhow::Result<Digest> {
    let repo =
        Repo::create(out, &global.transport_options()).with_context(|| format!("opening {out}"))?;
    let tags: Vec<String> = match &repo.reference {
        ManifestRef::Tag(t) => vec![t.clone()],
        ManifestRef::Digest(_) => bail!("--tag {out} names a digest; give a tag"),
    };
    let progress = BarProgress::for_stderr();
    let report = relaunch_oci::write_image(image, repo.transport.as_ref(), &tags, &progress)
        .with_context(|| format!("writing {out}"))?;
    progress.finish();
    report.digest.context("nothing was written")
}

/// `--launcher` and what to advertise about it.
#[derive(clap::Args, Debug)]
pub struct LauncherArgs {
    /// Launcher executable: a file, or an image holding /cnb/lifecycle/launcher (e.g. a
    /// lifecycle image, whose io.buildpacks.lifecycle.apis label lists its APIs).
    #[arg(long, value_name = "FILE|IMAGE")]
    pub launcher: String,
    /// Platform APIs to advertise (comma-separated); required for a launcher without a
    /// self-description or lifecycle label, else may only narrow what it declares.
    #[arg(long, value_name = "LIST")]
    pub platform_apis: Option<ApiList>,
    /// Buildpack APIs to advertise (comma-separated); as --platform-apis.
    #[arg(long, value_name = "LIST")]
    pub buildpack_apis: Option<ApiList>,
    /// Version to advertise for a launcher that does not declare one.
    #[arg(long, value_name = "VERSION")]
    pub launcher_version: Option<String>,
}

impl LauncherArgs {
    pub fn resolve(&self, global: &Global) -> anyhow::Result<ResolvedLauncher> {
        let overrides = Overrides {
            platform_apis: self.platform_apis.clone(),
            buildpack_apis: self.buildpack_apis.clone(),
            version: self.launcher_version.clone(),
        };
        resolve_launcher(global, &self.launcher, &overrides)
    }
}

/// A launcher file, or the /cnb/lifecycle/launcher of an image (e.g. a lifecycle image,
/// whose labels may say which APIs it supports), with what to advertise about it.
pub fn resolve_launcher(
    global: &Global,
    spec: &str,
    overrides: &Overrides,
) -> anyhow::Result<ResolvedLauncher> {
    if is_file_argument(spec) {
        return Ok(resolve(
            LauncherBinary::from_file(Path::new(spec))?,
            None,
            overrides,
        )?);
    }
    let image = load(global, spec)?;
    let (entry, bytes) = read_file(&image, APP_LAUNCHER_PATH, LAUNCHER_SIZE_LIMIT)
        .with_context(|| format!("image {spec} has no usable {APP_LAUNCHER_PATH}"))?;
    let origin = format!("{spec}:{APP_LAUNCHER_PATH}");
    let binary = LauncherBinary::from_bytes(origin, bytes, entry.mode)?;
    Ok(resolve(binary, Some(&string_labels(&image)), overrides)?)
}

/// `--launcher FILE|IMAGE`: an existing file, or anything spelled like a path, is a file;
/// the rest names an image.
pub fn is_file_argument(given: &str) -> bool {
    Path::new(given).exists() || given.starts_with('/') || given.starts_with('.')
}

/// `explicit` (--run-image) if given, else the run image the app is based on now, with the
/// inherited-label fallback policy of [`current_run_image`].
pub fn run_image_for(
    global: &Global,
    app: &Image,
    md: &LifecycleMetadata,
    explicit: Option<&str>,
) -> anyhow::Result<RunImage> {
    match explicit {
        Some(name) => Ok(RunImage::from_image(name, &load(global, name)?)?),
        None => Ok(current_run_image(app, md, &global.transport_options())?),
    }
}

/// For `relaunch inspect`: the launcher that will actually run `app` (JSON), `null` for
/// images without lifecycle metadata.
pub fn launcher_that_runs(global: &Global, app: &Image) -> serde_json::Value {
    use relaunch_lifecycle::effective::{effective_launcher, RunImageFacts};
    let Ok((md, _)) = relaunch_lifecycle::app::lifecycle_metadata(app) else {
        return serde_json::Value::Null;
    };
    // Only a symlink-mode app depends on its run image's launcher.
    let run = match md.launcher.mode() {
        LauncherMode::Binary => Ok(None),
        LauncherMode::Symlink => run_image_for(global, app, &md, None).map(Some),
    };
    let why;
    let facts = match &run {
        Ok(Some(r)) if !r.is_inherited() => RunImageFacts::Read {
            name: &r.name,
            advertised: r.advertised.as_ref(),
        },
        Ok(r) => RunImageFacts::Inherited {
            advertised: r.as_ref().and_then(|r| r.advertised.as_ref()),
        },
        Err(e) => {
            why = format!("{e:#}");
            RunImageFacts::Unknown(&why)
        }
    };
    match effective_launcher(app, facts) {
        Ok(f) => serde_json::to_value(f).unwrap_or_default(),
        Err(e) => serde_json::json!({"error": e.to_string()}),
    }
}
