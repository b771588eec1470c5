//! `relaunch check --from-file apps.txt --run-image R`: the fleet pre-flight. For every app,
//! would R's launcher (or launcher bundle) start it, and if not, which APIs are missing?
//! Runs on the fleet runner (jobs per registry, shards, progress, `--json` lines); reads
//! only manifests, configs and, unless the app's build metadata records its Buildpack APIs,
//! its config layer (metadata.toml), never other layers.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{bail, Context};
use relaunch_lifecycle::app::{lifecycle_metadata, recorded_or_read_app_apis};
use relaunch_lifecycle::bundle::LauncherBundle;
use relaunch_lifecycle::check::{check_bundle, CompatReport};
use relaunch_lifecycle::contract::AdvertisedLauncher;
use relaunch_lifecycle::run_image::RunImage;
use relaunch_oci::Platform;
use serde_json::json;

use super::images::load_all;
use super::report_html;
use super::Global;
use crate::fleet::{FleetArgs, Item, Outcome, Runner, Status, Words};

/// One app (one platform of it) in the report.
#[derive(Debug, Clone)]
pub struct Row {
    pub reference: String,
    pub platform: String,
    /// `starts`, `refused` (would not start) or `failed` (could not be checked).
    pub verdict: &'static str,
    pub platform_api: String,
    pub buildpack_apis: String,
    /// The launcher that will start it, or what is missing, or the error.
    pub detail: String,
}

/// The run image's launcher (bundle) for each of its platforms.
struct RunLaunchers {
    name: String,
    by_platform: Vec<(Platform, AdvertisedLauncher, LauncherBundle)>,
}

impl RunLaunchers {
    fn load(global: &Global, name: &str) -> anyhow::Result<RunLaunchers> {
        let run = load_all(global, name)?;
        let mut by_platform = Vec::new();
        for (platform, image) in run.images() {
            let run = RunImage::from_image(name, image)?;
            let (advertised, bundle) = run.launcher_bundle()?;
            by_platform.push((platform, advertised.clone(), bundle.clone()));
        }
        Ok(RunLaunchers {
            name: name.to_string(),
            by_platform,
        })
    }

    /// The launcher for an app of `platform`; a single-image run image serves every app.
    fn for_platform(&self, platform: &Platform) -> Option<(&AdvertisedLauncher, &LauncherBundle)> {
        let found = match self.by_platform.as_slice() {
            [only] => Some(only),
            all => all.iter().find(|(p, _, _)| p.matches(platform)),
        };
        found.map(|(_, a, b)| (a, b))
    }
}

pub fn run(
    global: &Global,
    fleet: &FleetArgs,
    run_image: Option<&str>,
    json: bool,
    html: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let Some(run_image) = run_image else {
        bail!("--from-file needs --run-image: the run image the apps are checked against");
    };
    let items = fleet.items()?;
    let run = RunLaunchers::load(global, run_image)?;
    let rows = Mutex::new(Vec::new());
    let traffic = || global.session().counters();
    let runner = Runner::new(fleet, Words { changed: "starts" }, json).with_traffic(&traffic);
    let summary = runner.run(items, |item| {
        let (outcome, mut checked) = match check_app(global, &run, item) {
            Ok(done) => done,
            Err(e) => {
                let reason = format!("{e:#}");
                let row = Row {
                    reference: item.reference.clone(),
                    platform: String::new(),
                    verdict: "failed",
                    platform_api: String::new(),
                    buildpack_apis: String::new(),
                    detail: reason.clone(),
                };
                (Outcome::failed(None, reason), vec![row])
            }
        };
        rows.lock()
            .unwrap_or_else(|p| p.into_inner())
            .append(&mut checked);
        Ok(outcome)
    });
    if let Some(path) = html {
        let mut rows = rows.into_inner().unwrap_or_else(|p| p.into_inner());
        rows.sort_by(|a, b| (&a.reference, &a.platform).cmp(&(&b.reference, &b.platform)));
        std::fs::write(path, report_html::render(&run.name, &rows, &summary))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::from(summary.exit_code()))
}

/// Checks every platform of one app against the run image's launcher for that platform.
fn check_app(
    global: &Global,
    run: &RunLaunchers,
    item: &Item,
) -> anyhow::Result<(Outcome, Vec<Row>)> {
    let app = load_all(global, &item.reference)?;
    let multi = app.is_index();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut details = Vec::new();
    for (platform, image) in app.images() {
        let (md, _) = lifecycle_metadata(image)?;
        let apis = recorded_or_read_app_apis(image, &md)?;
        let Some((launcher, bundle)) = run.for_platform(&platform) else {
            bail!("run image {} has no {platform} image", run.name);
        };
        let report = check_bundle(&apis, launcher, bundle);
        let prefix = if multi {
            format!("{platform}: ")
        } else {
            String::new()
        };
        let row = row(item, &platform, &report);
        match report.problem() {
            Some(p) => problems.push(format!("{prefix}{p}")),
            None => details.push(format!("{prefix}{}", row.detail)),
        }
        rows.push(row);
    }
    let apps = json!(rows
        .iter()
        .map(|r| json!({
            "platform": r.platform,
            "platform-api": r.platform_api,
            "buildpack-apis": r.buildpack_apis,
            "verdict": r.verdict,
            "detail": r.detail,
        }))
        .collect::<Vec<_>>());
    let mut outcome = if problems.is_empty() {
        // "starts": nothing is written, so no digests, only which launcher starts it.
        Outcome {
            status: Status::Changed,
            reason: Some(details.join("; ")),
            old: None,
            new: None,
            details: Default::default(),
        }
    } else {
        Outcome::refused(Some(app.digest()), problems.join("; "))
    };
    outcome.details.insert("apps".into(), apps);
    Ok((outcome, rows))
}

fn row(item: &Item, platform: &Platform, report: &CompatReport) -> Row {
    let apis: Vec<String> = report
        .app
        .buildpacks
        .iter()
        .map(|b| b.api.to_string())
        .collect();
    let (verdict, detail) = match report.problem() {
        None => (
            "starts",
            format!(
                "Platform API {} via {}",
                report.app.platform,
                report
                    .started_by
                    .clone()
                    .unwrap_or_else(|| report.launcher.path.clone())
            ),
        ),
        Some(p) => ("refused", p),
    };
    Row {
        reference: item.reference.clone(),
        platform: platform.to_string(),
        verdict,
        platform_api: report.app.platform.to_string(),
        buildpack_apis: apis.join(","),
        detail,
    }
}
