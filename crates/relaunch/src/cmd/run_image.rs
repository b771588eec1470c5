//! `relaunch run-image add-launcher`: stamps a run image with a launcher (docs/run-image-contract.md).

use std::process::ExitCode;

use anyhow::Context;
use relaunch_lifecycle::contract::DEFAULT_PATH;
use relaunch_lifecycle::stamp::stamp_run_image;
use relaunch_oci::ImageRef;
use serde_json::json;

use super::images::{load, write, LauncherArgs};
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
    let launcher = args.launcher.resolve(global)?;
    let run = load(global, &args.run_image)?;
    let stamped = stamp_run_image(run, &launcher, &args.path)
        .with_context(|| format!("stamping {}", args.run_image))?;
    // Written even when unchanged: the next pipeline step expects --tag to exist.
    let digest = write(global, &stamped.image, &args.tag)?;
    let a = &stamped.advertised;
    if args.json {
        let out = json!({
            "changed": !stamped.unchanged,
            "digest": digest.to_string(),
            "launcher": a,
            "layer": stamped.layer.to_string(),
            "replaced": stamped.replaced.as_ref().map(ToString::to_string),
        });
        outln!("{out:#}");
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "launcher {} at {} (Platform APIs {}; Buildpack APIs {}), layer {}",
        a.version,
        a.path,
        a.platform_apis,
        a.buildpack_apis,
        stamped.layer
    );
    match (stamped.unchanged, &stamped.replaced) {
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
