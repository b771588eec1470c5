//! Switching an app image's launcher layer between the exporter's binary and a symlink to
//! the run image's launcher, in place: same position, same history entry, so the image
//! keeps the structure the exporter gave it (P-5) and rebasers find it by `launcher.sha`.

use relaunch_oci::layer::{Entry, LayerBuilder};
use relaunch_oci::mutate::{self, LayerSel, ANNOTATION_BASE_DIGEST, ANNOTATION_BASE_NAME};
use relaunch_oci::{Digest, Image, Layer};
use tracing::warn;

use crate::app::{app_apis, lifecycle_metadata};
use crate::bundle::LauncherBundle;
use crate::check::{check_bundle, CompatReport};
use crate::contract::{validate_path, AdvertisedLauncher, APP_LAUNCHER_PATH};
use crate::error::{Error, Result};
use crate::launcher::ResolvedLauncher;
use crate::metadata::{
    BuildLauncher, BuildMetadata, LauncherMode, LauncherRecord, BUILD_METADATA_LABEL,
    LIFECYCLE_METADATA_LABEL,
};

/// The image an app is based on, for the OCI `org.opencontainers.image.base.*` annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    pub name: String,
    pub digest: Digest,
}

/// Result of `decouple` / `recouple`.
#[derive(Debug, Clone)]
pub struct Switched {
    pub image: Image,
    /// The app's APIs against the launcher that will run it.
    pub report: CompatReport,
    /// `launcher` record before the switch.
    pub previous: LauncherRecord,
    /// diffID of the launcher layer now in the image (the new `launcher.sha`).
    pub layer: Digest,
    /// Nothing to change: the caller writes nothing.
    pub unchanged: bool,
}

/// `/cnb`, `/cnb/lifecycle` and the symlink `/cnb/lifecycle/launcher → target`. Depends on
/// the target only, so every app decoupled onto the same path shares one blob.
pub fn symlink_layer(target: &str) -> Result<Layer> {
    launcher_layer(Entry::symlink(APP_LAUNCHER_PATH, target))
}

/// The exporter's launcher layer, byte for byte (reference §3.2).
pub fn binary_layer(bytes: &[u8]) -> Result<Layer> {
    launcher_layer(Entry::file(APP_LAUNCHER_PATH, 0o755, bytes.to_vec()))
}

/// `/cnb`, `/cnb/lifecycle` and `launcher`: the shape both modes of the layer share.
fn launcher_layer(launcher: Entry) -> Result<Layer> {
    Ok(LayerBuilder::new()
        .entry(Entry::dir("/cnb", 0o755))
        .entry(Entry::dir("/cnb/lifecycle", 0o755))
        .entry(launcher)
        .build()?)
}

/// Replaces the binary launcher layer by a symlink to `run_launcher.path`, after checking
/// that the run image's launcher supports the app's Platform and Buildpack APIs.
pub fn decouple(
    app: Image,
    run_launcher: &AdvertisedLauncher,
    base: Option<&BaseImage>,
    force: bool,
) -> Result<Switched> {
    decouple_onto(
        app,
        run_launcher,
        &LauncherBundle::single(run_launcher),
        base,
        force,
    )
}

/// [`decouple`] onto a run image whose launcher is a bundle: the check decides per launcher
/// of `bundle`, as the meta launcher will at start.
pub fn decouple_onto(
    app: Image,
    run_launcher: &AdvertisedLauncher,
    bundle: &LauncherBundle,
    base: Option<&BaseImage>,
    force: bool,
) -> Result<Switched> {
    validate_path(&run_launcher.path)?;
    let layer = symlink_layer(&run_launcher.path)?;
    switch(
        app,
        Target {
            layer,
            mode: LauncherMode::Symlink,
            target: Some(run_launcher.path.clone()),
            build_launcher: None,
            launcher: run_launcher.clone(),
            bundle: bundle.clone(),
        },
        base,
        force,
    )
}

/// Puts a launcher binary back into the app image (the reverse of [`decouple`]).
pub fn recouple(
    app: Image,
    launcher: &ResolvedLauncher,
    base: Option<&BaseImage>,
    force: bool,
) -> Result<Switched> {
    recouple_with_layer(
        app,
        launcher,
        binary_layer(&launcher.binary.bytes)?,
        base,
        force,
    )
}

/// [`recouple`] with the launcher's [`binary_layer`] already built, so a caller switching
/// many images builds (and uploads) it once.
pub fn recouple_with_layer(
    app: Image,
    launcher: &ResolvedLauncher,
    layer: Layer,
    base: Option<&BaseImage>,
    force: bool,
) -> Result<Switched> {
    launcher
        .binary
        .ensure_runs_on(&app.platform(), "the app image")?;
    switch(
        app,
        Target {
            layer,
            mode: LauncherMode::Binary,
            target: None,
            build_launcher: Some(
                BuildLauncher::Binary {
                    version: &launcher.version,
                }
                .to_value(),
            ),
            launcher: launcher.advertised_at(APP_LAUNCHER_PATH),
            bundle: LauncherBundle::single(&launcher.advertised_at(APP_LAUNCHER_PATH)),
        },
        base,
        force,
    )
}

