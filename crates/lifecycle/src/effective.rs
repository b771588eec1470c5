//! Which launcher will actually run an app image: the hook `relaunch inspect` calls.

use relaunch_oci::Image;
use serde::Serialize;

use crate::apis::ApiList;
use crate::app::lifecycle_metadata;
use crate::contract::{AdvertisedLauncher, APP_LAUNCHER_PATH};
use crate::error::Result;
use crate::metadata::{BuildMetadata, LauncherMode, BUILD_METADATA_LABEL};

/// Where the launcher SBOM the exporter packaged lives inside the app image.
pub const BUILD_TIME_LAUNCHER_SBOM_DIR: &str =
    "<layers>/sbom/launch/buildpacksio_lifecycle/launcher/";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffectiveLauncher {
    #[serde(rename = "type")]
    pub mode: LauncherMode,
    /// The executable that starts processes.
    pub path: String,
    pub version: Option<String>,
    #[serde(rename = "platform-apis")]
    pub platform_apis: Option<ApiList>,
    #[serde(rename = "buildpack-apis")]
    pub buildpack_apis: Option<ApiList>,
    /// Where these facts come from, or why they are unknown.
    pub source: String,
    /// How the build-time launcher SBOM relates to this launcher.
    pub sbom: String,
}

/// What is known about the run image a symlink-mode app is based on now.
#[derive(Debug, Clone, Copy)]
pub enum RunImageFacts<'a> {
    /// Read from the run image itself.
    Read {
        name: &'a str,
        advertised: Option<&'a AdvertisedLauncher>,
    },
    /// Not readable: the launcher labels the app inherited at export stand in (stale after
    /// a base swap that did not rewrite them, G-26).
    Inherited {
        advertised: Option<&'a AdvertisedLauncher>,
    },
    /// The app is known not to sit on the run image its metadata names any more.
    Unknown(&'a str),
}

pub fn effective_launcher(app: &Image, run: RunImageFacts<'_>) -> Result<EffectiveLauncher> {
    let (md, index) = lifecycle_metadata(app)?;
    if md.launcher.mode() == LauncherMode::Binary {
        let build = BuildMetadata::from_label(app.label(BUILD_METADATA_LABEL).as_deref())?;
        let version = build
            .launcher
            .as_ref()
            .and_then(|l| l.get("version"))
            .and_then(|v| v.as_str())
            .map(String::from);
        return Ok(EffectiveLauncher {
            mode: LauncherMode::Binary,
            path: APP_LAUNCHER_PATH.into(),
            version,
            platform_apis: None,
            buildpack_apis: None,
            source: format!(
                "app image launcher layer {} (layer {index})",
                md.launcher.sha
            ),
            sbom: format!("{BUILD_TIME_LAUNCHER_SBOM_DIR} describes this binary"),
        });
    }
    let target = md.launcher.target.clone().unwrap_or_default();
    let (advertised, source) = match run {
        RunImageFacts::Read { name, advertised } => {
            (advertised, format!("labels of run image {name}"))
        }
        RunImageFacts::Inherited { advertised } => (
            advertised,
            "launcher labels the app inherited from its run image at export (stale if the base was swapped since)".into(),
        ),
        RunImageFacts::Unknown(why) => (None, format!("unknown: {why}")),
    };
    let mut facts = EffectiveLauncher {
        mode: LauncherMode::Symlink,
        path: target.clone(),
        version: None,
        platform_apis: None,
        buildpack_apis: None,
        source: source.clone(),
        sbom: format!(
            "{BUILD_TIME_LAUNCHER_SBOM_DIR} describes the launcher packaged at build time, which no longer runs; the run image's SBOM covers {target}"
        ),
    };
    match advertised {
        Some(a) if a.path == target => {
            facts.version = Some(a.version.clone());
            facts.platform_apis = Some(a.platform_apis.clone());
            facts.buildpack_apis = Some(a.buildpack_apis.clone());
        }
        Some(a) => {
            facts.source = format!(
                "{source}: its launcher is at {}, not at the symlink target",
                a.path
            )
        }
        None if !matches!(run, RunImageFacts::Unknown(_)) => {
            facts.source = format!("{source}: no launcher advertised; the app will not start")
        }
        None => {}
    }
    Ok(facts)
}
