//! Which launcher will actually run an app image: the hook `relaunch inspect` calls.

use relaunch_oci::Image;
use serde::Serialize;

use crate::apis::ApiList;
use crate::app::{lifecycle_metadata, string_labels};
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
    /// Where these facts come from.
    pub source: String,
    /// How the build-time launcher SBOM relates to this launcher.
    pub sbom: String,
}

/// `run` is the run image the app is based on now (a name for messages and the launcher its
/// labels advertise); without it the launcher labels the app inherited from its run image at
/// export are used (stale after a base swap that did not rewrite them, G-26).
pub fn effective_launcher(
    app: &Image,
    run: Option<(&str, Option<&AdvertisedLauncher>)>,
) -> Result<EffectiveLauncher> {
    let (md, index) = lifecycle_metadata(app)?;
    match md.launcher.mode() {
        LauncherMode::Binary => {
            let build = BuildMetadata::from_label(app.label(BUILD_METADATA_LABEL).as_deref())?;
            let version = build
                .launcher
                .as_ref()
                .and_then(|l| l.get("version"))
                .and_then(|v| v.as_str())
                .map(String::from);
            Ok(EffectiveLauncher {
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
            })
        }
        LauncherMode::Symlink => {
            let target = md.launcher.target.clone().unwrap_or_default();
            let (advertised, source) = match run {
                Some((name, advertised)) => (advertised.cloned(), format!("labels of run image {name}")),
                None => (
                    AdvertisedLauncher::from_labels(&string_labels(app))?,
                    "launcher labels the app inherited from its run image at export (stale if the base was swapped since)".into(),
                ),
            };
            let sbom = format!(
                "{BUILD_TIME_LAUNCHER_SBOM_DIR} describes the launcher packaged at build time, which no longer runs; the run image's SBOM covers {target}"
            );
            Ok(match advertised {
                Some(a) if a.path == target => EffectiveLauncher {
                    mode: LauncherMode::Symlink,
                    path: target,
                    version: Some(a.version),
                    platform_apis: Some(a.platform_apis),
                    buildpack_apis: Some(a.buildpack_apis),
                    source,
                    sbom,
                },
                other => EffectiveLauncher {
                    mode: LauncherMode::Symlink,
                    source: match other {
                        Some(a) => format!(
                            "{source}: its launcher is at {}, not at the symlink target",
                            a.path
                        ),
                        None => format!("{source}: no launcher advertised; the app will not start"),
                    },
                    path: target,
                    version: None,
                    platform_apis: None,
                    buildpack_apis: None,
                    sbom,
                },
            })
        }
    }
}
