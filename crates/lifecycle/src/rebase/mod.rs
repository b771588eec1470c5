//! Rebase as a pure function over the image model: the reference rebaser's base swap and
//! checks (spec-digest §3, reference §4), plus relaunch's launcher duties in the same
//! write — validating a symlink-mode app against the new run image's launcher,
//! switching to symlink mode (`--decouple`), and swapping the launcher layer in place for
//! a new binary (`--launcher-image`).

mod target;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use relaunch_oci::mutate::{self, ANNOTATION_BASE_DIGEST, ANNOTATION_BASE_NAME};
use relaunch_oci::{Digest, Image, Layer};
use serde_json::{json, Value};

use crate::apis::Api;
use crate::app::{env, recorded_or_read_app_apis, string_labels, PLATFORM_API_ENV};
use crate::bundle::{LauncherBundle, BUNDLE_LABEL};
use crate::check::{check_bundle, CompatReport};
use crate::contract::{
    AdvertisedLauncher, BUILDPACK_APIS_LABEL, LAYER_LABEL, PATH_LABEL, PLATFORM_APIS_LABEL,
    VERSION_LABEL,
};
use crate::decouple::{binary_layer, decouple_onto, recouple_with_layer, Switched};
use crate::error::Error;
use crate::launcher::ResolvedLauncher;
use crate::metadata::{LauncherMode, LifecycleMetadata, MetadataError, LIFECYCLE_METADATA_LABEL};

pub use target::{same_image_name, MIXINS_LABEL, REBASABLE_LABEL, STACK_ID_LABEL};

/// The newest Platform API the rebaser implements; also its default.
pub const LATEST_PLATFORM_API: Api = Api::new(0, 15);
/// The oldest Platform API the rebaser accepts (as lifecycle v0.21).
pub const OLDEST_PLATFORM_API: Api = Api::new(0, 7);

/// Label prefixes the reference re-syncs from the new run image (`base` from Platform 0.12).
const STACK_PREFIX: &str = "io.buildpacks.stack.";
const BASE_PREFIX: &str = "io.buildpacks.base.";
/// The run-image launcher contract labels an app inherits at export: re-synced too, so
/// they describe the run image the app is on now (G-26).
const LAUNCHER_LABELS: [&str; 6] = [
    PATH_LABEL,
    PLATFORM_APIS_LABEL,
    BUILDPACK_APIS_LABEL,
    VERSION_LABEL,
    LAYER_LABEL,
    BUNDLE_LABEL,
];

/// The run image to rebase onto.
#[derive(Debug, Clone, Copy)]
pub struct NewBase<'a> {
    pub image: &'a Image,
    /// The name the platform gave (`-run-image`, or resolved from `runImage`): checked
    /// against `runImage.image`/`mirrors`, recorded there when forced.
    pub name: &'a str,
    /// Identifies exactly this image (a digest reference): `runImage.reference`.
    pub reference: &'a str,
}

/// A new launcher binary for `--launcher-image`, with the exporter's launcher layer for it
/// built once; cheap to clone. After the first upload a caller points `layer.source` at the
/// repository it went to, so every later write mounts it instead of uploading again.
#[derive(Debug, Clone)]
pub struct LauncherSwap {
    pub launcher: Arc<ResolvedLauncher>,
    pub layer: Layer,
}

impl LauncherSwap {
    pub fn new(launcher: ResolvedLauncher) -> crate::Result<Self> {
        let layer = binary_layer(&launcher.binary.bytes)?;
        Ok(LauncherSwap {
            launcher: Arc::new(launcher),
            layer,
        })
    }
}

#[derive(Debug, Clone)]
pub struct RebaseOptions<'a> {
    /// The rebaser's own Platform API (the platform's `CNB_PLATFORM_API`).
    pub platform_api: Api,
    /// Override the safety checks the reference lets `-force` override, and the launcher
    /// API checks (each becomes a warning).
    pub force: bool,
    /// Also switch a binary-mode app to a symlink to the new run image's launcher.
    pub decouple: bool,
    pub launcher: Option<&'a LauncherSwap>,
    /// When not empty: the diffIDs of the launcher layers an app may have (`launcher.sha`).
    pub launcher_must_match: &'a [Digest],
}

impl Default for RebaseOptions<'_> {
    fn default() -> Self {
        RebaseOptions {
            platform_api: LATEST_PLATFORM_API,
            force: false,
            decouple: false,
            launcher: None,
            launcher_must_match: &[],
        }
    }
}

