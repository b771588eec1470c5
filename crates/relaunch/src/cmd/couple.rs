//! `relaunch decouple` / `relaunch recouple`: switch an app image's launcher layer between
//! a symlink to the run image's launcher and a launcher binary, in place.

use std::process::ExitCode;

use anyhow::Context;
use relaunch_lifecycle::app::lifecycle_metadata;
use relaunch_lifecycle::decouple::{decouple, recouple, BaseImage, Switched};
use relaunch_lifecycle::run_image::RunImage;
use relaunch_oci::{Image, ImageRef};
use serde_json::json;

use super::images::{load, run_image_for, write, LauncherArgs};
use super::Global;

#[derive(clap::Args, Debug)]
pub struct DecoupleArgs {
    /// App image: oci:<dir>[:<tag>] or [host[:port]/]repo[:tag|@digest]
    pub app_image: String,
    /// Run image whose launcher the app will use (default: runImage.reference).
    #[arg(long)]
    pub run_image: Option<String>,
    #[command(flatten)]
    pub switch: SwitchArgs,
}

#[derive(clap::Args, Debug)]
pub struct RecoupleArgs {
    /// App image: oci:<dir>[:<tag>] or [host[:port]/]repo[:tag|@digest]
    pub app_image: String,
    #[command(flatten)]
    pub launcher: LauncherArgs,
    /// Run image the app is based on, for the base-image annotations (default: runImage.reference).
    #[arg(long)]
    pub run_image: Option<String>,
    #[command(flatten)]
    pub switch: SwitchArgs,
}

/// Output options shared by both directions of the switch.
#[derive(clap::Args, Debug)]
pub struct SwitchArgs {
    /// Output image reference.
    #[arg(long, value_name = "IMAGE")]
    pub tag: ImageRef,
    /// Switch even if the launcher does not support the app's APIs.
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn base_of(run: &RunImage) -> Option<BaseImage> {
    run.digest.clone().map(|digest| BaseImage {
        name: run.name.clone(),
        digest,
    })
}

fn context(
    global: &Global,
    reference: &str,
    explicit: Option<&str>,
) -> anyhow::Result<(Image, RunImage)> {
    let app = load(global, reference)?;
    let (md, _) = lifecycle_metadata(&app).with_context(|| format!("app image {reference}"))?;
    let run = run_image_for(global, &app, &md, explicit)?;
    Ok((app, run))
}

pub fn run_decouple(global: &Global, args: DecoupleArgs) -> anyhow::Result<ExitCode> {
    let (app, run) = context(global, &args.app_image, args.run_image.as_deref())?;
    let switched = decouple(
        app,
        run.launcher()?,
        base_of(&run).as_ref(),
        args.switch.force,
    )
    .with_context(|| format!("decoupling {}", args.app_image))?;
    finish(global, switched, &args.switch, "decoupled")
}

pub fn run_recouple(global: &Global, args: RecoupleArgs) -> anyhow::Result<ExitCode> {
    let launcher = args.launcher.resolve(global)?;
    let (app, run) = context(global, &args.app_image, args.run_image.as_deref())?;
    let switched = recouple(app, &launcher, base_of(&run).as_ref(), args.switch.force)
        .with_context(|| format!("recoupling {}", args.app_image))?;
    finish(global, switched, &args.switch, "recoupled")
}

fn finish(global: &Global, s: Switched, opts: &SwitchArgs, verb: &str) -> anyhow::Result<ExitCode> {
    let tag = &opts.tag;
    // Written even when unchanged: the next pipeline step expects --tag to exist.
    let digest = write(global, &s.image, tag)?;
    if opts.json {
        let out = json!({
            "changed": !s.unchanged,
            "digest": digest.to_string(),
            "previous": s.previous,
            "launcher-sha": s.layer.to_string(),
            "check": s.report,
        });
        outln!("{out:#}");
        return Ok(ExitCode::SUCCESS);
    }
    let l = &s.report.launcher;
    match s.unchanged {
        true => outln!(
            "unchanged: the launcher layer is already {} ({}); tagged {tag} ({digest})",
            s.layer,
            l.path
        ),
        false => {
            outln!(
                "{verb}: launcher layer {} -> {} ({} {}, Platform APIs {}; Buildpack APIs {})",
                s.previous.sha,
                s.layer,
                l.path,
                l.version,
                l.platform_apis,
                l.buildpack_apis
            );
            outln!("wrote {tag} ({digest})");
        }
    }
    if let Some(problem) = s.report.problem() {
        outln!("WARNING (forced): {problem}");
    }
    Ok(ExitCode::SUCCESS)
}
