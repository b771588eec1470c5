//! `run-image add-launcher`: puts a launcher binary into a run image and advertises it.

use relaunch_oci::layer::{Entry, LayerBuilder, NORMALIZED_TIME};
use relaunch_oci::mutate::{self, History, LayerSel};
use relaunch_oci::{Digest, Image, Layer};

use launcher::bundle::SIDECAR;

use crate::bundle::{delegate_path, BundleError, Delegate, LauncherBundle, BUNDLE_LABEL};
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
pub fn stamp_run_image(run: Image, launcher: &ResolvedLauncher, path: &str) -> Result<Stamped> {
    stamp_bundle(run, launcher, &[], path)
}

/// The bundle layer: the launcher at `path`, then each delegate at `<path>.d/NN-<name>`
/// (with its sidecar `NN-<name>.toml`), `NN` being its place in dispatch order.
pub fn bundle_layer(
    launcher: &ResolvedLauncher,
    delegates: &[Delegate],
    path: &str,
) -> Result<Layer> {
    let mut layer =
        LayerBuilder::new().entry(Entry::file(path, 0o755, launcher.binary.bytes.clone()));
    if !delegates.is_empty() {
        layer = layer.entry(Entry::dir(format!("{path}.d"), 0o755));
    }
    for (i, d) in delegates.iter().enumerate() {
        let at = delegate_path(path, i, &d.name);
        if let Some(sidecar) = &d.sidecar {
            layer = layer.entry(Entry::file(
                format!("{at}{SIDECAR}"),
                0o644,
                sidecar.clone(),
            ));
        }
        layer = layer.entry(Entry::file(at, 0o755, d.binary.bytes.clone()));
    }
    Ok(layer.build()?)
}

