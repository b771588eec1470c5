//! Bad input to the launcher commands gives a clear error and writes nothing; launchers
//! from lifecycle images; recoupling restores the exporter's launcher layer.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use relaunch_lifecycle::apis::Api;
use relaunch_lifecycle::app::lifecycle_metadata;
use relaunch_lifecycle::descriptor::LauncherBinary;
use relaunch_lifecycle::fixtures::{export_app, sample_app, RunImageRef};
use relaunch_lifecycle::metadata::LIFECYCLE_METADATA_LABEL;
use relaunch_oci::layer::{Entry, LayerBuilder};
use relaunch_oci::{mutate, Image};
use serde_json::Value;
use support::{base_run_image, fails, launcher_path, ok, Store};

/// run:base, run:v1 (stamped), app:built (exported onto run:v1 at Platform API 0.10).
struct World {
    _scratch: tempfile::TempDir,
    dir: PathBuf,
    store: Store,
    built: Image,
}

fn world() -> World {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().to_path_buf();
    let store = Store::Layout(dir.join("images"));
    base_run_image(&store, &dir);
    let launcher = launcher_path();
    ok(store.relaunch(&[
        "run-image",
        "add-launcher",
        &store.r("run", "base"),
        "--launcher",
        launcher.to_str().unwrap(),
        "--tag",
        &store.r("run", "v1"),
    ]));
    let run_v1 = store.get("run", "v1");
    let bin = LauncherBinary::from_file(&launcher).unwrap();
    let run_ref = RunImageRef {
        image: store.r("run", "v1"),
        reference: store.digest_ref("run", &run_v1.digest()),
    };
    let version = bin.descriptor.as_ref().unwrap().version.clone();
    let built = export_app(
        &run_v1,
        &run_ref,
        &sample_app(Api::new(0, 10)),
        &bin.bytes,
        &version,
    )
    .unwrap();
    store.put(&built, "app", "built");
    World {
        _scratch: scratch,
        dir,
        store,
        built,
    }
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> String {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn bad_inputs_are_named_and_nothing_is_written() {
    let w = world();
    let s = &w.store;
    let out = || s.r("out", "x");

    // An app image without lifecycle metadata (the plain run image).
    let err = fails(
        s.relaunch(&["decouple", &s.r("run", "base"), "--tag", &out()]),
        1,
    );
    assert!(
        err.contains("no io.buildpacks.lifecycle.metadata label"),
        "{err}"
    );
    let err = fails(s.relaunch(&["check", &s.r("run", "base")]), 1);
    assert!(err.contains("not a CNB app image"), "{err}");

    // launcher.sha naming no layer of the image.
    let mut lost = w.built.clone();
    let mut md: Value =
        serde_json::from_str(&lost.label(LIFECYCLE_METADATA_LABEL).unwrap()).unwrap();
    let bogus = format!("sha256:{}", "0".repeat(64));
    md["launcher"]["sha"] = bogus.clone().into();
    mutate::set_labels(
        &mut lost,
        [(LIFECYCLE_METADATA_LABEL, Some(md.to_string().as_str()))],
    )
    .unwrap();
    s.put(&lost, "app", "lost");
    let err = fails(
        s.relaunch(&["decouple", &s.r("app", "lost"), "--tag", &out()]),
        1,
    );
    assert!(
        err.contains(&format!("launcher layer {bogus}")) && err.contains("is not among"),
        "{err}"
    );

    // A run image without the launcher labels.
    let err = fails(
        s.relaunch(&[
            "decouple",
            &s.r("app", "built"),
            "--run-image",
            &s.r("run", "base"),
            "--tag",
            &out(),
        ]),
        1,
    );
    assert!(
        err.contains("advertises no launcher") && err.contains("io.buildpacks.run.launcher.path"),
        "{err}"
    );

    // Launcher files: not executable, not ELF, a directory, missing, without self-description.
    let launcher = std::fs::read(launcher_path()).unwrap();
    let cases = [
        (
            write_file(&w.dir.join("noexec"), &launcher, 0o644),
            "is not executable (mode 0644)",
        ),
        (
            write_file(&w.dir.join("script"), b"#!/bin/sh\necho hi\n", 0o755),
            "is not an ELF executable",
        ),
        (w.dir.display().to_string(), "is not a regular file"),
        (
            w.dir.join("missing").display().to_string(),
            "cannot read launcher",
        ),
        (
            write_file(
                &w.dir.join("bare-elf"),
                &std::fs::read("/bin/busybox").unwrap(),
                0o755,
            ),
            "no .cnb_launcher self-description",
        ),
    ];
    for (file, expected) in &cases {
        let err = fails(
            s.relaunch(&[
                "run-image",
                "add-launcher",
                &s.r("run", "base"),
                "--launcher",
                file,
                "--tag",
                &out(),
            ]),
            1,
        );
        assert!(err.contains(expected), "{file}: {err}");
        let err = fails(
            s.relaunch(&[
                "recouple",
                &s.r("app", "built"),
                "--launcher",
                file,
                "--tag",
                &out(),
            ]),
            1,
        );
        assert!(err.contains(expected), "recouple {file}: {err}");
    }

    // A path the app's own layers overwrite, and widening the declared APIs.
    let l = launcher_path();
    let l = l.to_str().unwrap();
    let err = fails(
        s.relaunch(&[
            "run-image",
            "add-launcher",
            &s.r("run", "base"),
            "--launcher",
            l,
            "--path",
            "/cnb/lifecycle/launcher",
            "--tag",
            &out(),
        ]),
        1,
    );
    assert!(err.contains("is under /cnb/lifecycle"), "{err}");
    let err = fails(
        s.relaunch(&[
            "run-image",
            "add-launcher",
            &s.r("run", "base"),
            "--launcher",
            l,
            "--platform-apis",
            "0.6,0.7",
            "--tag",
            &out(),
        ]),
        1,
    );
    assert!(err.contains("--platform-apis lists 0.6"), "{err}");

    assert!(
        !w.dir.join("images/out").exists(),
        "a failed command wrote something"
    );
}

#[test]
fn launcher_from_a_lifecycle_image_takes_its_apis_from_the_label() {
    let w = world();
    let s = &w.store;
    // A lifecycle-like image: /cnb/lifecycle/launcher without self-description (an ELF that
    // is not ours stands in for the Go launcher) and the io.buildpacks.lifecycle.apis label.
    let go_launcher = std::fs::read("/bin/busybox").unwrap();
    let layer = LayerBuilder::new()
        .entry(Entry::dir("/cnb", 0o755))
        .entry(Entry::dir("/cnb/lifecycle", 0o755))
        .entry(Entry::file("/cnb/lifecycle/launcher", 0o755, go_launcher))
        .build()
        .unwrap();
    let mut lifecycle = s.get("run", "base");
    mutate::append_layers(&mut lifecycle, vec![(layer, None)]).unwrap();
    let apis = r#"{"buildpack":{"deprecated":[],"supported":["0.9","0.10"]},"platform":{"deprecated":[],"supported":["0.10","0.11"]}}"#;
    mutate::set_labels(
        &mut lifecycle,
        [
            ("io.buildpacks.lifecycle.apis", Some(apis)),
            ("io.buildpacks.lifecycle.version", Some("0.21.17")),
        ],
    )
    .unwrap();
    s.put(&lifecycle, "lifecycle", "v0.21.17");

    ok(s.relaunch(&[
        "run-image",
        "add-launcher",
        &s.r("run", "base"),
        "--launcher",
        &s.r("lifecycle", "v0.21.17"),
        "--tag",
        &s.r("run", "go"),
    ]));
    let labels = s.get("run", "go").labels();
    assert_eq!(
        labels["io.buildpacks.run-image.launcher.platform-apis"],
        "0.10,0.11"
    );
    assert_eq!(
        labels["io.buildpacks.run-image.launcher.buildpack-apis"],
        "0.9,0.10"
    );
    assert_eq!(
        labels["io.buildpacks.run-image.launcher.version"],
        "0.21.17"
    );

    // Without the label the lists must come from flags.
    let mut unlabelled = lifecycle.clone();
    mutate::set_labels(&mut unlabelled, [("io.buildpacks.lifecycle.apis", None)]).unwrap();
    s.put(&unlabelled, "lifecycle", "unlabelled");
    let err = fails(
        s.relaunch(&[
            "run-image",
            "add-launcher",
            &s.r("run", "base"),
            "--launcher",
            &s.r("lifecycle", "unlabelled"),
            "--tag",
            &s.r("run", "x"),
        ]),
        1,
    );
    assert!(
        err.contains("pass --platform-apis, --buildpack-apis"),
        "{err}"
    );
    ok(s.relaunch(&[
        "run-image",
        "add-launcher",
        &s.r("run", "base"),
        "--launcher",
        &s.r("lifecycle", "unlabelled"),
        "--platform-apis",
        "0.10",
        "--buildpack-apis",
        "0.10",
        "--tag",
        &s.r("run", "flags"),
    ]));
    assert_eq!(
        s.get("run", "flags").labels()["io.buildpacks.run-image.launcher.version"],
        "0.21.17"
    );
}

#[test]
fn recouple_restores_the_exporters_launcher_layer() {
    let w = world();
    let s = &w.store;
    let l = launcher_path();
    ok(s.relaunch(&[
        "decouple",
        &s.r("app", "built"),
        "--tag",
        &s.r("app", "decoupled"),
    ]));
    ok(s.relaunch(&[
        "recouple",
        &s.r("app", "decoupled"),
        "--launcher",
        l.to_str().unwrap(),
        "--tag",
        &s.r("app", "recoupled"),
    ]));
    let recoupled = s.get("app", "recoupled");
    let (before, _) = lifecycle_metadata(&w.built).unwrap();
    let (after, index) = lifecycle_metadata(&recoupled).unwrap();
    // Same bytes as the exporter's layer: same diffID, so registries dedupe it.
    assert_eq!(after.launcher.sha, before.launcher.sha);
    assert_eq!(recoupled.diff_ids(), w.built.diff_ids());
    assert_eq!(recoupled.history(), w.built.history());
    let label: Value =
        serde_json::from_str(&recoupled.label(LIFECYCLE_METADATA_LABEL).unwrap()).unwrap();
    assert_eq!(label["launcher"]["type"], "binary");
    assert!(label["launcher"].get("target").is_none());
    let inspected: Value = serde_json::from_str(&ok(s.relaunch(&[
        "inspect",
        &s.r("app", "recoupled"),
        "--json",
    ])))
    .unwrap();
    assert_eq!(inspected["cnb"]["runs"]["path"], "/cnb/lifecycle/launcher");
    assert_eq!(inspected["cnb"]["launcher"]["layerIndex"], index);
    // Recoupling again is a no-op.
    let out = ok(s.relaunch(&[
        "recouple",
        &s.r("app", "recoupled"),
        "--launcher",
        l.to_str().unwrap(),
        "--tag",
        &s.r("app", "again"),
    ]));
    assert!(out.contains("unchanged"), "{out}");
    assert!(!s.exists("app", "again"));
}
