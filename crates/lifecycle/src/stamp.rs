//! `run-image add-launcher`: puts a launcher binary into a run image and advertises it.

use relaunch_oci::layer::{Entry, LayerBuilder, NORMALIZED_TIME};
use relaunch_oci::mutate::{self, History, LayerSel};
use relaunch_oci::{Digest, Image, Layer};

use crate::contract::{validate_path, AdvertisedLauncher, LAYER_LABEL};
use crate::error::Result;
use crate::launcher::ResolvedLauncher;

/// What stamping did.
#[derive(Debug, Clone)]
pub struct Stamped {
    pub image: Image,
    pub advertised: AdvertisedLauncher,
    /// diffID of the launcher layer now in the image.
    pub layer: Digest,
    /// diffID of the previous launcher layer this one replaced in place.
    pub replaced: Option<Digest>,
    /// The image already carried exactly this launcher and labels: nothing to write.
    pub unchanged: bool,
}

/// The run-image launcher layer: the binary alone, root-owned, mode 0755. Parent
/// directories are deliberately not listed: a directory entry would overwrite the run
/// image's own directory (its mode, or a merged-/usr symlink such as /bin → usr/bin), and
/// runtimes create missing parents on extraction.
pub fn launcher_layer(launcher: &ResolvedLauncher, path: &str) -> Result<Layer> {
    Ok(LayerBuilder::new()
        .entry(Entry::file(path, 0o755, launcher.binary.bytes.clone()))
        .build()?)
}

/// Adds `launcher` at `path` as one layer and sets the contract labels. If the image was
/// stamped before (label `io.buildpacks.run-image.launcher.layer`), that layer is replaced
/// in place instead of stacking another.
pub fn stamp_run_image(mut run: Image, launcher: &ResolvedLauncher, path: &str) -> Result<Stamped> {
    validate_path(path)?;
    launcher
        .binary
        .ensure_runs_on(&run.platform(), "the run image")?;
    let advertised = launcher.advertised_at(path);
    let layer = launcher_layer(launcher, path)?;
    let new_diff = layer.diff_id.clone();
    let previous = run
        .label(LAYER_LABEL)
        .and_then(|s| Digest::parse(&s).ok())
        .filter(|d| run.layers().iter().any(|l| &l.diff_id == d));
    let mut labels: Vec<(&str, String)> = advertised.to_labels().into();
    labels.push((LAYER_LABEL, new_diff.to_string()));

    let labels_match = labels
        .iter()
        .all(|(k, v)| run.label(k).as_deref() == Some(v.as_str()));
    if previous.as_ref() == Some(&new_diff) && labels_match {
        return Ok(Stamped {
            image: run,
            advertised,
            layer: new_diff,
            replaced: None,
            unchanged: true,
        });
    }

    let history = History::created_by(
        format!(
            "relaunch: run-image launcher {} at {path}",
            launcher.version
        ),
        NORMALIZED_TIME,
    );
    match &previous {
        Some(old) => mutate::replace_layer(
            &mut run,
            &LayerSel::DiffId(old.clone()),
            layer,
            Some(history),
        )?,
        None => mutate::append_layers(&mut run, vec![(layer, Some(history))])?,
    }
    mutate::set_labels(&mut run, labels.iter().map(|(k, v)| (*k, Some(v.as_str()))))?;
    Ok(Stamped {
        image: run,
        advertised,
        layer: new_diff,
        replaced: previous,
        unchanged: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launcher::Overrides;
    use crate::testing::{launcher_described_as, tiny_run_image};

    fn launcher(version: &str) -> ResolvedLauncher {
        let json = format!(
            r#"{{"name":"relaunch-launcher","version":"{version}","platform-apis":["0.15"],"buildpack-apis":["0.12"]}}"#
        );
        launcher_described_as(json.as_bytes(), &Overrides::default())
    }

    #[test]
    fn restamping_replaces_the_launcher_layer_in_place() {
        let first = stamp_run_image(
            tiny_run_image(),
            &launcher("1.0.0"),
            "/usr/local/bin/launcher",
        )
        .unwrap();
        assert_eq!(first.image.layers().len(), 2);
        assert_eq!(
            first.image.label(crate::contract::VERSION_LABEL).as_deref(),
            Some("1.0.0")
        );
        let same = stamp_run_image(
            first.image.clone(),
            &launcher("1.0.0"),
            "/usr/local/bin/launcher",
        )
        .unwrap();
        assert!(same.unchanged);
        let second =
            stamp_run_image(first.image.clone(), &launcher("2.0.0"), "/opt/bin/launcher").unwrap();
        assert_eq!(second.replaced.as_ref(), Some(&first.layer));
        assert_eq!(second.image.layers().len(), 2);
        assert_eq!(second.image.layers()[1].diff_id, second.layer);
        assert_eq!(
            second.image.label(crate::contract::PATH_LABEL).as_deref(),
            Some("/opt/bin/launcher")
        );
    }

    #[test]
    fn the_launcher_is_a_root_owned_0755_file_at_the_labelled_path() {
        let l = launcher("1.0.0");
        let stamped = stamp_run_image(tiny_run_image(), &l, "/usr/local/bin/launcher").unwrap();
        // Parent directories are not in the layer on purpose, so look the entry up directly.
        let entry = relaunch_oci::layer::read::list_files(&stamped.image)
            .unwrap()
            .into_iter()
            .find(|e| e.path == "/usr/local/bin/launcher")
            .expect("the launcher is in the image");
        assert_eq!(entry.size, l.binary.bytes.len() as u64);
        assert_eq!((entry.mode & 0o7777, entry.uid, entry.gid), (0o755, 0, 0));
        assert_eq!(entry.layer, 1, "in the one layer stamping added");
        let labels = crate::app::string_labels(&stamped.image);
        assert_eq!(
            labels[crate::contract::PATH_LABEL],
            "/usr/local/bin/launcher"
        );
        assert_eq!(labels[crate::contract::LAYER_LABEL], stamped.layer.as_str());
    }

    #[test]
    fn refuses_paths_the_app_layers_overwrite() {
        let err = stamp_run_image(
            tiny_run_image(),
            &launcher("1.0.0"),
            "/cnb/lifecycle/launcher",
        )
        .unwrap_err();
        assert!(err.to_string().contains("is under /cnb/lifecycle"), "{err}");
    }
}