struct Target {
    layer: Layer,
    mode: LauncherMode,
    target: Option<String>,
    /// `None`: the symlink-mode entry, recording the app's APIs.
    build_launcher: Option<serde_json::Value>,
    /// The launcher that will run the app after the switch.
    launcher: AdvertisedLauncher,
    /// With its delegates, if any.
    bundle: LauncherBundle,
}

fn switch(mut app: Image, t: Target, base: Option<&BaseImage>, force: bool) -> Result<Switched> {
    let (mut md, index) = lifecycle_metadata(&app)?;
    let mut apis = app_apis(&app, &md)?;
    // The switch re-points the launcher, so where it pointed before does not matter.
    apis.launcher_target = None;
    let report = check_bundle(&apis, &t.launcher, &t.bundle);
    if let Some(problem) = report.problem() {
        if !force {
            return Err(Error::Incompatible(problem));
        }
        warn!("--force: {problem}");
    }
    let previous = md.launcher.clone();
    let mut build = BuildMetadata::from_label(app.label(BUILD_METADATA_LABEL).as_deref())?;
    let new_sha = t.layer.diff_id.clone();

    let annotations: Vec<(&str, String)> = base
        .map(|b| {
            vec![
                (ANNOTATION_BASE_NAME, b.name.clone()),
                (ANNOTATION_BASE_DIGEST, b.digest.to_string()),
            ]
        })
        .unwrap_or_default();
    let current = app.annotations();
    let unchanged = previous.sha == new_sha.as_str()
        && previous.mode() == t.mode
        && previous.target == t.target
        && annotations
            .iter()
            .all(|(k, v)| current.get(*k).and_then(|x| x.as_str()) == Some(v.as_str()));
    if unchanged {
        return Ok(Switched {
            image: app,
            report,
            previous,
            layer: new_sha,
            unchanged: true,
        });
    }

    if previous.sha != new_sha.as_str() {
        // History entry kept: same layer role, same `Buildpacks Application Launcher` line.
        mutate::replace_layer(&mut app, &LayerSel::Index(index), t.layer, None)?;
    }
    md.launcher.sha = new_sha.to_string();
    md.launcher.mode = Some(t.mode);
    build.launcher = Some(t.build_launcher.unwrap_or_else(|| {
        BuildLauncher::Symlink {
            target: t.target.as_deref().unwrap_or_default(),
            apis: &apis,
        }
        .to_value()
    }));
    md.launcher.target = t.target;
    let (md_label, build_label) = (md.to_label(), build.to_label());
    mutate::set_labels(
        &mut app,
        [
            (LIFECYCLE_METADATA_LABEL, Some(md_label.as_str())),
            (BUILD_METADATA_LABEL, Some(build_label.as_str())),
        ],
    )?;
    mutate::set_annotations(
        &mut app,
        annotations.iter().map(|(k, v)| (*k, Some(v.as_str()))),
    );
    Ok(Switched {
        image: app,
        report,
        previous,
        layer: new_sha,
        unchanged: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apis::Api;
    use crate::launcher::Overrides;
    use crate::testing::{launcher_described_as, stamped_run_and_app};

    const DESCRIPTION: &[u8] = br#"{"name":"relaunch-launcher","version":"1.0.0","platform-apis":["0.10","0.12"],"buildpack-apis":["0.10"]}"#;

    fn launcher(overrides: &Overrides) -> ResolvedLauncher {
        launcher_described_as(DESCRIPTION, overrides)
    }

    /// (run image stamped with `l`, app at Platform API 0.10 exported onto it).
    fn world(l: &ResolvedLauncher) -> (Image, Image) {
        stamped_run_and_app(l, "run")
    }

    fn advertised(run: &Image) -> AdvertisedLauncher {
        AdvertisedLauncher::from_labels(&crate::app::string_labels(run))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn binary_layer_is_byte_identical_to_the_exporters() {
        // Reference behaviour §3.2: the fake launcher `launcher-content` gives this diffID.
        let layer = binary_layer(b"launcher-content").unwrap();
        assert_eq!(
            layer.diff_id.as_str(),
            "sha256:eb8cd01c7ae3cc4b516ccee89832066897b6728ba2b43044bf4c0fcb34826ba3"
        );
    }

    #[test]
    fn symlink_layer_depends_only_on_the_target() {
        let a = symlink_layer("/usr/local/bin/launcher").unwrap();
        let b = symlink_layer("/usr/local/bin/launcher").unwrap();
        let c = symlink_layer("/opt/launcher").unwrap();
        assert_eq!(a.descriptor.digest, b.descriptor.digest);
        assert_ne!(a.diff_id, c.diff_id);
    }

    #[test]
    fn decouple_swaps_in_place_and_is_idempotent() {
        let l = launcher(&Overrides::default());
        let (run, app) = world(&l);
        let out = decouple(app.clone(), &advertised(&run), None, false).unwrap();
        assert!(!out.unchanged && out.report.compatible);
        let (md, index) = crate::app::lifecycle_metadata(&out.image).unwrap();
        assert_eq!(md.launcher.mode(), LauncherMode::Symlink);
        assert_eq!(
            out.image.layers()[index].diff_id,
            symlink_layer("/usr/local/bin/launcher").unwrap().diff_id
        );
        assert_eq!(out.image.history(), app.history());
        let again = decouple(out.image.clone(), &advertised(&run), None, false).unwrap();
        assert!(again.unchanged);
        assert_eq!(again.image.digest(), out.image.digest());

        let back = recouple(out.image, &l, None, false).unwrap();
        assert_eq!(back.image.diff_ids(), app.diff_ids());
    }

    #[test]
    fn decoupled_app_records_its_apis_and_validation_reads_no_config_layer() {
        use crate::app::recorded_or_read_app_apis;
        use crate::metadata::{BuildMetadata, BUILD_METADATA_LABEL, LIFECYCLE_METADATA_LABEL};
        use relaunch_oci::mutate;

        let l = launcher(&Overrides::default());
        let (run, app) = world(&l);
        let (md, _) = lifecycle_metadata(&app).unwrap();
        let read = app_apis(&app, &md).unwrap();
        let decoupled = decouple(app, &advertised(&run), None, false).unwrap().image;
        let build =
            BuildMetadata::from_label(decoupled.label(BUILD_METADATA_LABEL).as_deref()).unwrap();
        let entry = build.launcher.clone().unwrap();
        assert_eq!(entry["platform-api"], "0.10");
        let mut versions: Vec<Api> = read.buildpacks.iter().map(|b| b.api).collect();
        versions.sort();
        versions.dedup();
        assert!(!versions.is_empty());
        assert_eq!(build.recorded_buildpack_apis(), Some(versions.clone()));

        // With the config layer unreachable, only the recorded APIs can answer.
        let mut no_config = decoupled.clone();
        let (mut md, _) = lifecycle_metadata(&decoupled).unwrap();
        md.config.sha = format!("sha256:{}", "0".repeat(64));
        let md_label = md.to_label();
        mutate::set_labels(
            &mut no_config,
            [(LIFECYCLE_METADATA_LABEL, Some(md_label.as_str()))],
        )
        .unwrap();
        assert!(app_apis(&no_config, &md).is_err());
        let recorded = recorded_or_read_app_apis(&no_config, &md).unwrap();
        assert_eq!(recorded.platform, read.platform);
        assert_eq!(
            recorded
                .buildpacks
                .iter()
                .map(|b| b.api)
                .collect::<Vec<_>>(),
            versions
        );
        assert_eq!(
            recorded.launcher_target.as_deref(),
            Some("/usr/local/bin/launcher")
        );

        // Decoupled by an older relaunch (no recorded APIs): the config layer is read.
        let mut older = decoupled.clone();
        let mut entry = entry;
        entry.as_object_mut().unwrap().remove("buildpack-apis");
        entry.as_object_mut().unwrap().remove("platform-api");
        let mut build = build;
        build.launcher = Some(entry);
        let build_label = build.to_label();
        mutate::set_labels(
            &mut older,
            [(BUILD_METADATA_LABEL, Some(build_label.as_str()))],
        )
        .unwrap();
        let (md, _) = lifecycle_metadata(&older).unwrap();
        let fallback = recorded_or_read_app_apis(&older, &md).unwrap();
        assert_eq!(fallback.buildpacks, read.buildpacks);
        assert_eq!(fallback, app_apis(&older, &md).unwrap());
    }

    #[test]
    fn refuses_a_launcher_without_the_apps_platform_api_unless_forced() {
        let l = launcher(&Overrides::default());
        let (_, app) = world(&l);
        let narrow = launcher(&Overrides {
            platform_apis: Some("0.12".parse().unwrap()),
            ..Default::default()
        });
        let (narrow_run, _) = world(&narrow);
        let err = decouple(app.clone(), &advertised(&narrow_run), None, false).unwrap_err();
        assert!(matches!(err, Error::Incompatible(_)));
        assert!(
            err.to_string()
                .contains("Platform API 0.10 (supported: 0.12)"),
            "{err}"
        );
        let forced = decouple(app, &advertised(&narrow_run), None, true).unwrap();
        assert!(!forced.report.compatible && !forced.unchanged);
    }
}
