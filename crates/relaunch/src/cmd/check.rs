//! `relaunch check <app> [--run-image R]`: will the app start with that run image's launcher?

use std::process::ExitCode;

use anyhow::Context;
use relaunch_lifecycle::app::{app_apis, lifecycle_metadata};
use relaunch_lifecycle::check::check;

use super::images::{load, run_image_for};
use super::Global;

/// Exit status when the app would not start (distinct from 1, an error).
const INCOMPATIBLE: u8 = 2;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// App image: oci:<dir>[:<tag>] or [host[:port]/]repo[:tag|@digest]
    pub app_image: String,
    /// Run image to check against (default: the one the app is based on, runImage.reference).
    #[arg(long)]
    pub run_image: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let app = load(global, &args.app_image)?;
    let (md, _) =
        lifecycle_metadata(&app).with_context(|| format!("app image {}", args.app_image))?;
    let apis = app_apis(&app, &md).with_context(|| format!("app image {}", args.app_image))?;
    let run = run_image_for(global, &app, &md, args.run_image.as_deref())?;
    let report = check(&apis, run.launcher()?);
    if args.json {
        let mut out = serde_json::to_value(&report)?;
        out["run-image"] = run.name.clone().into();
        outln!("{out:#}");
    } else {
        outln!("app {} with run image {}", args.app_image, run.name);
        outln!("{report}");
    }
    Ok(if report.compatible {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(INCOMPATIBLE)
    })
}
