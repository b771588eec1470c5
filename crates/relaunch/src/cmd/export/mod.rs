//! `relaunch export` and the multicall `exporter`: the reference exporter's flags (single
//! or double dash), `CNB_*` variables, messages on stdout and exit codes, plus the
//! decoupling proposal's `--launcher-path` / `CNB_LAUNCHER_PATH` and
//! `--launcher-in-run-image` / `CNB_LAUNCHER_IN_RUN_IMAGE`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use relaunch_lifecycle::apis::Api;
use relaunch_lifecycle::export::inputs::{
    read_project_metadata, read_run_image_for_export, read_stack, Analyzed, BuildFile, Group,
};
use relaunch_lifecycle::export::{
    buildpack_api_supported, export, platform_api_supported, Dirs, Export, LauncherSource,
    RunImage, Tool,
};
use relaunch_oci::{Image, ImageRef, ManifestRef, Repo, TransportOptions};
use tracing::{info, warn};

mod args;
mod log;
mod refs;

use self::args::go_flags;
pub use self::args::Args;
use self::refs::{ggcr_registry, layout_ref};

const DEFAULT_LAUNCHER: &str = "/cnb/lifecycle/launcher";
/// Inside the layers directory but in no exported layer (those hold `<layers>/<buildpack>`,
/// `<layers>/config` and `<layers>/sbom/launch`), so it never changes an image.
const DIFF_ID_CACHE: &str = ".relaunch/diffid-cache.json";
/// The reference's exit codes (`cmd/exit.go`, platform exit map).
pub(super) const EXIT_FAILED: u8 = 1;
pub(super) const EXIT_INVALID_ARGS: u8 = 3;
const EXIT_PLATFORM_API: u8 = 11;
const EXIT_BUILDPACK_API: u8 = 12;
const EXIT_EXPORT: u8 = 62;

/// A failure with the reference's exit code; printed as `ERROR: <message>` on stdout.
pub(super) struct Fail(u8, String);

pub(super) fn fail(code: u8, msg: impl std::fmt::Display) -> Fail {
    Fail(code, msg.to_string())
}

/// `exporter <args>` (argv[0] basename `exporter`).
pub fn multicall(argv: Vec<String>) -> ExitCode {
    let args = match Args::try_parse_from(go_flags(argv)) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    run(args)
}

/// Runs the export; its own logging on stdout, as the reference's.
pub fn run(args: Args) -> ExitCode {
    log::init(&args.log_level);
    match export_cmd(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(code, msg)) => {
            println!("ERROR: {msg}");
            ExitCode::from(code)
        }
    }
}

fn platform_api() -> Result<Api, Fail> {
    let value = std::env::var("CNB_PLATFORM_API").unwrap_or_default();
    if value.is_empty() {
        return Err(fail(EXIT_PLATFORM_API, "failed to get platform API version; please set 'CNB_PLATFORM_API' to specify the desired platform API version"));
    }
    let incompatible = || {
        fail(
            EXIT_PLATFORM_API,
            format!("failed to set platform API: platform API version '{value}' is incompatible with the lifecycle"),
        )
    };
    let api: Api = value.parse().map_err(|_| incompatible())?;
    if !platform_api_supported(api) {
        return Err(incompatible());
    }
    Ok(api)
}

fn check_buildpack_apis(group: &Group) -> Result<(), Fail> {
    for bp in &group.group {
        let ok = bp.api.parse::<Api>().is_ok_and(buildpack_api_supported);
        if !ok {
            return Err(fail(
                EXIT_BUILDPACK_API,
                format!(
                    "failed to set API for Buildpack '{}@{}': buildpack API version '{}' is incompatible with the lifecycle",
                    bp.id, bp.version, bp.api
                ),
            ));
        }
    }
    Ok(())
}

fn refuse_unsupported(args: &Args) -> Result<(), Fail> {
    let refused = [
        ("-daemon", args.daemon == Some(true), "there is no Docker daemon support; export to a registry or, with -layout, to OCI layouts"),
        ("-cache-image", args.cache_image.as_deref().is_some_and(|c| !c.is_empty()), "relaunch's exporter writes no build cache"),
        ("-cache-dir", args.cache_dir.is_some(), "relaunch's exporter writes no build cache"),
        ("-launch-cache", args.launch_cache.is_some(), "the launch cache is for daemon exports, which relaunch does not do"),
        ("-extended", args.extended.is_some(), "run-image extensions are not supported"),
    ];
    match refused.iter().find(|(_, given, _)| *given) {
        Some((flag, _, why)) => Err(fail(
            EXIT_INVALID_ARGS,
            format!("{flag} is not supported by relaunch's exporter: {why}"),
        )),
        None => Ok(()),
    }
}

