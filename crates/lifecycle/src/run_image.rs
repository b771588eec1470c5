//! The run image an app is based on and the launcher it advertises: the policy `check`,
//! `decouple`, the rebaser and pre-flight checks share. The launcher labels an app
//! inherited at export stand in for its run image only when that image is definitely gone
//! (registry: manifest or repository unknown; layout: no such layout, tag or manifest).
//! Any other failure (auth, DNS, 5xx, corrupt data) is an error: labels that went stale on a
//! base swap (G-26) could otherwise call an app compatible on a transient error.

use std::collections::BTreeMap;

use relaunch_oci::read::load_fetched;
use relaunch_oci::{Digest, Image, ImageRef, Platform, Repo, Session};
use tracing::warn;

use crate::app::string_labels;
use crate::bundle::LauncherBundle;
use crate::contract::AdvertisedLauncher;
use crate::error::{Error, Result};
use crate::metadata::LifecycleMetadata;

/// A run image and the launcher it advertises.
#[derive(Debug, Clone, PartialEq)]
pub struct RunImage {
    /// Name used in messages and in `org.opencontainers.image.base.name`.
    pub name: String,
    pub digest: Option<Digest>,
    pub advertised: Option<AdvertisedLauncher>,
    /// The launchers at and beside the advertised path (just that one without delegates).
    pub bundle: Option<LauncherBundle>,
    /// Set when `advertised` comes from the labels the app inherited at export: why the
    /// run image itself could not be used (it is gone).
    pub inherited_because: Option<String>,
}

/// The launcher `labels` advertise and the bundle it belongs to.
fn advertised_bundle(
    labels: &BTreeMap<String, String>,
    image: &str,
) -> Result<(Option<AdvertisedLauncher>, Option<LauncherBundle>)> {
    let advertised =
        AdvertisedLauncher::from_labels(labels).map_err(|cause| Error::RunImageLabels {
            image: image.to_string(),
            cause,
        })?;
    let bundle = match &advertised {
        Some(a) => Some(LauncherBundle::from_labels(a, labels)?),
        None => None,
    };
    Ok((advertised, bundle))
}

impl RunImage {
    /// `image`, read under `name`.
    pub fn from_image(name: &str, image: &Image) -> Result<RunImage> {
        let (advertised, bundle) =
            advertised_bundle(&string_labels(image), &format!("run image {name}"))?;
        Ok(RunImage {
            name: name.to_string(),
            digest: Some(image.digest()),
            advertised,
            bundle,
            inherited_because: None,
        })
    }

    /// The advertised launcher and its bundle, as dispatch will see them.
    pub fn launcher_bundle(&self) -> Result<(&AdvertisedLauncher, &LauncherBundle)> {
        let launcher = self.launcher()?;
        let bundle = self
            .bundle
            .as_ref()
            .ok_or_else(|| Error::NoAdvertisedLauncher(self.name.clone()))?;
        Ok((launcher, bundle))
    }

    /// The advertised launcher, or an error saying the run image provides none.
    pub fn launcher(&self) -> Result<&AdvertisedLauncher> {
        self.advertised
            .as_ref()
            .ok_or_else(|| Error::NoAdvertisedLauncher(self.name.clone()))
    }

    /// `advertised` comes from the app's inherited labels, not from the run image.
    pub fn is_inherited(&self) -> bool {
        self.inherited_because.is_some()
    }
}

/// What reading an image found.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Lookup {
    Found(Image),
    /// The image is definitely not there; the error says what is missing.
    Gone(relaunch_oci::Error),
}

/// Loads the image `reference` names (from an index: `platform`, default linux/amd64),
/// telling a manifest that does not exist (`Lookup::Gone`) apart from every other failure
/// (`Err`). Only the manifest itself counts: a missing config blob under an existing
/// manifest is an error.
pub fn lookup_image(
    reference: &ImageRef,
    session: &Session,
    platform: Option<&Platform>,
) -> relaunch_oci::Result<Lookup> {
    match session.open(reference) {
        Ok(repo) => lookup_in(&repo, platform),
        Err(e) if e.is_not_found() => Ok(Lookup::Gone(e)),
        Err(e) => Err(e),
    }
}

/// [`lookup_image`] in a repository already open (e.g. on a registry client shared by a
/// fleet run).
pub fn lookup_in(repo: &Repo, platform: Option<&Platform>) -> relaunch_oci::Result<Lookup> {
    let raw = match repo.transport.get_manifest_verified(&repo.reference) {
        Ok(raw) => raw,
        Err(e) if e.is_not_found() => return Ok(Lookup::Gone(e)),
        Err(e) => return Err(e),
    };
    let artifact = load_fetched(&repo.transport, raw)?;
    Ok(Lookup::Found(repo.image_of(artifact, platform)?))
}

