//! The run-image launcher contract: where the launcher lives and the labels advertising it
//! (docs/run-image-contract.md).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::apis::{ApiList, ParseApiError};

pub const PATH_LABEL: &str = "io.buildpacks.run.launcher.path";
pub const PLATFORM_APIS_LABEL: &str = "io.buildpacks.run-image.launcher.platform-apis";
pub const BUILDPACK_APIS_LABEL: &str = "io.buildpacks.run-image.launcher.buildpack-apis";
pub const VERSION_LABEL: &str = "io.buildpacks.run-image.launcher.version";
/// diffID of the layer `stamp` added, so re-stamping replaces it instead of stacking another.
pub const LAYER_LABEL: &str = "io.buildpacks.run-image.launcher.layer";

/// Where `run-image add-launcher` puts the launcher unless told otherwise.
pub const DEFAULT_PATH: &str = "/usr/local/bin/launcher";
/// Where app images expect their launcher (the exporter's launcher layer).
pub const APP_LAUNCHER_PATH: &str = "/cnb/lifecycle/launcher";

/// Directories owned by the app image's own lifecycle layers: a run-image launcher there
/// would be shadowed by the launcher or process-types layer.
const RESERVED_DIRS: [&str; 2] = ["/cnb/lifecycle", "/cnb/process"];

#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("launcher path '{0}' must be an absolute, normalised path (e.g. {DEFAULT_PATH})")]
    BadPath(String),
    #[error("launcher path '{path}' is under {dir}, which the app image's own layers overwrite; choose a path outside it (e.g. {DEFAULT_PATH})")]
    ReservedPath { path: String, dir: &'static str },
    #[error("run image has label {PATH_LABEL} but lacks label {0}")]
    MissingLabel(&'static str),
    #[error("run image label {label}: {cause}")]
    BadApis {
        label: &'static str,
        cause: ParseApiError,
    },
    #[error("run image label {PATH_LABEL}: {0}")]
    BadAdvertisedPath(Box<ContractError>),
}

/// Checks a run-image launcher path against the contract.
pub fn validate_path(path: &str) -> Result<(), ContractError> {
    let normalised = path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && path[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if !normalised {
        return Err(ContractError::BadPath(path.to_string()));
    }
    for dir in RESERVED_DIRS {
        if path == dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/')) {
            return Err(ContractError::ReservedPath {
                path: path.to_string(),
                dir,
            });
        }
    }
    Ok(())
}

/// A launcher as a run image advertises it through its labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvertisedLauncher {
    pub path: String,
    pub version: String,
    #[serde(rename = "platform-apis")]
    pub platform_apis: ApiList,
    #[serde(rename = "buildpack-apis")]
    pub buildpack_apis: ApiList,
}

impl AdvertisedLauncher {
    /// Reads the contract labels; `Ok(None)` when the image advertises no launcher at all.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Result<Option<Self>, ContractError> {
        let Some(path) = labels.get(PATH_LABEL) else {
            return Ok(None);
        };
        validate_path(path).map_err(|e| ContractError::BadAdvertisedPath(Box::new(e)))?;
        let get = |label: &'static str| labels.get(label).ok_or(ContractError::MissingLabel(label));
        let apis = |label: &'static str| {
            let list = ApiList::parse_label(get(label)?)
                .map_err(|cause| ContractError::BadApis { label, cause })?;
            if list.is_empty() {
                return Err(ContractError::MissingLabel(label));
            }
            Ok(list)
        };
        Ok(Some(AdvertisedLauncher {
            path: path.clone(),
            version: get(VERSION_LABEL)?.clone(),
            platform_apis: apis(PLATFORM_APIS_LABEL)?,
            buildpack_apis: apis(BUILDPACK_APIS_LABEL)?,
        }))
    }

    /// The contract labels (without [`LAYER_LABEL`], which only `stamp` knows).
    pub fn to_labels(&self) -> [(&'static str, String); 4] {
        [
            (PATH_LABEL, self.path.clone()),
            (PLATFORM_APIS_LABEL, self.platform_apis.to_label()),
            (BUILDPACK_APIS_LABEL, self.buildpack_apis.to_label()),
            (VERSION_LABEL, self.version.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_cnb_lifecycle_are_refused() {
        assert!(validate_path(DEFAULT_PATH).is_ok());
        assert!(validate_path("/cnb/lifecycle-extra/launcher").is_ok());
        for bad in [
            "/cnb/lifecycle/launcher",
            "/cnb/lifecycle",
            "/cnb/process/web",
        ] {
            let e = validate_path(bad).unwrap_err();
            assert!(
                matches!(e, ContractError::ReservedPath { .. }),
                "{bad}: {e}"
            );
        }
        for bad in [
            "launcher",
            "/",
            "/usr//bin/x",
            "/usr/bin/",
            "/usr/../cnb/lifecycle/launcher",
        ] {
            assert!(
                matches!(validate_path(bad), Err(ContractError::BadPath(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn labels_round_trip_and_partial_sets_are_errors() {
        let adv = AdvertisedLauncher {
            path: DEFAULT_PATH.into(),
            version: "1.2.3".into(),
            platform_apis: ApiList::parse_label("0.7,0.15").unwrap(),
            buildpack_apis: ApiList::parse_label("0.7,0.12").unwrap(),
        };
        let mut labels: BTreeMap<String, String> = adv
            .to_labels()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(AdvertisedLauncher::from_labels(&labels).unwrap(), Some(adv));
        labels.remove(BUILDPACK_APIS_LABEL);
        let e = AdvertisedLauncher::from_labels(&labels).unwrap_err();
        assert!(e.to_string().contains(BUILDPACK_APIS_LABEL), "{e}");
        assert_eq!(
            AdvertisedLauncher::from_labels(&BTreeMap::new()).unwrap(),
            None
        );
    }
}