/// What [`rebase`] did.
#[derive(Debug, Clone)]
pub struct Rebased {
    pub image: Image,
    /// Already on this run image and launcher: byte-identical, nothing to push.
    pub unchanged: bool,
    /// Checks overridden by `force`, in the reference's words.
    pub warnings: Vec<String>,
    /// The app's APIs against the launcher that will run it, when that was checked.
    pub launcher_check: Option<CompatReport>,
    /// `launcher.sha` before and after (empty when the metadata has none).
    pub previous_launcher: String,
    pub launcher: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RebaseError {
    #[error("get image metadata: {0}")]
    Metadata(#[from] MetadataError),
    #[error("app image is not marked as rebasable; please provide -force to override")]
    NotRebasable,
    #[error("unable to satisfy target os/arch constraints; new run image: {new}, old run image: {old}; please provide -force to override")]
    TargetMismatch { new: String, old: String },
    #[error("stack not defined on app image")]
    NoStackOnApp,
    #[error("stack not defined on new base image")]
    NoStackOnBase,
    #[error("incompatible stack: '{base}' is not compatible with '{app}'")]
    IncompatibleStack { base: String, app: String },
    #[error(
        "get {which} image mixins: failed to unmarshal context of label '{MIXINS_LABEL}': {reason}"
    )]
    BadMixins { which: &'static str, reason: String },
    #[error("missing required mixin(s): {0}")]
    MissingMixins(String),
    #[error("rebase app image: new base image '{name}' not found in existing run image metadata: {existing}; please provide -force to override")]
    NameNotRecorded { name: String, existing: String },
    #[error("rebase app image: could not find base layer in image (runImage.topLayer '{0}')")]
    BaseLayerNotFound(String),
    #[error("new run image '{0}' has no layers")]
    EmptyBase(String),
    #[error("{problem}; please provide -force to override")]
    LauncherIncompatible { problem: String },
    #[error("run image '{name}' advertises no launcher (label {PATH_LABEL}), but the app's /cnb/lifecycle/launcher is a symlink to {target}; please provide -force to override")]
    NoRunImageLauncher { name: String, target: String },
    #[error("launcher layer '{0}' (launcher.sha) is not in the --launcher-must-match allow-list")]
    LauncherNotAllowed(String),
    #[error("the app's /cnb/lifecycle/launcher is a symlink to its run image's launcher at {0}; --launcher-image cannot replace it: rebase the app onto a run image that carries the new launcher instead")]
    SymlinkLauncherSwap(String),
    #[error("--decouple needs the run image to rebase onto (it provides the launcher)")]
    DecoupleWithoutRunImage,
    #[error(transparent)]
    Lifecycle(#[from] Error),
}

impl RebaseError {
    /// A safety check said no (the operation is unsafe, not broken): fleet outcome
    /// `refused`, as opposed to `failed`.
    pub fn is_refusal(&self) -> bool {
        use RebaseError::*;
        matches!(
            self,
            NotRebasable
                | TargetMismatch { .. }
                | NoStackOnApp
                | NoStackOnBase
                | IncompatibleStack { .. }
                | MissingMixins(_)
                | NameNotRecorded { .. }
                | LauncherIncompatible { .. }
                | NoRunImageLauncher { .. }
                | LauncherNotAllowed(_)
                | SymlinkLauncherSwap(_)
                | Lifecycle(Error::NoAdvertisedLauncher(_))
        )
    }
}

impl From<relaunch_oci::Error> for RebaseError {
    fn from(e: relaunch_oci::Error) -> Self {
        RebaseError::Lifecycle(e.into())
    }
}

/// Rebases `app` onto `base` (when given) and applies the launcher options, validating
/// first: an error means nothing should be written.
pub fn rebase(
    app: Image,
    base: Option<NewBase<'_>>,
    opts: &RebaseOptions<'_>,
) -> Result<Rebased, RebaseError> {
    let original = app.digest();
    let mut warnings = Vec::new();
    let mut image = app;
    let previous_launcher = metadata(&image)?.launcher.sha;
    check_allow_list(&previous_launcher, opts)?;
    if let Some(base) = base {
        swap_base(&mut image, base, opts, &mut warnings)?;
    }
    let md = metadata(&image)?;
    let (image, launcher_check) = if opts.decouple {
        let base = base.ok_or(RebaseError::DecoupleWithoutRunImage)?;
        let advertised = advertised(base)?.ok_or_else(|| {
            RebaseError::Lifecycle(Error::NoAdvertisedLauncher(base.name.to_string()))
        })?;
        let bundle = bundle_of(base, &advertised)?;
        let switched =
            decouple_onto(image, &advertised, &bundle, None, opts.force).map_err(launcher_error)?;
        forced(&switched, &mut warnings);
        (switched.image, Some(switched.report))
    } else if let Some(swap) = opts.launcher {
        if md.launcher.mode() == LauncherMode::Symlink {
            let target = md.launcher.target.clone().unwrap_or_default();
            return Err(RebaseError::SymlinkLauncherSwap(target));
        }
        let switched =
            recouple_with_layer(image, &swap.launcher, swap.layer.clone(), None, opts.force)
                .map_err(launcher_error)?;
        forced(&switched, &mut warnings);
        (switched.image, Some(switched.report))
    } else {
        let report = match (base, md.launcher.mode()) {
            (Some(base), LauncherMode::Symlink) => {
                validate_run_image_launcher(&image, &md, base, opts.force, &mut warnings)?
            }
            _ => None,
        };
        (image, report)
    };
    let launcher = metadata(&image)?.launcher.sha;
    Ok(Rebased {
        unchanged: image.digest() == original,
        image,
        warnings,
        launcher_check,
        previous_launcher,
        launcher,
    })
}

/// `io.buildpacks.lifecycle.metadata`, without requiring `launcher.sha`.
fn metadata(image: &Image) -> Result<LifecycleMetadata, MetadataError> {
    LifecycleMetadata::parse_label(image.label(LIFECYCLE_METADATA_LABEL).as_deref())
}

/// `--launcher-must-match`: the app's launcher layer must be listed (or already be the
/// one `--launcher-image` puts in, so a rerun is `unchanged`, not refused).
fn check_allow_list(sha: &str, opts: &RebaseOptions<'_>) -> Result<(), RebaseError> {
    let allowed = opts.launcher_must_match.is_empty()
        || opts.launcher_must_match.iter().any(|d| d.as_str() == sha)
        || opts
            .launcher
            .is_some_and(|s| s.layer.diff_id.as_str() == sha);
    if allowed {
        Ok(())
    } else {
        Err(RebaseError::LauncherNotAllowed(sha.to_string()))
    }
}

fn launcher_error(e: Error) -> RebaseError {
    match e {
        Error::Incompatible(problem) => RebaseError::LauncherIncompatible { problem },
        other => other.into(),
    }
}

fn forced(switched: &Switched, warnings: &mut Vec<String>) {
    warnings.extend(switched.report.problem());
}

fn advertised(base: NewBase<'_>) -> Result<Option<AdvertisedLauncher>, RebaseError> {
    Ok(AdvertisedLauncher::from_labels(&string_labels(base.image)).map_err(Error::from)?)
}

/// The launchers of the new run image's bundle (just `advertised` without delegates): the
/// rebaser decides per launcher, as the meta launcher will at start.
fn bundle_of(
    base: NewBase<'_>,
    advertised: &AdvertisedLauncher,
) -> Result<LauncherBundle, RebaseError> {
    Ok(LauncherBundle::from_labels(advertised, &string_labels(base.image)).map_err(Error::from)?)
}

/// A symlink-mode app runs the new run image's launcher: it must be advertised at the
/// symlink's target and support the app's Platform API and every buildpack API.
fn validate_run_image_launcher(
    app: &Image,
    md: &LifecycleMetadata,
    base: NewBase<'_>,
    force: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<CompatReport>, RebaseError> {
    let Some(advertised) = advertised(base)? else {
        let e = RebaseError::NoRunImageLauncher {
            name: base.name.to_string(),
            target: md.launcher.target.clone().unwrap_or_default(),
        };
        if !force {
            return Err(e);
        }
        warnings.push(
            e.to_string()
                .replace("; please provide -force to override", ""),
        );
        return Ok(None);
    };
    let bundle = bundle_of(base, &advertised)?;
    let report = check_bundle(&recorded_or_read_app_apis(app, md)?, &advertised, &bundle);
    if let Some(problem) = report.problem() {
        if !force {
            return Err(RebaseError::LauncherIncompatible { problem });
        }
        warnings.push(problem);
    }
    Ok(Some(report))
}

/// The reference rebaser's part: checks, layer swap, `runImage` and label updates.
fn swap_base(
    image: &mut Image,
    base: NewBase<'_>,
    opts: &RebaseOptions<'_>,
    warnings: &mut Vec<String>,
) -> Result<(), RebaseError> {
    let app_api = env(image, PLATFORM_API_ENV).unwrap_or_default();
    let legacy = app_api.is_empty() || parse_app_api(&app_api)? < Api::new(0, 12);
    if legacy {
        target::validate_stack(image, base.image)?;
    } else {
        target::validate_target(image, base.image, opts.force, warnings)?;
    }
    let mut md = metadata(image)?;
    let original_md = md.clone();
    let top = md.run_image.top_layer.clone();
    let old_top = Digest::parse(&top).map_err(|_| RebaseError::BaseLayerNotFound(top.clone()))?;
    let new_top = base
        .image
        .layers()
        .last()
        .ok_or_else(|| RebaseError::EmptyBase(base.name.to_string()))?
        .diff_id
        .clone();
    let own: Vec<Layer> = image.layers().to_vec();
    mutate::rebase(image, &old_top, base.image).map_err(|e| match e {
        relaunch_oci::Error::NotFound { .. } => RebaseError::BaseLayerNotFound(top.clone()),
        other => other.into(),
    })?;
    // A base blob the app already has is read from (and known in) the app's repository.
    let layers = image
        .layers()
        .iter()
        .map(|l| {
            own.iter()
                .find(|o| o.descriptor == l.descriptor)
                .unwrap_or(l)
                .clone()
        })
        .collect();
    image.set_layers(layers)?;

    md.run_image.top_layer = new_top.to_string();
    md.run_image.reference = base.reference.to_string();
    if opts.platform_api >= Api::new(0, 12) {
        let stack = md.rest.get("stack");
        let recorded = target::recorded_names(&md.run_image, stack);
        if !recorded.iter().any(|n| same_image_name(n, base.name)) {
            let existing = target::existing_description(&md.run_image, stack);
            if !opts.force {
                return Err(RebaseError::NameNotRecorded {
                    name: base.name.to_string(),
                    existing,
                });
            }
            warnings.push(format!(
                "rebase app image: new base image '{}' not found in existing run image metadata: {existing}",
                base.name
            ));
            md.run_image.image = Some(base.name.to_string());
            md.run_image.mirrors = None;
            md.rest
                .insert("stack".into(), json!({"runImage": {"image": base.name}}));
        }
    }
    if md != original_md {
        let label = md.to_label();
        mutate::set_labels(image, [(LIFECYCLE_METADATA_LABEL, Some(label.as_str()))])?;
    }
    sync_labels(image, base.image, opts.platform_api)?;
    // Base-image annotations, where the app has them, follow the base.
    if image.annotations().contains_key(ANNOTATION_BASE_NAME) {
        let digest = base.image.digest().to_string();
        mutate::set_annotations(
            image,
            [
                (ANNOTATION_BASE_NAME, Some(base.name)),
                (ANNOTATION_BASE_DIGEST, Some(digest.as_str())),
            ],
        );
    }
    Ok(())
}

fn parse_app_api(value: &str) -> Result<Api, RebaseError> {
    value
        .trim()
        .parse()
        .map_err(|e: crate::apis::ParseApiError| {
            Error::BadPlatformApi {
                var: PLATFORM_API_ENV,
                value: value.to_string(),
                reason: e.to_string(),
            }
            .into()
        })
}

/// Removes the app's `io.buildpacks.stack.*` (and from Platform 0.12 `io.buildpacks.base.*`)
/// labels and the launcher contract labels, then copies the new base's.
fn sync_labels(image: &mut Image, base: &Image, platform_api: Api) -> Result<(), RebaseError> {
    let synced = |key: &str| {
        key.starts_with(STACK_PREFIX)
            || (platform_api >= Api::new(0, 12) && key.starts_with(BASE_PREFIX))
            || LAUNCHER_LABELS.contains(&key)
    };
    let (ours, theirs) = (image.labels(), base.labels());
    // Only what differs is edited, so labels that already match keep their place.
    let mut edits: Vec<(String, Option<String>)> = ours
        .keys()
        .filter(|k| synced(k) && !theirs.contains_key(*k))
        .map(|k| (k.clone(), None))
        .collect();
    edits.extend(
        theirs
            .iter()
            .filter(|(k, v)| synced(k) && ours.get(*k) != Some(*v))
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), Some(v))
            }),
    );
    mutate::set_labels(image, edits.iter().map(|(k, v)| (k.as_str(), v.as_deref())))?;
    Ok(())
}