/// [`stamp_run_image`] with delegates: one layer holding the whole bundle; the API labels
/// advertise the union, and [`BUNDLE_LABEL`] each launcher's own lists.
pub fn stamp_bundle(
    mut run: Image,
    launcher: &ResolvedLauncher,
    delegates: &[Delegate],
    path: &str,
) -> Result<Stamped> {
    validate_path(path)?;
    launcher
        .binary
        .ensure_runs_on(&run.platform(), "the run image")?;
    // Scripts with a sidecar descriptor run anywhere; ELF delegates must match too.
    for d in delegates
        .iter()
        .filter(|d| d.binary.bytes.starts_with(b"\x7fELF"))
    {
        d.binary.ensure_runs_on(&run.platform(), "the run image")?;
    }
    let mut advertised = launcher.advertised_at(path);
    let bundle_label = if delegates.is_empty() {
        None
    } else {
        let mut bundle = LauncherBundle::single(&advertised);
        bundle.0[0].name = launcher
            .binary
            .descriptor
            .as_ref()
            .map_or_else(String::new, |d| d.name.clone());
        for (i, d) in delegates.iter().enumerate() {
            let bundled = d
                .bundled_at(&delegate_path(path, i, &d.name))
                .map_err(|e| BundleError::BadDelegate {
                    origin: d.binary.origin.clone(),
                    reason: e.to_string(),
                })?;
            bundle.0.push(bundled);
        }
        (advertised.platform_apis, advertised.buildpack_apis) = bundle.union();
        Some(bundle.to_label())
    };
    let layer = bundle_layer(launcher, delegates, path)?;
    let new_diff = layer.diff_id.clone();
    let previous = run
        .label(LAYER_LABEL)
        .and_then(|s| Digest::parse(&s).ok())
        .filter(|d| run.layers().iter().any(|l| &l.diff_id == d));
    let mut labels: Vec<(&str, Option<String>)> = advertised
        .to_labels()
        .into_iter()
        .map(|(k, v)| (k, Some(v)))
        .collect();
    labels.push((LAYER_LABEL, Some(new_diff.to_string())));
    labels.push((BUNDLE_LABEL, bundle_label));

    let labels_match = labels.iter().all(|(k, v)| run.label(k) == *v);
    if previous.as_ref() == Some(&new_diff) && labels_match {
        return Ok(Stamped {
            image: run,
            advertised,
            layer: new_diff,
            replaced: None,
            unchanged: true,
        });
    }

    let what = if delegates.is_empty() {
        String::new()
    } else {
        format!(" with {} delegate(s)", delegates.len())
    };
    let history = History::created_by(
        format!(
            "relaunch: run-image launcher {} at {path}{what}",
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
    mutate::set_labels(&mut run, labels.iter().map(|(k, v)| (*k, v.as_deref())))?;
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

    #[test]
    fn a_bundle_is_one_layer_advertising_the_union_and_each_launcher() {
        use crate::bundle::{Delegate, LauncherBundle, BUNDLE_LABEL};
        use crate::contract::{BUILDPACK_APIS_LABEL, PLATFORM_APIS_LABEL};
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile_dir("bundle");
        let write = |name: &str, bytes: &[u8], mode: u32| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        let old = write(
            "old",
            &crate::testing::elf_with(Some(br#"{"name":"old","version":"0.1","platform-apis":["0.6"],"buildpack-apis":["0.2","0.6"]}"#)),
            0o755,
        );
        let script = write("vendor-launcher", b"#!/bin/sh\n", 0o755);
        let sidecar = write(
            "vendor.toml",
            b"name = \"vendor\"\nversion = \"2\"\nplatform-apis = [\"0.16\"]\nbuildpack-apis = [\"0.13\"]\n",
            0o644,
        );
        let delegates = [
            Delegate::from_files(&old, None).unwrap(),
            Delegate::from_files(&script, Some(&sidecar)).unwrap(),
        ];
        let l = launcher("1.0.0");
        let stamped =
            stamp_bundle(tiny_run_image(), &l, &delegates, "/usr/local/bin/launcher").unwrap();
        assert_eq!(
            stamped.image.layers().len(),
            2,
            "one layer for the whole bundle"
        );
        let files: Vec<(String, u32)> = relaunch_oci::layer::read::list_files(&stamped.image)
            .unwrap()
            .into_iter()
            .filter(|e| e.layer == 1)
            .map(|e| (e.path, e.mode & 0o7777))
            .collect();
        for want in [
            ("/usr/local/bin/launcher", 0o755),
            ("/usr/local/bin/launcher.d", 0o755),
            ("/usr/local/bin/launcher.d/01-old", 0o755),
            ("/usr/local/bin/launcher.d/02-vendor-launcher", 0o755),
            ("/usr/local/bin/launcher.d/02-vendor-launcher.toml", 0o644),
        ] {
            assert!(
                files.contains(&(want.0.to_string(), want.1)),
                "{want:?} in {files:?}"
            );
        }
        assert_eq!(files.len(), 5, "{files:?}");
        let labels = crate::app::string_labels(&stamped.image);
        assert_eq!(labels[PLATFORM_APIS_LABEL], "0.6,0.15,0.16");
        assert_eq!(labels[BUILDPACK_APIS_LABEL], "0.2,0.6,0.12,0.13");
        let bundle = LauncherBundle::from_labels(&stamped.advertised, &labels).unwrap();
        let names: Vec<_> = bundle
            .0
            .iter()
            .map(|b| (b.path.as_str(), b.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("/usr/local/bin/launcher", "relaunch-launcher"),
                ("/usr/local/bin/launcher.d/01-old", "old"),
                ("/usr/local/bin/launcher.d/02-vendor-launcher", "vendor"),
            ]
        );
        // Deterministic, and re-stamping without delegates replaces the layer in place.
        let again =
            stamp_bundle(tiny_run_image(), &l, &delegates, "/usr/local/bin/launcher").unwrap();
        assert_eq!(again.image.digest(), stamped.image.digest());
        let plain = stamp_run_image(stamped.image, &l, "/usr/local/bin/launcher").unwrap();
        assert_eq!(plain.image.layers().len(), 2);
        assert_eq!(plain.replaced, Some(stamped.layer));
        assert_eq!(plain.image.label(BUNDLE_LABEL), None);
        assert_eq!(
            plain.image.label(PLATFORM_APIS_LABEL).as_deref(),
            Some("0.15")
        );

        let e = Delegate::from_files(&script, None).unwrap_err();
        assert!(e.to_string().contains("is not an ELF executable"), "{e}");
        let bare = write("bare", &crate::testing::elf_with(None), 0o755);
        let e = Delegate::from_files(&bare, None).unwrap_err();
        assert!(
            e.to_string().contains("give a descriptor: --delegate"),
            "{e}"
        );
        let bad = write("bad.toml", b"name = \"x\"\nversion = \"1\"\nplatform-apis = [\"zero\"]\nbuildpack-apis = [\"0.7\"]\n", 0o644);
        let e = Delegate::from_files(&script, Some(&bad)).unwrap_err();
        assert!(e.to_string().contains("bad API 'zero'"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("lc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
