//! `relaunch run-image add-launcher`: stamps a run image with a launcher (docs/run-image-contract.md).

use std::process::ExitCode;

use anyhow::{bail, Context};
use relaunch_lifecycle::contract::DEFAULT_PATH;
use relaunch_lifecycle::stamp::{stamp_run_image, Stamped};
use relaunch_oci::{Image, ImageRef};
use serde_json::json;

use super::images::{load_all, write_all, LauncherArgs};
use super::Global;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Add (or replace) the run image's launcher layer and advertise it in labels.
    AddLauncher(AddLauncher),
}

#[derive(clap::Args, Debug)]
pub struct AddLauncher {
    /// Run image: oci:<dir>[:<tag>] or [host[:port]/]repo[:tag|@digest]
    pub run_image: String,
    #[command(flatten)]
    pub launcher: LauncherArgs,
    /// Where the launcher goes in the run image (not under /cnb/lifecycle).
    #[arg(long, default_value = DEFAULT_PATH)]
    pub path: String,
    /// Output image reference.
    #[arg(long, value_name = "IMAGE")]
    pub tag: ImageRef,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let Command::AddLauncher(args) = args.command;
    let run = load_all(global, &args.run_image)?;
    let multi = run.is_index();
    let (run, stamped) = run.try_map(|platform, image| -> anyhow::Result<(Image, Stamped)> {
        let launcher = args.launcher.resolve(global, Some(platform))?;
        let stamped =
            stamp_run_image(image, &launcher, &args.path).with_context(|| match multi {
                true => format!("stamping {} ({platform})", args.run_image),
                false => format!("stamping {}", args.run_image),
            })?;
        Ok((stamped.image.clone(), stamped))
    })?;
    let unchanged = stamped.iter().all(|s| s.unchanged);
    // Written even when unchanged: the next pipeline step expects --tag to exist.
    let digest = write_all(global, &run, &args.tag)?;
    // Every platform gets the same path; APIs and version are the first platform's
    // launcher's (a multi-arch launcher image is one build).
    let Some(first) = stamped.first() else {
        bail!("{} holds no image to stamp", args.run_image);
    };
    let a = &first.advertised;
    if args.json {
        let mut out = json!({
            "changed": !unchanged,
            "digest": digest.to_string(),
            "launcher": a,
            "layer": first.layer.to_string(),
            "replaced": first.replaced.as_ref().map(ToString::to_string),
        });
        if multi {
            let platforms: Vec<_> = run
                .images()
                .iter()
                .zip(&stamped)
                .map(|((platform, _), s)| {
                    json!({
                        "platform": platform.to_string(),
                        "changed": !s.unchanged,
                        "layer": s.layer.to_string(),
                        "replaced": s.replaced.as_ref().map(ToString::to_string),
                    })
                })
                .collect();
            out["platforms"] = platforms.into();
        }
        outln!("{out:#}");
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "launcher {} at {} (Platform APIs {}; Buildpack APIs {}), layer {}",
        a.version,
        a.path,
        a.platform_apis,
        a.buildpack_apis,
        first.layer
    );
    match (unchanged, &first.replaced) {
        (true, _) => outln!(
            "unchanged: {} already carries this launcher; tagged {} ({digest})",
            args.run_image,
            args.tag
        ),
        (false, Some(old)) => outln!(
            "replaced launcher layer {old}; wrote {} ({digest})",
            args.tag
        ),
        (false, None) => outln!("added launcher layer; wrote {} ({digest})", args.tag),
    }
    Ok(ExitCode::SUCCESS)
}
