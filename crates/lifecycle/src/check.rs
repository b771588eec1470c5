//! Will an app start with a given run-image launcher? Compares the APIs the launcher
//! verifies at start (L-5: the image's `CNB_PLATFORM_API`; L-6: every buildpack API in
//! metadata.toml) with the APIs the launcher advertises.

use std::fmt;

use serde::Serialize;

use crate::apis::{Api, ApiList};
use crate::contract::AdvertisedLauncher;
use crate::metadata::BuildpackApi;

/// The APIs an app image's launcher must support.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppApis {
    #[serde(rename = "platform-api")]
    pub platform: Api,
    pub buildpacks: Vec<BuildpackApi>,
    /// Where `/cnb/lifecycle/launcher` points when the app is decoupled (symlink mode).
    #[serde(rename = "launcher-target", skip_serializing_if = "Option::is_none")]
    pub launcher_target: Option<String>,
}

/// Outcome of comparing an app with a launcher.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompatReport {
    pub compatible: bool,
    pub app: AppApis,
    pub launcher: AdvertisedLauncher,
    /// The app's Platform API when the launcher does not support it.
    #[serde(rename = "unsupported-platform-api")]
    pub unsupported_platform: Option<Api>,
    /// Buildpacks whose API the launcher does not support.
    #[serde(rename = "unsupported-buildpacks")]
    pub unsupported_buildpacks: Vec<BuildpackApi>,
    /// The app's symlink points somewhere other than where the launcher is.
    #[serde(rename = "target-mismatch")]
    pub target_mismatch: bool,
}

pub fn check(app: &AppApis, launcher: &AdvertisedLauncher) -> CompatReport {
    let unsupported_platform =
        (!launcher.platform_apis.supports(app.platform)).then_some(app.platform);
    let unsupported_buildpacks: Vec<BuildpackApi> = app
        .buildpacks
        .iter()
        .filter(|bp| !launcher.buildpack_apis.supports(bp.api))
        .cloned()
        .collect();
    let target_mismatch = app
        .launcher_target
        .as_ref()
        .is_some_and(|t| t != &launcher.path);
    CompatReport {
        compatible: unsupported_platform.is_none()
            && unsupported_buildpacks.is_empty()
            && !target_mismatch,
        app: app.clone(),
        launcher: launcher.clone(),
        unsupported_platform,
        unsupported_buildpacks,
        target_mismatch,
    }
}

impl CompatReport {
    /// One line naming every unsupported version, `None` when compatible.
    pub fn problem(&self) -> Option<String> {
        if self.compatible {
            return None;
        }
        let mut parts = Vec::new();
        if self.target_mismatch {
            parts.push(format!(
                "the app's /cnb/lifecycle/launcher symlink target {} (it provides its launcher at {})",
                self.app.launcher_target.as_deref().unwrap_or_default(),
                self.launcher.path
            ));
        }
        if let Some(p) = self.unsupported_platform {
            parts.push(format!(
                "Platform API {p} (supported: {})",
                self.launcher.platform_apis
            ));
        }
        if !self.unsupported_buildpacks.is_empty() {
            let apis = ApiList::new(self.unsupported_buildpacks.iter().map(|b| b.api));
            let ids: Vec<String> = self
                .unsupported_buildpacks
                .iter()
                .map(|b| format!("{}@{}", b.id, b.api))
                .collect();
            parts.push(format!(
                "Buildpack API {apis} of {} (supported: {})",
                ids.join(", "),
                self.launcher.buildpack_apis
            ));
        }
        Some(format!(
            "the run image's launcher {} at {} does not support {}",
            self.launcher.version,
            self.launcher.path,
            parts.join("; ")
        ))
    }
}

impl fmt::Display for CompatReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = |ok: bool| if ok { "ok" } else { "UNSUPPORTED" };
        writeln!(
            f,
            "launcher: {} version {} (Platform APIs {}; Buildpack APIs {})",
            self.launcher.path,
            self.launcher.version,
            self.launcher.platform_apis,
            self.launcher.buildpack_apis
        )?;
        writeln!(
            f,
            "  app Platform API {:<6} {}",
            self.app.platform,
            mark(self.unsupported_platform.is_none())
        )?;
        for bp in &self.app.buildpacks {
            writeln!(
                f,
                "  buildpack {} API {:<6} {}",
                bp.id,
                bp.api,
                mark(!self.unsupported_buildpacks.contains(bp))
            )?;
        }
        match self.problem() {
            None => write!(f, "compatible: the app will start with this launcher"),
            Some(p) => write!(f, "incompatible: {p}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launcher(platform: &str, buildpack: &str) -> AdvertisedLauncher {
        AdvertisedLauncher {
            path: "/usr/local/bin/launcher".into(),
            version: "1.0.0".into(),
            platform_apis: platform.parse().unwrap(),
            buildpack_apis: buildpack.parse().unwrap(),
        }
    }

    fn app(platform: &str, bps: &[(&str, &str)]) -> AppApis {
        AppApis {
            platform: platform.parse().unwrap(),
            buildpacks: bps
                .iter()
                .map(|(id, api)| BuildpackApi {
                    id: id.to_string(),
                    api: api.parse().unwrap(),
                })
                .collect(),
            launcher_target: None,
        }
    }

    #[test]
    fn covered_app_is_compatible() {
        let r = check(
            &app("0.10", &[("a", "0.9"), ("b", "0.12")]),
            &launcher("0.7,0.10", "0.9,0.12"),
        );
        assert!(r.compatible);
        assert_eq!(r.problem(), None);
        assert!(r.to_string().contains("compatible: the app will start"));
    }

    #[test]
    fn names_every_unsupported_version() {
        let r = check(
            &app("0.10", &[("a", "0.8"), ("b", "0.12")]),
            &launcher("0.12,0.13,0.14,0.15", "0.9,0.10,0.11,0.12"),
        );
        assert!(!r.compatible);
        assert_eq!(r.unsupported_platform, Some(Api::new(0, 10)));
        let p = r.problem().unwrap();
        assert!(p.contains("Platform API 0.10"), "{p}");
        assert!(p.contains("Buildpack API 0.8 of a@0.8"), "{p}");
        assert!(!p.contains("b@"), "{p}");
    }

    #[test]
    fn symlink_must_point_at_the_advertised_path() {
        let mut a = app("0.10", &[]);
        a.launcher_target = Some("/opt/launcher".into());
        let r = check(&a, &launcher("0.10", "0.10"));
        assert!(r.target_mismatch && !r.compatible);
        assert!(r
            .problem()
            .unwrap()
            .contains("symlink target /opt/launcher"));
    }
}
