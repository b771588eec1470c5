//! `relaunch run-image add-launcher`: stamps a run image with a launcher (docs/run-image-contract.md).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use relaunch_lifecycle::bundle::{delegate_path, Delegate, BUNDLE_LABEL};
use relaunch_lifecycle::contract::DEFAULT_PATH;
use relaunch_lifecycle::stamp::{stamp_bundle, Stamped};
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
    /// A launcher the meta launcher hands apps to when its built-in implementation cannot
    /// serve their APIs, installed as <path>.d/NN-<name> (NN: the order given, the dispatch
    /// order). It needs a .cnb_launcher self-description, or a sidecar descriptor after `=`
    /// (TOML: name, version, platform-apis, buildpack-apis). Repeatable.
    #[arg(long, value_name = "FILE[=DESCRIPTOR]")]
    pub delegate: Vec<String>,
    /// Output image reference.
    #[arg(long, value_name = "IMAGE")]
    pub tag: ImageRef,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let Command::AddLauncher(args) = args.command;
    let delegates = args
        .delegate
        .iter()
        .map(|d| delegate(d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let run = load_all(global, &args.run_image)?;
    let multi = run.is_index();
    let (run, stamped) = run.try_map(|platform, image| -> anyhow::Result<(Image, Stamped)> {
        let launcher = args.launcher.resolve(global, Some(platform))?;
        let stamped = stamp_bundle(image, &launcher, &delegates, &args.path).with_context(
            || match multi {
                true => format!("stamping {} ({platform})", args.run_image),
                false => format!("stamping {}", args.run_image),
            },
        )?;
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
            "bundle": first.image.label(BUNDLE_LABEL)
                .and_then(|l| serde_json::from_str::<serde_json::Value>(&l).ok()),
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
    for (i, d) in delegates.iter().enumerate() {
        outln!(
            "  delegate {} {} (Platform APIs {}; Buildpack APIs {})",
            delegate_path(&a.path, i, &d.name),
            d.described.version,
            d.described.platform_apis.join(","),
            d.described.buildpack_apis.join(",")
        );
    }
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

/// `--delegate FILE[=DESCRIPTOR]`: an existing FILE is taken whole, else the last `=` splits.
fn delegate(spec: &str) -> anyhow::Result<Delegate> {
    let (file, descriptor) = match spec.rsplit_once('=') {
        Some((file, descriptor)) if !Path::new(spec).exists() => {
            (file, Some(Path::new(descriptor)))
        }
        _ => (spec, None),
    };
    Ok(Delegate::from_files(Path::new(file), descriptor)?)
}
