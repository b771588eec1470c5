//! Facts about an app image the launcher operations need: its lifecycle metadata, where its
//! launcher layer sits, and the APIs its launcher must support.

use std::collections::BTreeMap;

use relaunch_oci::layer::read::read_file;
use relaunch_oci::{Digest, Image};
use serde_json::Value;

use crate::check::AppApis;
use crate::error::{Error, Result};
use crate::metadata::{
    BuildMetadata, BuildpackApi, LaunchMetadata, LauncherMode, LifecycleMetadata,
    BUILD_METADATA_LABEL, LIFECYCLE_METADATA_LABEL,
};

pub const PLATFORM_API_ENV: &str = "CNB_PLATFORM_API";
pub const LAYERS_DIR_ENV: &str = "CNB_LAYERS_DIR";
pub const DEFAULT_LAYERS_DIR: &str = "/layers";
/// metadata.toml is a few KiB; anything near this is not a launcher config.
const METADATA_TOML_LIMIT: u64 = 1 << 20;

/// Value of `name` in the image config's `Env`.
pub fn env(image: &Image, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    image
        .container_config()?
        .get("Env")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|e| e.strip_prefix(&prefix).map(String::from))
}

/// Labels with string values (the contract's labels are all strings).
pub fn string_labels(image: &Image) -> BTreeMap<String, String> {
    image
        .labels()
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
        .collect()
}

/// The app image's lifecycle metadata and the index of its launcher layer.
pub fn lifecycle_metadata(app: &Image) -> Result<(LifecycleMetadata, usize)> {
    let md = LifecycleMetadata::from_label(app.label(LIFECYCLE_METADATA_LABEL).as_deref())?;
    let index = layer_index(app, &md.launcher.sha).ok_or_else(|| Error::LauncherLayerNotFound {
        sha: md.launcher.sha.clone(),
    })?;
    Ok((md, index))
}

fn layer_index(image: &Image, sha: &str) -> Option<usize> {
    let digest = Digest::parse(sha).ok()?;
    image.layers().iter().position(|l| l.diff_id == digest)
}

/// The APIs an app's launcher must support without reading any layer when the build
/// metadata's symlink-mode `launcher` entry records the Buildpack APIs (relaunch writes
/// them); otherwise [`app_apis`]. Recorded APIs name no buildpack, so commands that report
/// per buildpack use [`app_apis`]. The Platform API always comes from the image Env.
pub fn recorded_or_read_app_apis(app: &Image, md: &LifecycleMetadata) -> Result<AppApis> {
    // A label that does not parse is left to the commands that rewrite it to report.
    let recorded = BuildMetadata::from_label(app.label(BUILD_METADATA_LABEL).as_deref())
        .ok()
        .and_then(|build| build.recorded_buildpack_apis());
    let Some(recorded) = recorded else {
        return app_apis(app, md);
    };
    Ok(AppApis {
        platform: platform_api(app)?,
        buildpacks: recorded
            .into_iter()
            .map(|api| BuildpackApi {
                id: String::new(),
                api,
            })
            .collect(),
        launcher_target: launcher_target(md),
    })
}

/// The app's Platform API (image Env, L-5) and every buildpack API from
/// `<layers>/config/metadata.toml` (L-6). Only the config layer is read.
pub fn app_apis(app: &Image, md: &LifecycleMetadata) -> Result<AppApis> {
    let platform = platform_api(app)?;
    let index = layer_index(app, &md.config.sha).ok_or_else(|| Error::ConfigLayerNotFound {
        sha: md.config.sha.clone(),
    })?;
    let layers_dir = env(app, LAYERS_DIR_ENV).unwrap_or_else(|| DEFAULT_LAYERS_DIR.into());
    let path = format!("{}/config/metadata.toml", layers_dir.trim_end_matches('/'));
    let mut only_config = Image::new(app.flavor(), serde_json::json!({}))?;
    only_config.set_layers(vec![app.layers()[index].clone()])?;
    let (_, bytes) = read_file(&only_config, &path, METADATA_TOML_LIMIT).map_err(|source| {
        Error::MissingFile {
            image: format!("config layer {}", md.config.sha),
            path: path.clone(),
            cause: Box::new(source),
        }
    })?;
    Ok(AppApis {
        platform,
        buildpacks: LaunchMetadata::parse(&bytes)?.buildpacks,
        launcher_target: launcher_target(md),
    })
}

/// The app's Platform API from `CNB_PLATFORM_API` in the image Env (L-5).
fn platform_api(app: &Image) -> Result<crate::apis::Api> {
    let value = env(app, PLATFORM_API_ENV).ok_or(Error::NoPlatformApi(PLATFORM_API_ENV))?;
    value
        .trim()
        .parse()
        .map_err(|e: crate::apis::ParseApiError| Error::BadPlatformApi {
            var: PLATFORM_API_ENV,
            value: value.clone(),
            reason: e.to_string(),
        })
}

fn launcher_target(md: &LifecycleMetadata) -> Option<String> {
    (md.launcher.mode() == LauncherMode::Symlink)
        .then(|| md.launcher.target.clone())
        .flatten()
}
