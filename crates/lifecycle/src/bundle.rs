//! Launcher bundles: a run image's launcher plus delegates at `<path>.d/NN-<name>`, the
//! label listing each launcher's own API lists, and [`select_launcher`], the decision the
//! meta launcher makes at start (the same rule: `launcher::bundle`), for `check`,
//! `decouple` and the rebaser's validation.

use std::collections::BTreeMap;
use std::path::Path;

use launcher::bundle::{first_covering, parse_sidecar, Candidate, Supports};
use launcher::self_description::Described;
use serde::{Deserialize, Serialize};

use crate::apis::{Api, ApiList, ParseApiError};
use crate::check::AppApis;
use crate::contract::AdvertisedLauncher;
use crate::descriptor::{LauncherBinary, SECTION};

/// JSON array of every launcher in the bundle (the launcher at the contract path first, then
/// the delegates in dispatch order), each with its own API lists. Absent: no delegates.
pub const BUNDLE_LABEL: &str = "io.buildpacks.run-image.launcher.bundle";

/// One launcher of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundledLauncher {
    pub path: String,
    pub name: String,
    pub version: String,
    #[serde(rename = "platform-apis")]
    pub platform_apis: ApiList,
    #[serde(rename = "buildpack-apis")]
    pub buildpack_apis: ApiList,
}

impl Supports for BundledLauncher {
    fn supports_platform(&self, api: launcher::api::Version) -> bool {
        self.platform_apis.supports(Api::from(api))
    }
    fn supports_buildpack(&self, api: launcher::api::Version) -> bool {
        self.buildpack_apis.supports(Api::from(api))
    }
}

/// The launchers of a run image, in dispatch order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LauncherBundle(pub Vec<BundledLauncher>);

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("run image label {BUNDLE_LABEL} is malformed: {0}")]
    BadLabel(String),
    #[error("run image label {BUNDLE_LABEL} lists {listed} first, but the launcher is at {path}")]
    PathMismatch { listed: String, path: String },
    #[error("delegate '{origin}': {reason}")]
    BadDelegate { origin: String, reason: String },
}

impl LauncherBundle {
    /// A run image launcher without delegates.
    pub fn single(advertised: &AdvertisedLauncher) -> LauncherBundle {
        LauncherBundle(vec![BundledLauncher {
            path: advertised.path.clone(),
            name: String::new(),
            version: advertised.version.clone(),
            platform_apis: advertised.platform_apis.clone(),
            buildpack_apis: advertised.buildpack_apis.clone(),
        }])
    }

    /// The bundle `advertised` belongs to: its label, or the advertised launcher alone.
    pub fn from_labels(
        advertised: &AdvertisedLauncher,
        labels: &BTreeMap<String, String>,
    ) -> Result<LauncherBundle, BundleError> {
        let Some(value) = labels.get(BUNDLE_LABEL) else {
            return Ok(LauncherBundle::single(advertised));
        };
        let list: Vec<BundledLauncher> =
            serde_json::from_str(value).map_err(|e| BundleError::BadLabel(e.to_string()))?;
        match list.first() {
            None => Err(BundleError::BadLabel("no launcher listed".into())),
            Some(first) if first.path != advertised.path => Err(BundleError::PathMismatch {
                listed: first.path.clone(),
                path: advertised.path.clone(),
            }),
            Some(_) => Ok(LauncherBundle(list)),
        }
    }

    /// The label value (compact JSON).
    pub fn to_label(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_default()
    }

    /// Every API some launcher of the bundle supports: (platform, buildpack).
    pub fn union(&self) -> (ApiList, ApiList) {
        let all = |f: fn(&BundledLauncher) -> &ApiList| {
            ApiList::new(self.0.iter().flat_map(|l| f(l).iter().copied()))
        };
        (all(|l| &l.platform_apis), all(|l| &l.buildpack_apis))
    }
}

/// Which launcher of `bundle` starts `app`, by the meta launcher's rule: the first, in
/// dispatch order, that supports the app's Platform API and every Buildpack API.
pub fn select_launcher<'b>(
    bundle: &'b LauncherBundle,
    app: &AppApis,
) -> Option<&'b BundledLauncher> {
    let buildpacks: Vec<_> = app.buildpacks.iter().map(|b| b.api.version()).collect();
    first_covering(&bundle.0, app.platform.version(), &buildpacks).map(|i| &bundle.0[i])
}

/// A delegate to bundle: its bytes and what it supports.
#[derive(Debug, Clone)]
pub struct Delegate {
    /// File name in the bundle directory without the `NN-` prefix.
    pub name: String,
    pub binary: LauncherBinary,
    pub described: Described,
    /// The sidecar descriptor, stored verbatim as `NN-<name>.toml`.
    pub sidecar: Option<Vec<u8>>,
}

