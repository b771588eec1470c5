//! The crate's error type: every variant names the image, layer, label or file at fault.

use crate::contract::ContractError;
use crate::descriptor::LauncherFileError;
use crate::launcher::ResolveError;
use crate::metadata::MetadataError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    Contract(#[from] ContractError),
    #[error(transparent)]
    LauncherFile(#[from] LauncherFileError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    /// Boxed: the engine's error is large and this type travels in every `Result`.
    #[error(transparent)]
    Oci(Box<relaunch_oci::Error>),
    #[error("launcher layer {sha} (launcher.sha in io.buildpacks.lifecycle.metadata) is not among the app image's layers")]
    LauncherLayerNotFound { sha: String },
    #[error("config layer {sha} (config.sha in io.buildpacks.lifecycle.metadata) is not among the app image's layers")]
    ConfigLayerNotFound { sha: String },
    #[error("app image has no {0} in its config Env; cannot tell which Platform API the launcher must support")]
    NoPlatformApi(&'static str),
    #[error("app image Env {var}={value}: {reason}")]
    BadPlatformApi {
        var: &'static str,
        value: String,
        reason: String,
    },
    #[error("run image {0} advertises no launcher: it lacks the label {label} (stamp it with `relaunch run-image add-launcher`)", label = crate::contract::PATH_LABEL)]
    NoAdvertisedLauncher(String),
    #[error("{image}: {cause}")]
    RunImageLabels { image: String, cause: ContractError },
    #[error(
        "the app's io.buildpacks.lifecycle.metadata has no runImage.reference; pass --run-image"
    )]
    NoRunImageReference,
    /// Not "gone": the inherited labels, which may be stale, are no stand-in.
    #[error("cannot read run image {reference} (runImage.reference): {cause}")]
    RunImageUnreadable {
        reference: String,
        cause: Box<relaunch_oci::Error>,
    },
    #[error("the app is no longer based on runImage.reference {0} (its base layers differ, e.g. after a base swap that did not update the label); pass --run-image with the run image it is based on now")]
    NotBasedOnRunImage(String),
    #[error("{0}; pass --force to do it anyway")]
    Incompatible(String),
    #[error("image {image} has no file {path}: {cause}")]
    MissingFile {
        image: String,
        path: String,
        cause: Box<relaunch_oci::Error>,
    },
}

impl From<relaunch_oci::Error> for Error {
    fn from(e: relaunch_oci::Error) -> Self {
        Error::Oci(Box::new(e))
    }
}
