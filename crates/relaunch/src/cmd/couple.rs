//! `relaunch decouple` / `relaunch recouple`: switch an app image's launcher layer between
//! a symlink to the run image's launcher and a launcher binary, in place.

use std::process::ExitCode;

use anyhow::{bail, Context};
use relaunch_lifecycle::app::lifecycle_metadata;
use relaunch_lifecycle::decouple::{decouple_onto, recouple, BaseImage, Switched};
use relaunch_lifecycle::run_image::RunImage;
use relaunch_oci::{Digest, Image, ImageOrIndex, ImageRef, NoProgress, Platform};
use serde_json::json;

use super::images::{load_all, publish, run_image_for, write_all, LauncherArgs};
use super::Global;
use crate::fleet::{FleetArgs, Outcome, Runner, Words};

#[derive(clap::Args, Debug)]
pub struct DecoupleArgs {
    /// App image: oci:<dir>[:<tag>] or [host[:port]/]repo[:tag|@digest]
    #[arg(required_unless_present = "from_file", conflicts_with = "from_file")]
    pub app_image: Option<String>,
    /// Run image whose launcher the app will use (default: runImage.reference).
    #[arg(long)]
    pub run_image: Option<String>,
    /// Output image reference.
    #[arg(
        long,
        value_name = "IMAGE",
        required_unless_present = "from_file",
        conflicts_with = "from_file"
    )]
    pub tag: Option<ImageRef>,
    #[command(flatten)]
    pub switch: SwitchArgs,
    #[command(flatten)]
    pub fleet: FleetArgs,
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
    /// Output image reference.
    #[arg(long, value_name = "IMAGE")]
    pub tag: ImageRef,
    #[command(flatten)]
    pub switch: SwitchArgs,
}

/// Options shared by both directions of the switch.
#[derive(clap::Args, Debug)]
pub struct SwitchArgs {
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

/// Applies `switch` to every platform image of `app` (read from `reference`) with the run
/// image it is based on (read for that platform).
fn each_platform(
    global: &Global,
    app: ImageOrIndex,
    reference: &str,
    explicit: Option<&str>,
    mut switch: impl FnMut(Image, &RunImage, &Platform) -> anyhow::Result<Switched>,
) -> anyhow::Result<(ImageOrIndex, Vec<Part>)> {
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

/// Decouples `reference` (every platform) onto `explicit` or the run image it is based on.
fn decoupled(
    global: &Global,
    app: ImageOrIndex,
    reference: &str,
    explicit: Option<&str>,
    force: bool,
) -> anyhow::Result<(ImageOrIndex, Vec<Part>)> {
    each_platform(global, app, reference, explicit, |image, run, _| {
        let (launcher, bundle) = run.launcher_bundle()?;
        Ok(decouple_onto(
            image,
            launcher,
            bundle,
            base_of(run).as_ref(),
            force,
        )?)
    })
    .with_context(|| format!("decoupling {reference}"))
}

pub fn run_decouple(global: &Global, args: DecoupleArgs) -> anyhow::Result<ExitCode> {
    let force = args.switch.force;
    let run_image = args.run_image.as_deref();
    let (Some(reference), Some(tag)) = (&args.app_image, &args.tag) else {
        let runner = Runner::new(
            &args.fleet,
            Words {
                changed: "decoupled",
            },
            args.switch.json,
        );
        let summary = runner.run(args.fleet.items()?, |item| {
            decouple_in_place(global, &item.reference, run_image, force)
        });
        return Ok(ExitCode::from(summary.exit_code()));
    };
    args.fleet.refuse_without_list()?;
    let app = load_all(global, reference)?;
    let (app, parts) = decoupled(global, app, reference, run_image, force)?;
    finish(global, app, parts, tag, &args.switch, "decoupled")
}

/// Fleet mode: decouples one image and writes it back to its own tag.
fn decouple_in_place(
    global: &Global,
    reference: &str,
    run_image: Option<&str>,
    force: bool,
) -> anyhow::Result<Outcome> {
    let target = ImageRef::parse(reference)?;
    let pinned = match &target {
        ImageRef::Layout { digest, .. } => digest.is_some(),
        ImageRef::Registry(r) => r.digest.is_some(),
    };
    if pinned {
        bail!("{reference} names a digest; fleet mode writes each result back to its tag");
    }
    let app = load_all(global, reference)?;
    let old = app.digest();
    let (app, parts) = match decoupled(global, app, reference, run_image, force) {
        Ok(done) => done,
        Err(e) if is_refusal(&e) => return Ok(Outcome::refused(Some(old), format!("{e:#}"))),
        Err(e) => return Err(e),
    };
    if parts.iter().all(|p| p.switched.unchanged) {
        return Ok(Outcome::unchanged(old));
    }
    match publish(global, &app, &target, &NoProgress) {
        Ok(new) => Ok(Outcome::changed(old, new)),
        // The tag write may have reached the registry with its answer lost: then the image
        // is decoupled, and the report must say so.
        Err(e) => match tagged_digest(global, &target) {
            Some(now) if now == app.digest() => Ok(Outcome::changed(old, now)),
            _ => Err(e),
        },
    }
}

/// The digest `target`'s tag names now, if it can be read.
fn tagged_digest(global: &Global, target: &ImageRef) -> Option<Digest> {
    let repo = global.session().open(target).ok()?;
    Some(repo.transport.get_manifest(&repo.reference).ok()?.digest())
}

/// Whether the operation declined (the launcher does not fit the app) rather than failed.
fn is_refusal(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<relaunch_lifecycle::Error>(),
            Some(relaunch_lifecycle::Error::Incompatible(_))
                | Some(relaunch_lifecycle::Error::NoAdvertisedLauncher(_))
        )
    })
}