/// The run image `app` is based on now: the one `runImage.reference` names (from an index:
/// the app's platform), which must still be the base of the app. When that image is gone,
/// the launcher labels the app inherited from it at export stand in, with a warning (they
/// go stale on a base swap).
pub fn current_run_image(
    app: &Image,
    md: &LifecycleMetadata,
    session: &Session,
) -> Result<RunImage> {
    // From a run-image index, the app's own platform.
    let platform = Some(app.platform()).filter(|p| !p.architecture.is_empty());
    current_run_image_with(app, md, |r| lookup_image(r, session, platform.as_ref()))
}

/// [`current_run_image`] with the caller's way of reading the run image (`lookup`, e.g.
/// [`lookup_in`] over shared clients): the same policy whoever does the reading.
pub fn current_run_image_with(
    app: &Image,
    md: &LifecycleMetadata,
    lookup: impl FnOnce(&ImageRef) -> relaunch_oci::Result<Lookup>,
) -> Result<RunImage> {
    let reference = md.run_image.reference.as_str();
    if reference.is_empty() {
        return Err(Error::NoRunImageReference);
    }
    let name = md.run_image_name().unwrap_or(reference);
    let unreadable = |cause: relaunch_oci::Error| Error::RunImageUnreadable {
        reference: reference.to_string(),
        cause: Box::new(cause),
    };
    let parsed = ImageRef::parse(reference).map_err(unreadable)?;
    match lookup(&parsed).map_err(unreadable)? {
        Lookup::Found(run) => {
            let n = run.layers().len();
            if app.layers().len() < n || app.diff_ids()[..n] != run.diff_ids()[..] {
                return Err(Error::NotBasedOnRunImage(reference.to_string()));
            }
            RunImage::from_image(name, &run)
        }
        Lookup::Gone(why) => {
            let because = format!("run image {reference} (runImage.reference) is gone: {why}");
            warn!("{because}; using the launcher labels the app inherited from its run image at export (stale if its base was swapped since)");
            let (advertised, bundle) =
                advertised_bundle(&string_labels(app), "the app's inherited run-image labels")?;
            let digest = match parsed {
                ImageRef::Layout { digest, .. } => digest,
                ImageRef::Registry(r) => r.digest,
            };
            Ok(RunImage {
                name: name.to_string(),
                digest,
                advertised,
                bundle,
                inherited_because: Some(because),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::lifecycle_metadata;
    use crate::launcher::Overrides;
    use crate::testing::{launcher_described_as, stamped_run_and_app};

    /// (run image, app exported onto it with runImage.reference = `registry.io/run@<digest>`).
    fn world() -> (Image, Image) {
        let l = launcher_described_as(
            br#"{"name":"l","version":"1.0.0","platform-apis":["0.10"],"buildpack-apis":["0.10"]}"#,
            &Overrides::default(),
        );
        stamped_run_and_app(&l, "registry.io/run")
    }

    fn registry_error(status: u16) -> relaunch_oci::Error {
        relaunch_oci::Error::Registry {
            context: "GET manifest".into(),
            message: format!("unexpected HTTP {status}"),
            status: Some(status),
        }
    }

    #[test]
    fn a_readable_run_image_is_used() {
        let (run, app) = world();
        let (md, _) = lifecycle_metadata(&app).unwrap();
        let found = current_run_image_with(&app, &md, |_| Ok(Lookup::Found(run.clone()))).unwrap();
        assert!(!found.is_inherited());
        assert_eq!(found.digest, Some(run.digest()));
        assert_eq!(found.launcher().unwrap().path, "/usr/local/bin/launcher");
    }

    #[test]
    fn only_a_gone_run_image_falls_back_to_the_inherited_labels() {
        let (run, app) = world();
        let (md, _) = lifecycle_metadata(&app).unwrap();
        let gone = relaunch_oci::Error::NotFound {
            what: "manifest".into(),
            location: "registry.io/run".into(),
        };
        let inherited = current_run_image_with(&app, &md, |_| Ok(Lookup::Gone(gone))).unwrap();
        assert!(inherited
            .inherited_because
            .as_deref()
            .unwrap()
            .contains("is gone: manifest not found"));
        assert_eq!(inherited.digest, Some(run.digest()));
        assert_eq!(
            inherited.launcher().unwrap().path,
            "/usr/local/bin/launcher"
        );

        for status in [401, 500, 503] {
            let err =
                current_run_image_with(&app, &md, |_| Err(registry_error(status))).unwrap_err();
            assert!(matches!(err, Error::RunImageUnreadable { .. }), "{err}");
            assert!(err.to_string().contains(&format!("HTTP {status}")), "{err}");
        }
    }
}