/// `SOURCE_DATE_EPOCH`, or `None` with the reference's warning when it is not an integer.
fn source_date_epoch() -> Option<i64> {
    let value = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .filter(|v| !v.is_empty())?;
    match value.parse() {
        Ok(v) => Some(v),
        Err(_) => {
            warn!("Ignoring invalid SOURCE_DATE_EPOCH");
            None
        }
    }
}

struct Ctx<'a> {
    args: &'a Args,
    opts: TransportOptions,
    layout_dir: Option<PathBuf>,
}

impl Ctx<'_> {
    /// The reference for `name`: as given, or mapped into -layout-dir.
    fn image_ref(&self, name: &str) -> Result<ImageRef, Fail> {
        match &self.layout_dir {
            Some(dir) if !name.starts_with("oci:") => {
                // A digest reference may name its layout by path already (`/dir@sha256:…`).
                if name.starts_with('/') {
                    return ImageRef::parse(&format!("oci:{name}"))
                        .map_err(|e| fail(EXIT_INVALID_ARGS, e));
                }
                layout_ref(dir, name)
            }
            _ => ImageRef::parse(name).map_err(|e| fail(EXIT_INVALID_ARGS, e)),
        }
    }

    fn load(&self, name: &str) -> anyhow::Result<Image> {
        let r = self
            .image_ref(name)
            .map_err(|Fail(_, m)| anyhow::anyhow!(m))?;
        Ok(Repo::open(&r, &self.opts)?.load_image(None)?)
    }
}

fn export_cmd(args: &Args) -> Result<(), Fail> {
    let platform = platform_api()?;
    refuse_unsupported(args)?;
    if args.tags.is_empty() {
        return Err(fail(
            EXIT_INVALID_ARGS,
            "failed to parse arguments: at least one image argument is required",
        ));
    }
    let layout = args.layout == Some(true);
    if layout && platform < Api::new(0, 12) {
        // The reference defines -layout only from Platform 0.12.
        return Err(fail(
            EXIT_INVALID_ARGS,
            format!("failed to parse arguments: -layout requires Platform API 0.12 or newer (CNB_PLATFORM_API={platform})"),
        ));
    }
    let layout_dir = match (layout, &args.layout_dir) {
        (false, _) => None,
        (true, Some(d)) => Some(d.clone()),
        (true, None) => {
            return Err(fail(
                EXIT_INVALID_ARGS,
                "failed to parse arguments: defining a layout directory is required when OCI Layout feature is enabled. Use -layout-dir flag or CNB_LAYOUT_DIR environment variable",
            ))
        }
    };
    let ctx = Ctx {
        args,
        opts: args.global.transport_options(),
        layout_dir,
    };
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let layers = abs(&args.layers);
    let app = abs(&args.app);
    let in_layers =
        |p: &Option<PathBuf>, name: &str| p.clone().unwrap_or_else(|| layers.join(name));

    let group =
        Group::read(&in_layers(&args.group, "group.toml")).map_err(|e| fail(EXIT_FAILED, e))?;
    check_buildpack_apis(&group)?;
    let analyzed = Analyzed::read(&in_layers(&args.analyzed, "analyzed.toml"))
        .map_err(|e| fail(EXIT_INVALID_ARGS, format!("failed to resolve inputs: {e}")))?;
    let project =
        read_project_metadata(&in_layers(&args.project_metadata, "project-metadata.toml"))
            .map_err(|e| fail(EXIT_FAILED, e))?;
    if project.is_none() {
        info!(
            "No project metadata found at path {:?}, project metadata will not be exported",
            in_layers(&args.project_metadata, "project-metadata.toml")
                .display()
                .to_string()
        );
    }
    let run_for_export = if platform >= Api::new(0, 12) {
        read_run_image_for_export(&args.run, &analyzed)
    } else {
        read_stack(&args.stack)
    }
    .map_err(|e| fail(EXIT_FAILED, e))?;
    let export_fail =
        |e: &dyn std::fmt::Display| fail(EXIT_EXPORT, format!("failed to export: {e}"));
    let build = BuildFile::read(&layers.join("config/metadata.toml"))
        .map_err(|e| export_fail(&format!("read build metadata: {e}")))?;

    let run_name = match &args.run_image {
        Some(r) => r.clone(),
        None => analyzed
            .run_image
            .as_ref()
            .map(|r| r.reference.clone())
            .unwrap_or_default(),
    };
    let run = ctx.load(&run_name).map_err(|e| {
        fail(
            EXIT_FAILED,
            format!("failed to create new app image: {e:#}"),
        )
    })?;
    let previous = analyzed
        .previous_reference()
        .and_then(|p| match ctx.load(p) {
            Ok(image) => Some(image),
            Err(e) => {
                warn!("previous image {p} not usable, exporting without reuse: {e:#}");
                None
            }
        });
    let in_run_image = args.launcher_in_run_image == Some(true);
    if in_run_image && args.launcher.is_some() {
        warn!("--launcher-in-run-image: ignoring the launcher path; the app links to the run image's launcher");
    }
    let launcher = if in_run_image {
        LauncherSource::RunImage
    } else {
        LauncherSource::Binary {
            path: args
                .launcher
                .clone()
                .unwrap_or_else(|| DEFAULT_LAUNCHER.into()),
            tool: Tool {
                version: env!("CARGO_PKG_VERSION").into(),
                repository: env!("CARGO_PKG_REPOSITORY").into(),
                commit: String::new(),
            },
        }
    };
    let layers_dir = layers.clone();
    let x = Export {
        platform_api: platform,
        dirs: Dirs {
            layers,
            app,
            root: "/".into(),
        },
        uid: args.uid,
        gid: args.gid,
        group: &group,
        analyzed: &analyzed,
        build: &build,
        project_metadata: project.as_ref(),
        run_for_export: &run_for_export,
        process_type: args.process_type.as_deref(),
        source_date_epoch: source_date_epoch(),
        exec_env: &std::env::var("CNB_EXEC_ENV").unwrap_or_else(|_| "production".into()),
        launcher: &launcher,
        launcher_sbom: Some(&args.launcher_sbom),
        diff_id_cache: Some(layers_dir.join(DIFF_ID_CACHE)),
    };
    let reference = run_reference(&ctx, &run_name, &run)?;
    let exported = export(
        &x,
        RunImage {
            image: &run,
            reference: &reference,
            name: &run_name,
        },
        previous.as_ref(),
    )
    .map_err(|e| export_fail(&e))?;
    save(&ctx, &exported.image, &x.dirs.layers)
}

