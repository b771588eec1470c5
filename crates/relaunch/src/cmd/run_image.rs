//! `relaunch run-image add-launcher`: stamps a run image with a launcher (docs/run-image-contract.md).

use std::process::ExitCode;

use anyhow::Context;
use relaunch_lifecycle::contract::DEFAULT_PATH;
use std::path::Path;

use relaunch_lifecycle::bundle::{delegate_path, Delegate, BUNDLE_LABEL};
use relaunch_lifecycle::stamp::stamp_bundle;
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
    let launcher = args.launcher.resolve(global)?;
    let delegates = args
        .delegate
        .iter()
        .map(|d| delegate(d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let run = load(global, &args.run_image)?;
    let stamped = stamp_bundle(run, &launcher, &delegates, &args.path)
        .with_context(|| format!("stamping {}", args.run_image))?;
    let digest = if stamped.unchanged {
        None
    } else {
        Some(write(global, &stamped.image, &args.tag)?)
    };
    let a = &stamped.advertised;
    if args.json {
        let out = json!({
            "changed": !stamped.unchanged,
            "digest": digest.as_ref().map(ToString::to_string),
            "launcher": a,
            "layer": stamped.layer.to_string(),
            "replaced": stamped.replaced.as_ref().map(ToString::to_string),
            "bundle": stamped.image.label(BUNDLE_LABEL)
                .and_then(|l| serde_json::from_str::<serde_json::Value>(&l).ok()),
        });
        println!("{out:#}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "launcher {} at {} (Platform APIs {}; Buildpack APIs {}), layer {}",
        a.version, a.path, a.platform_apis, a.buildpack_apis, stamped.layer
    );
    for (i, d) in delegates.iter().enumerate() {
        println!(
            "  delegate {} {} (Platform APIs {}; Buildpack APIs {})",
            delegate_path(&a.path, i, &d.name),
            d.described.version,
            d.described.platform_apis.join(","),
            d.described.buildpack_apis.join(",")
        );
    }
    match (&digest, &stamped.replaced) {
        (None, _) => println!(
            "unchanged: {} already carries this launcher; nothing written",
            args.run_image
        ),
        (Some(d), Some(old)) => println!("replaced launcher layer {old}; wrote {} ({d})", args.tag),
        (Some(d), None) => println!("added launcher layer; wrote {} ({d})", args.tag),
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
