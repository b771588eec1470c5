//! `relaunch decouple` / `relaunch recouple`: switch an app image's launcher layer between
//! a symlink to the run image's launcher and a launcher binary, in place.

use std::process::ExitCode;

use anyhow::Context;
use relaunch_lifecycle::app::lifecycle_metadata;
use relaunch_lifecycle::decouple::{decouple, recouple, BaseImage, Switched};
use relaunch_oci::{Image, ImageOrIndex, ImageRef, Platform};
use serde_json::json;

use super::images::{load_all, run_image_for, write_all, LauncherArgs, RunImage};
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

/// One platform image of the app with its platform, for messages.
struct Part {
    platform: Platform,
    switched: Switched,
}

/// Applies `switch` to every platform image of `reference` with the run image it is based
/// on (read for that platform).
fn each_platform(
    global: &Global,
    reference: &str,
    explicit: Option<&str>,
    mut switch: impl FnMut(Image, &RunImage, &Platform) -> anyhow::Result<Switched>,
) -> anyhow::Result<(ImageOrIndex, Vec<Part>)> {
    let app = load_all(global, reference)?;
    let multi = app.is_index();
    app.try_map(|platform, image| -> anyhow::Result<(Image, Part)> {
        let what = || match multi {
            true => format!("app image {reference} ({platform})"),
            false => format!("app image {reference}"),
        };
        let (md, _) = lifecycle_metadata(&image).with_context(what)?;
        let run = run_image_for(global, &image, &md, explicit, platform).with_context(what)?;
        let switched = switch(image, &run, platform).with_context(what)?;
        let part = Part {
            platform: platform.clone(),
            switched,
        };
        Ok((part.switched.image.clone(), part))
    })
}

pub fn run_decouple(global: &Global, args: DecoupleArgs) -> anyhow::Result<ExitCode> {
    let force = args.switch.force;
    let (app, parts) = each_platform(
        global,
        &args.app_image,
        args.run_image.as_deref(),
        |image, run, _| {
            Ok(decouple(
                image,
                run.launcher()?,
                base_of(run).as_ref(),
                force,
            )?)
        },
    )
    .with_context(|| format!("decoupling {}", args.app_image))?;
    finish(global, app, parts, &args.switch, "decoupled")
}

pub fn run_recouple(global: &Global, args: RecoupleArgs) -> anyhow::Result<ExitCode> {
    let force = args.switch.force;
    let (app, parts) = each_platform(
        global,
        &args.app_image,
        args.run_image.as_deref(),
        |image, run, platform| {
            let launcher = args.launcher.resolve(global, Some(platform))?;
            Ok(recouple(image, &launcher, base_of(run).as_ref(), force)?)
        },
    )
    .with_context(|| format!("recoupling {}", args.app_image))?;
    finish(global, app, parts, &args.switch, "recoupled")
}

fn finish(
    global: &Global,
    app: ImageOrIndex,
    parts: Vec<Part>,
    opts: &SwitchArgs,
    verb: &str,
) -> anyhow::Result<ExitCode> {
    let tag = &opts.tag;
    let unchanged = parts.iter().all(|p| p.switched.unchanged);
    let digest = if unchanged {
        None
    } else {
        Some(write_all(global, &app, tag)?)
    };
    let multi = app.is_index();
    if opts.json {
        let describe = |p: &Part| {
            let s = &p.switched;
            json!({
                "platform": p.platform.to_string(),
                "changed": !s.unchanged,
                "digest": s.image.digest().to_string(),
                "previous": s.previous,
                "launcher-sha": s.layer.to_string(),
                "check": s.report,
            })
        };
        let out = match (multi, parts.first()) {
            (false, Some(p)) => {
                let s = &p.switched;
                json!({
                    "changed": !s.unchanged,
                    "digest": digest.as_ref().map(ToString::to_string),
                    "previous": s.previous,
                    "launcher-sha": s.layer.to_string(),
                    "check": s.report,
                })
            }
            _ => json!({
                "changed": !unchanged,
                "digest": digest.as_ref().map(ToString::to_string),
                "platforms": parts.iter().map(describe).collect::<Vec<_>>(),
            }),
        };
        println!("{out:#}");
        return Ok(ExitCode::SUCCESS);
    }
    for p in &parts {
        let s = &p.switched;
        let l = &s.report.launcher;
        let on = if multi {
            format!("{}: ", p.platform)
        } else {
            String::new()
        };
        if s.unchanged {
            let end = if multi { "" } else { "; nothing written" };
            println!(
                "{on}unchanged: the launcher layer is already {} ({}){end}",
                s.layer, l.path
            );
        } else {
            println!(
                "{on}{verb}: launcher layer {} -> {} ({} {}, Platform APIs {}; Buildpack APIs {})",
                s.previous.sha, s.layer, l.path, l.version, l.platform_apis, l.buildpack_apis
            );
        }
        if let Some(problem) = s.report.problem() {
            println!("{on}WARNING (forced): {problem}");
        }
    }
    match digest {
        None if multi => println!("nothing written"),
        None => {}
        Some(d) => println!("wrote {tag} ({d})"),
    }
    Ok(ExitCode::SUCCESS)
}
