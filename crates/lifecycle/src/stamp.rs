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
    let advertised = AdvertisedLauncher {
        path: path.to_string(),
        version: launcher.version.clone(),
        platform_apis: launcher.platform_apis.clone(),
        buildpack_apis: launcher.buildpack_apis.clone(),
    };
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
    use crate::descriptor::{tests::elf_with, LauncherBinary};
    use crate::launcher::{resolve, Overrides};
    use relaunch_oci::v1::Flavor;

    fn launcher(version: &str) -> ResolvedLauncher {
        let json = format!(
            r#"{{"name":"relaunch-launcher","version":"{version}","platform-apis":["0.15"],"buildpack-apis":["0.12"]}}"#
        );
        let binary =
            LauncherBinary::from_bytes("test".into(), elf_with(Some(json.as_bytes())), 0o755)
                .unwrap();
        resolve(binary, None, &Overrides::default()).unwrap()
    }

    fn run_image() -> Image {
        let layer = LayerBuilder::new()
            .entry(Entry::file("/etc/os-release", 0o644, "ID=test\n"))
            .build()
            .unwrap();
        let mut run = Image::new(
            Flavor::Oci,
            serde_json::json!({"os": "linux", "architecture": "amd64"}),
        )
        .unwrap();
        mutate::append_layers(&mut run, vec![(layer, None)]).unwrap();
        run
    }

    #[test]
    fn restamping_replaces_the_launcher_layer_in_place() {
        let first =
            stamp_run_image(run_image(), &launcher("1.0.0"), "/usr/local/bin/launcher").unwrap();
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
    fn refuses_paths_the_app_layers_overwrite() {
        let err = stamp_run_image(run_image(), &launcher("1.0.0"), "/cnb/lifecycle/launcher")
            .unwrap_err();
        assert!(err.to_string().contains("is under /cnb/lifecycle"), "{err}");
    }
}