/// `runImage.reference`: the run image by digest where it was read from —
/// `<registry>/<repository>@<digest>` (Docker Hub as `index.docker.io`, as
/// go-containerregistry names it) or `oci:<dir>@<digest>`.
fn run_reference(ctx: &Ctx<'_>, name: &str, run: &Image) -> Result<String, Fail> {
    Ok(match ctx.image_ref(name)? {
        ImageRef::Registry(r) => {
            format!(
                "{}/{}@{}",
                ggcr_registry(&r.registry),
                r.repository,
                run.digest()
            )
        }
        ImageRef::Layout { dir, .. } => format!("oci:{}@{}", dir.display(), run.digest()),
    })
}

/// Writes the image to every tag (blobs first, tags last, per repository), then report.toml.
fn save(ctx: &Ctx<'_>, image: &Image, layers: &Path) -> Result<(), Fail> {
    let save_fail = |e: &dyn std::fmt::Display| {
        fail(EXIT_EXPORT, format!("failed to export: saving image: {e}"))
    };
    let mut digest = None;
    let mut manifest_size = 0;
    for tag in &ctx.args.tags {
        let r = ctx.image_ref(tag)?;
        let repo = Repo::create(&r, &ctx.opts).map_err(|e| save_fail(&format!("{tag}: {e}")))?;
        let tags: Vec<String> = match &repo.reference {
            ManifestRef::Tag(t) => vec![t.clone()],
            ManifestRef::Digest(_) => {
                return Err(save_fail(&format!("{tag} names a digest; give a tag")))
            }
        };
        info!("Saving {tag}...");
        let report = relaunch_oci::write_image(
            image,
            repo.transport.as_ref(),
            &tags,
            &super::BarProgress::for_stderr(),
        )
        .map_err(|e| save_fail(&format!("{tag}: {e}")))?;
        digest = report.digest.clone();
        manifest_size = report.manifest_size;
        tracing::debug!(
            "{tag}: {} blobs uploaded, {} mounted, {} already present",
            report.uploaded,
            report.mounted,
            report.skipped
        );
    }
    let digest = digest.map(|d| d.to_string()).unwrap_or_default();
    info!("*** Images ({digest}):");
    for tag in &ctx.args.tags {
        info!("      {tag}");
    }
    info!("\n*** Digest: {digest}");
    info!("\n*** Manifest Size: {manifest_size}");
    let report_path = ctx
        .args
        .report
        .clone()
        .unwrap_or_else(|| layers.join("report.toml"));
    let tags: Vec<String> = ctx.args.tags.iter().map(|t| format!("{t:?}")).collect();
    let report = format!(
        "[image]\n  tags = [{}]\n  digest = \"{digest}\"\n  manifest-size = {manifest_size}\n",
        tags.join(", ")
    );
    std::fs::write(&report_path, report).map_err(|e| {
        fail(
            EXIT_EXPORT,
            format!("failed to write report: {}: {e}", report_path.display()),
        )
    })
}
