//! Mutation invariants: diff_ids, manifest layers and history stay consistent; what is not
//! edited keeps its bytes; the same edits give the same digests; results pass skopeo/umoci.

mod common;

use std::fs;

use common::*;
use relaunch_oci::mutate::{self, history_positions, History, LayerSel};
use relaunch_oci::v1::Flavor;
use relaunch_oci::Image;
use relaunch_testkit::umoci_unpack;
use serde_json::Value;

fn assert_consistent(img: &Image) {
    let manifest = img.manifest();
    assert_eq!(manifest.layers.len(), img.layers().len());
    let diff_ids: Vec<String> = img.config()["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = img.diff_ids().iter().map(|d| d.to_string()).collect();
    assert_eq!(diff_ids, want);
    for (m, l) in manifest.layers.iter().zip(img.layers()) {
        assert_eq!(m.digest, l.descriptor.digest);
    }
    if !img.history().is_empty() {
        assert!(history_positions(img).unwrap().is_some());
    }
    assert_eq!(
        manifest.config.digest,
        relaunch_oci::Digest::of(&img.config_bytes())
    );
}

fn created_by(img: &Image) -> Vec<String> {
    img.history()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap_or("").to_string())
        .collect()
}

/// App image: 2 base layers, then app layers "app" and "launcher".
fn app_image() -> Image {
    let mut img = base_image(Flavor::Oci, "run1", 2);
    mutate::append_layers(
        &mut img,
        vec![
            (
                file_layer("/workspace/app", "app"),
                Some(History::created_by(
                    "Application Layer",
                    "2024-01-01T00:00:00Z",
                )),
            ),
            (
                file_layer("/cnb/lifecycle/launcher", "old launcher"),
                Some(History::created_by(
                    "Buildpacks Application Launcher",
                    "2024-01-01T00:00:00Z",
                )),
            ),
        ],
    )
    .unwrap();
    img
}

#[test]
fn replace_layer_by_diff_id_keeps_history_and_other_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    write_layout(&app_image(), &dir, "app");
    let original = read_layout(&dir, "app");
    let mut img = original.clone();
    let old = img.layers()[3].diff_id.clone();
    let new_layer = file_layer("/cnb/lifecycle/launcher", "new launcher");
    mutate::replace_layer(&mut img, &LayerSel::DiffId(old), new_layer.clone(), None).unwrap();
    assert_consistent(&img);
    assert_eq!(img.layers()[3].diff_id, new_layer.diff_id);
    for i in 0..3 {
        assert_eq!(img.layers()[i].descriptor, original.layers()[i].descriptor);
    }
    assert_eq!(created_by(&img), created_by(&original));
    // Only rootfs changed in the config: every other key keeps value and order.
    let keys = |i: &Image| i.config().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&img), keys(&original));
    assert_eq!(
        img.config()["x-unknown-top"],
        original.config()["x-unknown-top"]
    );

    // Replacing by index with a new history entry.
    mutate::replace_layer(
        &mut img,
        &LayerSel::Index(2),
        file_layer("/workspace/app", "v2"),
        Some(History::created_by(
            "Application Slice: 1",
            "2024-01-01T00:00:00Z",
        )),
    )
    .unwrap();
    assert_consistent(&img);
    assert_eq!(created_by(&img)[3], "Application Slice: 1");

    write_layout(&img, &dir, "new");
    skopeo_inspect(&dir, "new");
    let bundle = tmp.path().join("bundle");
    umoci_unpack(&dir, "new", &bundle);
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/cnb/lifecycle/launcher")).unwrap(),
        "new launcher"
    );
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/run1/layer0")).unwrap(),
        "run1 0"
    );
}

