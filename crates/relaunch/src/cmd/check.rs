//! `relaunch check <app> [--run-image R]`: will the app start with that run image's launcher?

use std::process::ExitCode;

use anyhow::Context;
use relaunch_lifecycle::app::{app_apis, lifecycle_metadata};
use relaunch_lifecycle::check::check;
use serde_json::json;

use super::images::{load_all, run_image_for};
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
    let app = load_all(global, &args.app_image)?;
    let multi = app.is_index();
    let mut reports = Vec::new();
    for (platform, image) in app.images() {
        let what = || match multi {
            true => format!("app image {} ({platform})", args.app_image),
            false => format!("app image {}", args.app_image),
        };
        let (md, _) = lifecycle_metadata(image).with_context(what)?;
        let apis = app_apis(image, &md).with_context(what)?;
        let run = run_image_for(global, image, &md, args.run_image.as_deref(), &platform)
            .with_context(what)?;
        let report = check(&apis, run.launcher()?);
        reports.push((platform, run.name, report));
    }
    let compatible = reports.iter().all(|(_, _, r)| r.compatible);
    if args.json {
        let mut all = Vec::new();
        for (platform, run, report) in &reports {
            let mut out = serde_json::to_value(report)?;
            out["run-image"] = run.clone().into();
            if multi {
                out["platform"] = platform.to_string().into();
            }
            all.push(out);
        }
        let out = match (multi, all.pop()) {
            (false, Some(single)) => single,
            (_, last) => {
                all.extend(last);
                json!({"compatible": compatible, "platforms": all})
            }
        };
        outln!("{out:#}");
    } else {
        for (platform, run, report) in &reports {
            match multi {
                true => outln!("app {} ({platform}) with run image {run}", args.app_image),
                false => outln!("app {} with run image {run}", args.app_image),
            }
            outln!("{report}");
        }
    }
    Ok(if compatible {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(INCOMPATIBLE)
    })
}
