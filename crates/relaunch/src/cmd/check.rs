//! `relaunch check <app> [--run-image R]`: will the app start with that run image's launcher?
//! With `--from-file`, the fleet pre-flight (preflight.rs).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use relaunch_lifecycle::app::{app_apis, lifecycle_metadata};
use relaunch_lifecycle::check::check_bundle;
use serde_json::json;

use super::images::{load_all, run_image_for};
use super::{preflight, Global};
use crate::fleet::FleetArgs;

/// One app, as `check <app>` names it.
struct SingleArgs<'a> {
    app_image: &'a str,
    run_image: Option<&'a str>,
    json: bool,
}

/// Exit status when the app would not start (distinct from 1, an error).
const INCOMPATIBLE: u8 = 2;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// App image: oci:<dir>[:<tag>] or [host[:port]/]repo[:tag|@digest]
    #[arg(required_unless_present = "from_file", conflicts_with = "from_file")]
    pub app_image: Option<String>,
    /// Run image to check against (default: the one the app is based on, runImage.reference;
    /// required with --from-file).
    #[arg(long)]
    pub run_image: Option<String>,
    /// Print the report as JSON (with --from-file: one JSON object per app and line).
    #[arg(long)]
    pub json: bool,
    /// With --from-file: also write a self-contained HTML report (sortable table, charts).
    #[arg(long, value_name = "FILE", requires = "from_file")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let Some(app_image) = &args.app_image else {
        return preflight::run(
            global,
            &args.fleet,
            args.run_image.as_deref(),
            args.json,
            args.html.as_deref(),
        );
    };
    let args = SingleArgs {
        app_image,
        run_image: args.run_image.as_deref(),
        json: args.json,
    };
    let app = load_all(global, args.app_image)?;
    let multi = app.is_index();
    let mut reports = Vec::new();
    for (platform, image) in app.images() {
        let what = || match multi {
            true => format!("app image {} ({platform})", args.app_image),
            false => format!("app image {}", args.app_image),
        };
        let (md, _) = lifecycle_metadata(image).with_context(what)?;
        let apis = app_apis(image, &md).with_context(what)?;
        let run =
            run_image_for(global, image, &md, args.run_image, &platform).with_context(what)?;
        let (launcher, bundle) = run.launcher_bundle()?;
        let report = check_bundle(&apis, launcher, bundle);
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