#[test]
fn missing_layer_selectors_are_errors() {
    let mut img = app_image();
    let l = file_layer("/x", "x");
    let err = mutate::replace_layer(&mut img, &LayerSel::Index(9), l.clone(), None).unwrap_err();
    assert!(err.to_string().contains("image has 4 layers"), "{err}");
    let err =
        mutate::replace_layer(&mut img, &LayerSel::DiffId(l.diff_id.clone()), l, None).unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[test]
fn rebase_swaps_base_layers_history_and_platform() {
    let app = app_image();
    let old_top = app.layers()[1].diff_id.clone();
    let mut new_base = base_image(Flavor::Oci, "run2", 3);
    new_base
        .edit_config(|c| {
            c.insert("architecture".into(), "arm64".into());
            c.insert("variant".into(), "v8".into());
            Ok(())
        })
        .unwrap();
    let mut img = app.clone();
    mutate::rebase(&mut img, &old_top, &new_base).unwrap();
    assert_consistent(&img);
    let mut want = new_base.diff_ids();
    want.extend_from_slice(&app.diff_ids()[2..]);
    assert_eq!(img.diff_ids(), want);
    assert_eq!(
        created_by(&img),
        [
            "run2 layer 0",
            "ENV X=1",
            "run2 layer 1",
            "run2 layer 2",
            "Application Layer",
            "Buildpacks Application Launcher"
        ]
    );
    assert_eq!(img.platform().to_string(), "linux/arm64/v8");
    // App config (Env, Labels, unknown fields) is the app's, not the new base's.
    assert_eq!(img.container_config(), app.container_config());
    assert_eq!(img.config()["x-unknown-top"], app.config()["x-unknown-top"]);
    // Layers above the base are the same blobs.
    assert_eq!(img.layers()[3].descriptor, app.layers()[2].descriptor);

    let err = mutate::rebase(
        &mut img.clone(),
        &relaunch_oci::Digest::of(b"nope"),
        &new_base,
    )
    .unwrap_err();
    assert!(err.to_string().contains("base top layer"), "{err}");

    let tmp = tempfile::tempdir().unwrap();
    write_layout(&img, tmp.path(), "rebased");
    let inspected = skopeo_inspect(tmp.path(), "rebased");
    assert_eq!(inspected["Architecture"], "arm64");
}

#[test]
fn config_edits_are_reproducible_and_keep_order() {
    let edit = |img: &mut Image| {
        mutate::set_labels(
            img,
            [("io.buildpacks.rebasable", Some("true")), ("z.first", None)],
        )
        .unwrap();
        mutate::set_env(img, "PATH", "/cnb/process:/usr/bin").unwrap();
        mutate::set_env(img, "CNB_APP_DIR", "/workspace").unwrap();
        mutate::set_entrypoint(img, Some(vec!["/cnb/process/web".into()])).unwrap();
        mutate::set_cmd(img, None).unwrap();
        mutate::set_working_dir(img, "/workspace").unwrap();
        mutate::set_created(img, "1980-01-01T00:00:01Z").unwrap();
        mutate::set_annotations(
            img,
            [(mutate::ANNOTATION_BASE_NAME, Some("registry.example/run:1"))],
        );
    };
    let (mut a, mut b) = (app_image(), app_image());
    edit(&mut a);
    edit(&mut b);
    assert_eq!(a.digest(), b.digest());
    assert_consistent(&a);
    let cfg = a.container_config().unwrap();
    assert_eq!(
        cfg["Env"],
        serde_json::json!(["PATH=/cnb/process:/usr/bin", "CNB_APP_DIR=/workspace"])
    );
    let labels: Vec<&String> = cfg["Labels"].as_object().unwrap().keys().collect();
    assert_eq!(labels, ["a.second", "io.buildpacks.rebasable"]);
    assert_eq!(cfg["Cmd"], Value::Null);
    assert_eq!(
        a.annotations()[mutate::ANNOTATION_BASE_NAME],
        "registry.example/run:1"
    );
    assert_eq!(
        a.manifest().annotations.unwrap()[mutate::ANNOTATION_BASE_NAME],
        "registry.example/run:1"
    );

    let tmp = tempfile::tempdir().unwrap();
    write_layout(&a, tmp.path(), "edited");
    let inspected = skopeo_inspect(tmp.path(), "edited");
    assert_eq!(inspected["Labels"]["io.buildpacks.rebasable"], "true");
    let back = read_layout(tmp.path(), "edited");
    assert_eq!(back.digest(), a.digest());
}

#[test]
fn images_without_history_stay_without() {
    let mut img = base_image(Flavor::Oci, "h", 1);
    img.edit_config(|c| {
        c.shift_remove("history");
        Ok(())
    })
    .unwrap();
    mutate::append_layers(&mut img, vec![(file_layer("/a", "a"), None)]).unwrap();
    assert!(img.history().is_empty());
    assert_consistent(&img);
}

#[test]
fn inconsistent_history_is_reported() {
    let mut img = base_image(Flavor::Oci, "h", 2);
    img.edit_config(|c| {
        c.get_mut("history").unwrap().as_array_mut().unwrap().pop();
        Ok(())
    })
    .unwrap();
    let err = mutate::append_layers(&mut img, vec![(file_layer("/a", "a"), None)]).unwrap_err();
    assert!(
        err.to_string()
            .contains("non-empty history entries for 2 layers"),
        "{err}"
    );
}

#[test]
fn docker_flavour_keeps_docker_media_types_for_new_layers() {
    let mut img = base_image(Flavor::Docker, "d", 1);
    mutate::append_layers(&mut img, vec![(file_layer("/a", "a"), None)]).unwrap();
    let m = img.manifest();
    assert_eq!(
        m.media_type.as_deref(),
        Some(relaunch_oci::media_type::DOCKER_MANIFEST)
    );
    assert!(m
        .layers
        .iter()
        .all(|l| l.media_type == relaunch_oci::media_type::DOCKER_LAYER_GZIP));
}

#[test]
fn every_platform_of_an_index_can_be_mutated() {
    use relaunch_oci::v1::Index;
    use relaunch_oci::{write_index, IndexManifest, NoProgress};
    let tmp = tempfile::tempdir().unwrap();
    let mut amd = base_image(Flavor::Oci, "p", 1);
    let mut arm = base_image(Flavor::Oci, "p", 1);
    arm.edit_config(|c| {
        c.insert("architecture".into(), "arm64".into());
        Ok(())
    })
    .unwrap();
    let mut index = Index::empty_oci();
    index.manifests = [&amd, &arm]
        .iter()
        .map(|i| IndexManifest::child_descriptor(i))
        .collect();
    let idx = IndexManifest::new(index);
    assert_eq!(
        idx.with_children(&[amd.clone().into(), arm.clone().into()])
            .unwrap()
            .raw,
        idx.raw
    );

    for img in [&mut amd, &mut arm] {
        mutate::set_labels(img, [("stamped", Some("yes"))]).unwrap();
    }
    let new_idx = idx
        .with_children(&[amd.clone().into(), arm.clone().into()])
        .unwrap();
    assert_ne!(new_idx.raw.digest(), idx.raw.digest());
    assert_eq!(
        new_idx.index.manifests[1]
            .platform
            .as_ref()
            .unwrap()
            .architecture,
        "arm64"
    );
    assert_eq!(new_idx.index.manifests[1].digest, arm.digest());

    let layout = relaunch_oci::Layout::create(tmp.path()).unwrap();
    write_index(
        &new_idx,
        &[amd.into(), arm.into()],
        &layout,
        &["multi".into()],
        &NoProgress,
    )
    .unwrap();
    let arm_inspect = relaunch_testkit::skopeo_inspect(
        &format!("oci:{}:multi", tmp.path().display()),
        &["--override-arch", "arm64"],
    );
    assert_eq!(arm_inspect["Labels"]["stamped"], "yes");
    assert_eq!(arm_inspect["Architecture"], "arm64");
}

#[test]
fn no_op_and_failed_edits_keep_the_exact_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    write_layout(&app_image(), tmp.path(), "t");
    let original = read_layout(tmp.path(), "t");
    let mut same = original.clone();
    same.edit_config(|_| Ok(())).unwrap();
    assert!(same.is_unmodified());
    let labels = original.labels();
    let pairs: Vec<(&str, Option<&str>)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    mutate::set_labels(&mut same, pairs).unwrap();
    assert!(same.is_unmodified());
    assert_eq!(same.digest(), original.digest());

    let mut failing = original.clone();
    let err = failing
        .edit_config(|c| {
            c.insert("os".into(), "plan9".into());
            Err(relaunch_oci::Error::invalid("test edit", "refused"))
        })
        .unwrap_err();
    assert!(err.to_string().contains("refused"));
    assert!(failing.is_unmodified());
    assert_eq!(failing.platform().os, "linux");
}