pub fn run_recouple(global: &Global, args: RecoupleArgs) -> anyhow::Result<ExitCode> {
    let force = args.switch.force;
    let app = load_all(global, &args.app_image)?;
    let (app, parts) = each_platform(
        global,
        app,
        &args.app_image,
        args.run_image.as_deref(),
        |image, run, platform| {
            let launcher = args.launcher.resolve(global, Some(platform))?;
            Ok(recouple(image, &launcher, base_of(run).as_ref(), force)?)
        },
    )
    .with_context(|| format!("recoupling {}", args.app_image))?;
    finish(global, app, parts, &args.tag, &args.switch, "recoupled")
}

fn finish(
    global: &Global,
    app: ImageOrIndex,
    parts: Vec<Part>,
    tag: &ImageRef,
    opts: &SwitchArgs,
    verb: &str,
) -> anyhow::Result<ExitCode> {
    let unchanged = parts.iter().all(|p| p.switched.unchanged);
    // Written even when unchanged: the next pipeline step expects --tag to exist.
    let digest = write_all(global, &app, tag)?;
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
                    "digest": digest.to_string(),
                    "previous": s.previous,
                    "launcher-sha": s.layer.to_string(),
                    "check": s.report,
                })
            }
            _ => json!({
                "changed": !unchanged,
                "digest": digest.to_string(),
                "platforms": parts.iter().map(describe).collect::<Vec<_>>(),
            }),
        };
        outln!("{out:#}");
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
            let tagged = match multi {
                true => String::new(),
                false => format!("; tagged {tag} ({digest})"),
            };
            outln!(
                "{on}unchanged: the launcher layer is already {} ({}){tagged}",
                s.layer,
                l.path
            );
        } else {
            outln!(
                "{on}{verb}: launcher layer {} -> {} ({} {}, Platform APIs {}; Buildpack APIs {})",
                s.previous.sha,
                s.layer,
                l.path,
                l.version,
                l.platform_apis,
                l.buildpack_apis
            );
        }
        if let Some(problem) = s.report.problem() {
            outln!("{on}WARNING (forced): {problem}");
        }
    }
    match (unchanged, multi) {
        (true, false) => {}
        (true, true) => outln!("unchanged; tagged {tag} ({digest})"),
        (false, _) => outln!("wrote {tag} ({digest})"),
    }
    Ok(ExitCode::SUCCESS)
}
