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
use relaunch_oci::{Digest, Image, ImageOrIndex, ImageRef, ManifestRef, Platform, Progress};

use super::{BarProgress, Global};

/// Loads the image `reference` (`oci:<dir>[:<tag>]`, `oci:<dir>@<digest>` or a registry
/// reference) names for `platform` (default: linux/amd64 from an index); a single image
/// must be of that platform (an image that names no architecture passes).
pub fn load_for(
    global: &Global,
    reference: &str,
    platform: Option<&Platform>,
) -> anyhow::Result<Image> {
    let opened = || -> anyhow::Result<Image> {
        let repo = global.session().open(&ImageRef::parse(reference)?)?;
        let image = repo.load_image(platform)?;
        if let Some(want) = platform {
            let have = image.platform();
            if !have.architecture.is_empty() && !want.matches(&have) {
                bail!("it is a single {have} image, not an index with {want}");
            }
        }
        Ok(image)
    };
    opened().with_context(|| match platform {
        Some(p) => format!("reading image {reference} for {p}"),
        None => format!("reading image {reference}"),
    })
}

/// Loads the image or index `reference` names, every platform of an index.
pub fn load_all(global: &Global, reference: &str) -> anyhow::Result<ImageOrIndex> {
    let opened = || -> anyhow::Result<ImageOrIndex> {
        let repo = global.session().open(&ImageRef::parse(reference)?)?;
        Ok(ImageOrIndex::load(&repo)?)
    };
    opened().with_context(|| format!("reading {reference}"))
}

/// `oci:<dir>@<digest>`: how a layout image is named in `runImage.reference`.
pub fn layout_digest_ref(dir: &Path, digest: &Digest) -> String {
    format!("oci:{}@{digest}", dir.display())
}

/// Writes `image` to `out` (blobs first, the tag last) and returns the manifest digest.
pub fn write(global: &Global, image: &Image, out: &ImageRef) -> anyhow::Result<Digest> {
    write_all(global, &ImageOrIndex::Image(image.clone()), out)
}

/// Writes an image or an index (blobs, platform manifests, the index, the tag last) with a
/// progress bar on a terminal, and returns the digest the tag points at.
pub fn write_all(global: &Global, what: &ImageOrIndex, out: &ImageRef) -> anyhow::Result<Digest> {
    let progress = BarProgress::for_stderr();
    let digest = publish(global, what, out, &progress)?;
    progress.finish();
    Ok(digest)
}

/// As [`write_all`], reporting to `progress`.
pub fn publish(
    global: &Global,
    what: &ImageOrIndex,
    out: &ImageRef,
    progress: &dyn Progress,
) -> anyhow::Result<Digest> {
    let repo = global
        .session()
        .create(out)
        .with_context(|| format!("opening {out}"))?;
    let tags: Vec<String> = match &repo.reference {
        ManifestRef::Tag(t) => vec![t.clone()],
        ManifestRef::Digest(_) => bail!("--tag {out} names a digest; give a tag"),
    };
    let report = what
        .write(repo.transport.as_ref(), &tags, progress)
        .with_context(|| format!("writing {out}"))?;
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
    /// The launcher for an image of `platform`: a file is taken as is (stamping and
    /// recoupling refuse it if its ELF machine does not match); an image is read for
    /// that platform.
    pub fn resolve(
        &self,
        global: &Global,
        platform: Option<&Platform>,
    ) -> anyhow::Result<ResolvedLauncher> {
        let overrides = Overrides {
            platform_apis: self.platform_apis.clone(),
            buildpack_apis: self.buildpack_apis.clone(),
            version: self.launcher_version.clone(),
        };
        resolve_launcher(global, &self.launcher, &overrides, platform)
    }
}

/// A launcher file, or the /cnb/lifecycle/launcher of an image (e.g. a lifecycle image,
/// whose labels may say which APIs it supports), with what to advertise about it.
/// An image is read for `platform` (see [`load_for`]).
pub fn resolve_launcher(
    global: &Global,
    spec: &str,
    overrides: &Overrides,
    platform: Option<&Platform>,
) -> anyhow::Result<ResolvedLauncher> {
    if is_file_argument(spec) {
        return Ok(resolve(
            LauncherBinary::from_file(Path::new(spec))?,
            None,
            overrides,
        )?);
    }
    let image = load_for(global, spec, platform)?;
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
/// inherited-label fallback policy of [`current_run_image`]; either is read for `platform`
/// (the app image's).
pub fn run_image_for(
    global: &Global,
    app: &Image,
    md: &LifecycleMetadata,
    explicit: Option<&str>,
    platform: &Platform,
) -> anyhow::Result<RunImage> {
    match explicit {
        Some(name) => Ok(RunImage::from_image(
            name,
            &load_for(global, name, Some(platform))?,
        )?),
        None => Ok(current_run_image(app, md, global.session())?),
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
        LauncherMode::Symlink => run_image_for(global, app, &md, None, &app.platform()).map(Some),
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