impl Delegate {
    /// A delegate file and, for launchers without a self-description, a sidecar descriptor.
    /// Both are checked with the launcher's own decoders, so the bundle dispatches as built.
    pub fn from_files(file: &Path, sidecar: Option<&Path>) -> Result<Delegate, BundleError> {
        let origin = file.display().to_string();
        let bad = |reason: String| BundleError::BadDelegate {
            origin: origin.clone(),
            reason,
        };
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(launcher::bundle::SIDECAR) && !n.starts_with('.'))
            .ok_or_else(|| bad("its file name must not be hidden or end in .toml".into()))?;
        let binary = match LauncherBinary::from_file(file) {
            Ok(b) => b,
            // A sidecar describes launchers of any format (and wins over a section, as at
            // dispatch); the file must still be executable.
            Err(
                crate::descriptor::LauncherFileError::NotElf { .. }
                | crate::descriptor::LauncherFileError::BadDescriptor { .. },
            ) if sidecar.is_some() => {
                let bytes = std::fs::read(file).map_err(|e| bad(e.to_string()))?;
                LauncherBinary {
                    origin: origin.clone(),
                    bytes,
                    descriptor: None,
                }
            }
            Err(e) => return Err(bad(e.to_string())),
        };
        let (described, sidecar) = match sidecar {
            Some(path) => {
                let bytes = std::fs::read(path)
                    .map_err(|e| bad(format!("descriptor {}: {e}", path.display())))?;
                let d = parse_sidecar(&bytes)
                    .map_err(|e| bad(format!("descriptor {}: {e}", path.display())))?;
                (d, Some(bytes))
            }
            None => {
                let d = binary.descriptor.as_ref().ok_or_else(|| {
                    bad(format!(
                        "no {SECTION} self-description; give a descriptor: --delegate {origin}=<descriptor.toml>"
                    ))
                })?;
                let strings = |l: &ApiList| l.iter().map(ToString::to_string).collect();
                let described = Described {
                    name: d.name.clone(),
                    version: d.version.clone(),
                    platform_apis: strings(&d.platform_apis),
                    buildpack_apis: strings(&d.buildpack_apis),
                };
                (described, None)
            }
        };
        Candidate::new(&name, described.clone()).map_err(bad)?;
        Ok(Delegate {
            name,
            binary,
            described,
            sidecar,
        })
    }

    /// As listed in [`BUNDLE_LABEL`], installed at `path`.
    pub fn bundled_at(&self, path: &str) -> Result<BundledLauncher, ParseApiError> {
        let list = |l: &[String]| -> Result<ApiList, ParseApiError> {
            l.iter()
                .map(|s| s.parse())
                .collect::<Result<Vec<Api>, _>>()
                .map(ApiList::new)
        };
        Ok(BundledLauncher {
            path: path.to_string(),
            name: self.described.name.clone(),
            version: self.described.version.clone(),
            platform_apis: list(&self.described.platform_apis)?,
            buildpack_apis: list(&self.described.buildpack_apis)?,
        })
    }
}

/// `<launcher path>.d/NN-<name>` for the delegate at `index` (0-based) in dispatch order.
pub fn delegate_path(launcher_path: &str, index: usize, name: &str) -> String {
    format!("{launcher_path}.d/{:02}-{name}", index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::BuildpackApi;

    fn launcher(path: &str, platform: &str, buildpack: &str) -> BundledLauncher {
        BundledLauncher {
            path: path.into(),
            name: "l".into(),
            version: "1".into(),
            platform_apis: platform.parse().unwrap(),
            buildpack_apis: buildpack.parse().unwrap(),
        }
    }

    fn app(platform: &str, bps: &[&str]) -> AppApis {
        AppApis {
            platform: platform.parse().unwrap(),
            buildpacks: bps
                .iter()
                .map(|api| BuildpackApi {
                    id: format!("bp-{api}"),
                    api: api.parse().unwrap(),
                })
                .collect(),
            launcher_target: None,
        }
    }

    #[test]
    fn selects_per_launcher_not_from_the_union() {
        let bundle = LauncherBundle(vec![
            launcher("/l", "0.7,0.12,0.15", "0.7,0.12"),
            launcher("/l.d/01-old", "0.6", "0.2,0.6"),
        ]);
        let pick = |a: &AppApis| select_launcher(&bundle, a).map(|l| l.path.as_str());
        assert_eq!(pick(&app("0.12", &["0.12"])), Some("/l"));
        assert_eq!(pick(&app("0.6", &["0.2"])), Some("/l.d/01-old"));
        // The union covers 0.12 and 0.2, but no single launcher does.
        assert_eq!(pick(&app("0.12", &["0.2"])), None);
        assert_eq!(pick(&app("0.5", &[])), None);
        let (p, b) = bundle.union();
        assert_eq!(
            (p.to_label().as_str(), b.to_label().as_str()),
            ("0.6,0.7,0.12,0.15", "0.2,0.6,0.7,0.12")
        );
    }

    #[test]
    fn label_round_trip_and_validation() {
        let adv = AdvertisedLauncher {
            path: "/l".into(),
            version: "1".into(),
            platform_apis: "0.7".parse().unwrap(),
            buildpack_apis: "0.7".parse().unwrap(),
        };
        let single = LauncherBundle::from_labels(&adv, &BTreeMap::new()).unwrap();
        assert_eq!(single.0.len(), 1);
        let bundle = LauncherBundle(vec![
            launcher("/l", "0.7", "0.7"),
            launcher("/l.d/01-x", "0.6", "0.6"),
        ]);
        let mut labels = BTreeMap::from([(BUNDLE_LABEL.to_string(), bundle.to_label())]);
        assert_eq!(LauncherBundle::from_labels(&adv, &labels).unwrap(), bundle);
        labels.insert(BUNDLE_LABEL.into(), "[]".into());
        assert!(LauncherBundle::from_labels(&adv, &labels).is_err());
        labels.insert(
            BUNDLE_LABEL.into(),
            LauncherBundle(vec![launcher("/x", "0.7", "0.7")]).to_label(),
        );
        let e = LauncherBundle::from_labels(&adv, &labels).unwrap_err();
        assert!(e.to_string().contains("lists /x first"), "{e}");
        assert_eq!(delegate_path("/l", 0, "old"), "/l.d/01-old");
    }
}
