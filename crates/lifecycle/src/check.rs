//! Will an app start with a given run-image launcher? Compares the APIs the launcher
//! verifies at start (L-5: the image's `CNB_PLATFORM_API`; L-6: every buildpack API in
//! metadata.toml) with the APIs the launcher advertises.

use std::fmt;

use serde::Serialize;

use crate::apis::{Api, ApiList};
use crate::bundle::{select_launcher, LauncherBundle};
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
    /// With a launcher bundle: the launcher of the bundle that will start the app.
    #[serde(rename = "started-by", skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    /// How many launchers the run image holds (1 without delegates).
    #[serde(skip)]
    pub bundle_size: usize,
    /// The Buildpack APIs the app's buildpacks were checked against.
    #[serde(skip)]
    pub checked_buildpack_apis: ApiList,
}

/// [`check_bundle`] for a run image whose launcher has no delegates.
pub fn check(app: &AppApis, launcher: &AdvertisedLauncher) -> CompatReport {
    check_bundle(app, launcher, &LauncherBundle::single(launcher))
}

/// Compares the app with the launchers of a bundle, deciding as the meta launcher does
/// ([`select_launcher`]). When none fits, the missing APIs are named against the first
/// launcher that supports the app's Platform API (the one whose refusal the app would see),
/// or against the whole bundle when none does.
pub fn check_bundle(
    app: &AppApis,
    launcher: &AdvertisedLauncher,
    bundle: &LauncherBundle,
) -> CompatReport {
    let target_mismatch = app
        .launcher_target
        .as_ref()
        .is_some_and(|t| t != &launcher.path);
    let selected = select_launcher(bundle, app);
    let (union_platform, union_buildpack) = bundle.union();
    let closest = selected.or_else(|| {
        bundle
            .0
            .iter()
            .find(|l| l.platform_apis.supports(app.platform))
    });
    let checked = closest.map_or(union_buildpack, |l| l.buildpack_apis.clone());
    CompatReport {
        compatible: selected.is_some() && !target_mismatch,
        app: app.clone(),
        launcher: launcher.clone(),
        unsupported_platform: (!union_platform.supports(app.platform)).then_some(app.platform),
        unsupported_buildpacks: app
            .buildpacks
            .iter()
            .filter(|bp| !checked.supports(bp.api))
            .cloned()
            .collect(),
        target_mismatch,
        started_by: selected
            .filter(|_| bundle.0.len() > 1)
            .map(|l| l.path.clone()),
        bundle_size: bundle.0.len(),
        checked_buildpack_apis: checked,
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
        if self.unsupported_platform.is_none()
            && self.unsupported_buildpacks.is_empty()
            && !self.target_mismatch
        {
            parts.push(format!(
                "Platform API {} together with Buildpack APIs {} in one launcher",
                self.app.platform,
                ApiList::new(self.app.buildpacks.iter().map(|b| b.api))
            ));
        }
        if !self.unsupported_buildpacks.is_empty() {
            let apis = ApiList::new(self.unsupported_buildpacks.iter().map(|b| b.api));
            // APIs recorded in the build metadata name no buildpack.
            let ids: Vec<String> = self
                .unsupported_buildpacks
                .iter()
                .filter(|b| !b.id.is_empty())
                .map(|b| format!("{}@{}", b.id, b.api))
                .collect();
            let of = if ids.is_empty() {
                String::new()
            } else {
                format!(" of {}", ids.join(", "))
            };
            parts.push(format!(
                "Buildpack API {apis}{of} (supported: {})",
                self.checked_buildpack_apis
            ));
        }
        let whose = if self.bundle_size > 1 {
            format!(
                "no launcher of the run image's bundle at {}.d",
                self.launcher.path
            )
        } else {
            format!(
                "the run image's launcher {} at {}",
                self.launcher.version, self.launcher.path
            )
        };
        let verb = if self.bundle_size > 1 {
            "supports"
        } else {
            "does not support"
        };
        Some(format!("{whose} {verb} {}", parts.join("; ")))
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
        if let Some(by) = &self.started_by {
            writeln!(f, "  started by the bundled launcher {by}")?;
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

    #[test]
    fn a_bundle_is_checked_per_launcher() {
        use crate::bundle::BundledLauncher;
        let main = launcher("0.7,0.12", "0.7,0.12");
        let old = BundledLauncher {
            path: "/usr/local/bin/launcher.d/01-old".into(),
            name: "old".into(),
            version: "0.1".into(),
            platform_apis: "0.6".parse().unwrap(),
            buildpack_apis: "0.2,0.6".parse().unwrap(),
        };
        let mut bundle = LauncherBundle::single(&main);
        bundle.0.push(old);
        let r = check_bundle(&app("0.6", &[("a", "0.2")]), &main, &bundle);
        assert!(r.compatible);
        assert_eq!(
            r.started_by.as_deref(),
            Some("/usr/local/bin/launcher.d/01-old")
        );
        assert!(
            r.to_string().contains("started by the bundled launcher"),
            "{r}"
        );
        let r = check_bundle(&app("0.12", &[("a", "0.12")]), &main, &bundle);
        assert!(r.compatible && r.started_by.as_deref() == Some("/usr/local/bin/launcher"));
        // Each API is in some launcher, but no launcher has both.
        let r = check_bundle(&app("0.12", &[("a", "0.2")]), &main, &bundle);
        assert!(!r.compatible);
        assert_eq!(r.unsupported_platform, None);
        let p = r.problem().unwrap();
        assert!(
            p.starts_with(
                "no launcher of the run image's bundle at /usr/local/bin/launcher.d supports"
            ),
            "{p}"
        );
        assert!(
            p.contains("Buildpack API 0.2 of a@0.2 (supported: 0.7,0.12)"),
            "{p}"
        );
        let r = check_bundle(&app("0.5", &[]), &main, &bundle);
        assert_eq!(r.unsupported_platform, Some(Api::new(0, 5)));
    }
}
