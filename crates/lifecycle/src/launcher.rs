//! Which APIs and version a launcher binary is advertised with: its embedded
//! self-description, else a lifecycle image's labels, narrowed or supplied by flags.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::apis::ApiList;
use crate::contract::AdvertisedLauncher;
use crate::descriptor::{LauncherBinary, SECTION};

/// Label of lifecycle images listing their APIs (RFC 0049).
pub const LIFECYCLE_APIS_LABEL: &str = "io.buildpacks.lifecycle.apis";
pub const LIFECYCLE_VERSION_LABEL: &str = "io.buildpacks.lifecycle.version";

/// Explicit `--platform-apis` / `--buildpack-apis` / `--launcher-version`.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub platform_apis: Option<ApiList>,
    pub buildpack_apis: Option<ApiList>,
    pub version: Option<String>,
}

/// A launcher binary together with what will be advertised about it.
#[derive(Debug, Clone)]
pub struct ResolvedLauncher {
    pub binary: LauncherBinary,
    pub version: String,
    pub platform_apis: ApiList,
    pub buildpack_apis: ApiList,
}

impl ResolvedLauncher {
    /// How this launcher is advertised when it sits at `path`.
    pub fn advertised_at(&self, path: &str) -> AdvertisedLauncher {
        AdvertisedLauncher {
            path: path.to_string(),
            version: self.version.clone(),
            platform_apis: self.platform_apis.clone(),
            buildpack_apis: self.buildpack_apis.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("launcher '{origin}' has no {SECTION} self-description and no {LIFECYCLE_APIS_LABEL} label; pass {missing}")]
    Unknown { origin: String, missing: String },
    #[error("label {LIFECYCLE_APIS_LABEL} of '{origin}' is malformed: {reason}")]
    BadLifecycleLabel { origin: String, reason: String },
    #[error("{flag} lists {extra}, which launcher '{origin}' does not support (it supports {supported})")]
    NotASubset {
        flag: &'static str,
        extra: ApiList,
        origin: String,
        supported: ApiList,
    },
    #[error("--launcher-version {given} contradicts the version {actual} that launcher '{origin}' declares")]
    VersionMismatch {
        given: String,
        actual: String,
        origin: String,
    },
    #[error("{flag} is empty")]
    EmptyList { flag: &'static str },
}

#[derive(Deserialize)]
struct LifecycleApis {
    buildpack: ApiSet,
    platform: ApiSet,
}

#[derive(Deserialize)]
struct ApiSet {
    #[serde(default)]
    deprecated: Vec<String>,
    #[serde(default)]
    supported: Vec<String>,
}

impl ApiSet {
    /// Deprecated APIs still run (with a warning), so a launcher supports both sets.
    fn all(&self) -> Result<ApiList, String> {
        let apis: Result<Vec<_>, _> = self
            .supported
            .iter()
            .chain(&self.deprecated)
            .map(|s| s.parse())
            .collect();
        apis.map(ApiList::new).map_err(|e| e.to_string())
    }
}

/// Parses `io.buildpacks.lifecycle.apis` into (platform, buildpack) lists.
pub(crate) fn parse_lifecycle_apis(value: &str) -> Result<(ApiList, ApiList), String> {
    let apis: LifecycleApis = serde_json::from_str(value).map_err(|e| e.to_string())?;
    Ok((apis.platform.all()?, apis.buildpack.all()?))
}

/// Decides what to advertise. `image_labels` are the labels of the image the binary was
/// taken from (a lifecycle image), if any.
pub fn resolve(
    binary: LauncherBinary,
    image_labels: Option<&BTreeMap<String, String>>,
    overrides: &Overrides,
) -> Result<ResolvedLauncher, ResolveError> {
    let origin = binary.origin.clone();
    let label_version = image_labels
        .and_then(|l| l.get(LIFECYCLE_VERSION_LABEL))
        .cloned();
    let declared = match (&binary.descriptor, image_labels) {
        (Some(d), _) => Some((
            d.platform_apis.clone(),
            d.buildpack_apis.clone(),
            Some(d.version.clone()),
        )),
        (None, Some(labels)) => match labels.get(LIFECYCLE_APIS_LABEL) {
            Some(v) => {
                let (p, b) =
                    parse_lifecycle_apis(v).map_err(|reason| ResolveError::BadLifecycleLabel {
                        origin: origin.clone(),
                        reason,
                    })?;
                Some((p, b, label_version.clone()))
            }
            None => None,
        },
        (None, None) => None,
    };
    for (flag, list) in [
        ("--platform-apis", &overrides.platform_apis),
        ("--buildpack-apis", &overrides.buildpack_apis),
    ] {
        if list.as_ref().is_some_and(ApiList::is_empty) {
            return Err(ResolveError::EmptyList { flag });
        }
    }
    let (platform_apis, buildpack_apis, version) = match declared {
        Some((p, b, v)) => {
            let narrow = |flag, given: &Option<ApiList>, supported: ApiList| match given {
                None => Ok(supported),
                Some(g) => {
                    let extra = g.not_supported_by(&supported);
                    if extra.is_empty() {
                        Ok(g.clone())
                    } else {
                        Err(ResolveError::NotASubset {
                            flag,
                            extra,
                            origin: origin.clone(),
                            supported,
                        })
                    }
                }
            };
            let version = match (v, &overrides.version) {
                (Some(actual), Some(given)) if &actual != given => {
                    return Err(ResolveError::VersionMismatch {
                        given: given.clone(),
                        actual,
                        origin,
                    })
                }
                (Some(actual), _) => Some(actual),
                (None, given) => given.clone(),
            };
            (
                narrow("--platform-apis", &overrides.platform_apis, p)?,
                narrow("--buildpack-apis", &overrides.buildpack_apis, b)?,
                version,
            )
        }
        None => {
            let version = overrides.version.clone().or(label_version);
            let missing: Vec<&str> = [
                ("--platform-apis", overrides.platform_apis.is_none()),
                ("--buildpack-apis", overrides.buildpack_apis.is_none()),
                ("--launcher-version", version.is_none()),
            ]
            .into_iter()
            .filter_map(|(f, m)| m.then_some(f))
            .collect();
            if !missing.is_empty() {
                return Err(ResolveError::Unknown {
                    origin,
                    missing: missing.join(", "),
                });
            }
            (
                overrides.platform_apis.clone().unwrap_or_default(),
                overrides.buildpack_apis.clone().unwrap_or_default(),
                version,
            )
        }
    };
    let version = version.ok_or_else(|| ResolveError::Unknown {
        origin: origin.clone(),
        missing: "--launcher-version".into(),
    })?;
    Ok(ResolvedLauncher {
        binary,
        version,
        platform_apis,
        buildpack_apis,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::Descriptor;

    fn binary(descriptor: Option<Descriptor>) -> LauncherBinary {
        LauncherBinary {
            origin: "test-launcher".into(),
            bytes: vec![],
            descriptor,
        }
    }

    fn described() -> Descriptor {
        Descriptor {
            name: "relaunch-launcher".into(),
            version: "0.3.0".into(),
            platform_apis: "0.7,0.8,0.9,0.10".parse().unwrap(),
            buildpack_apis: "0.7,0.12".parse().unwrap(),
        }
    }

    #[test]
    fn self_description_wins_and_flags_may_only_narrow_it() {
        let r = resolve(binary(Some(described())), None, &Overrides::default()).unwrap();
        assert_eq!(r.version, "0.3.0");
        assert_eq!(r.platform_apis.to_label(), "0.7,0.8,0.9,0.10");

        let narrow = Overrides {
            platform_apis: Some("0.9,0.10".parse().unwrap()),
            ..Default::default()
        };
        let r = resolve(binary(Some(described())), None, &narrow).unwrap();
        assert_eq!(r.platform_apis.to_label(), "0.9,0.10");

        let widen = Overrides {
            platform_apis: Some("0.10,0.11".parse().unwrap()),
            ..Default::default()
        };
        let e = resolve(binary(Some(described())), None, &widen).unwrap_err();
        assert!(e.to_string().contains("lists 0.11"), "{e}");
    }

    #[test]
    fn lifecycle_image_label_supplies_apis_for_a_go_launcher() {
        let labels = BTreeMap::from([
            (
                LIFECYCLE_APIS_LABEL.to_string(),
                r#"{"buildpack":{"deprecated":[],"supported":["0.7","0.12"]},"platform":{"deprecated":["0.7"],"supported":["0.8","0.15"]}}"#.to_string(),
            ),
            (LIFECYCLE_VERSION_LABEL.to_string(), "0.21.17".to_string()),
        ]);
        let r = resolve(binary(None), Some(&labels), &Overrides::default()).unwrap();
        assert_eq!(r.platform_apis.to_label(), "0.7,0.8,0.15");
        assert_eq!(r.buildpack_apis.to_label(), "0.7,0.12");
        assert_eq!(r.version, "0.21.17");
    }

    #[test]
    fn bare_binary_needs_every_flag() {
        let e = resolve(binary(None), None, &Overrides::default()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("--platform-apis, --buildpack-apis, --launcher-version"),
            "{msg}"
        );
        let all = Overrides {
            platform_apis: Some("0.10".parse().unwrap()),
            buildpack_apis: Some("0.10".parse().unwrap()),
            version: Some("custom".into()),
        };
        assert_eq!(resolve(binary(None), None, &all).unwrap().version, "custom");
    }
}
