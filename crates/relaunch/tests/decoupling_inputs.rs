//! Bad input to the launcher commands gives a clear error and writes nothing; launchers
//! from lifecycle images; recoupling restores the exporter's launcher layer.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use relaunch_lifecycle::app::lifecycle_metadata;
use relaunch_lifecycle::descriptor::LauncherBinary;
use relaunch_lifecycle::metadata::LIFECYCLE_METADATA_LABEL;
use relaunch_oci::layer::{Entry, LayerBuilder};
use relaunch_oci::{mutate, Image};
use relaunch_testkit::{Auth, Registry};
use serde_json::Value;
use support::{base_run_image, export_built, fails, launcher_path, ok, stamp, Store};

/// run:base, run:v1 (stamped), app:built (exported onto run:v1 at Platform API 0.10).
struct World {
    _scratch: tempfile::TempDir,
    dir: PathBuf,
    store: Store,
    built: Image,
}

fn world(store: impl FnOnce(&Path) -> Store) -> World {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().to_path_buf();
    let store = store(&dir);
    base_run_image(&store, &dir);
    let launcher = launcher_path();
    stamp(&store, &launcher, "v1", &[]);
    let run_v1 = store.get("run", "v1");
    let built = export_built(
        &store,
        &run_v1,
        "v1",
        &LauncherBinary::from_file(&launcher).unwrap(),
    );
    World {
        _scratch: scratch,
        dir,
        store,
        built,
    }
}

fn on_a_layout() -> World {
    world(|dir| Store::Layout(dir.join("images")))
}

fn on_a_registry() -> World {
    world(|_| Store::Registry(Registry::start(Auth::Anonymous)))
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> String {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn bad_inputs_are_named_and_nothing_is_written_on_a_layout() {
    bad_inputs_are_named_and_nothing_is_written(on_a_layout());
}

#[test]
fn bad_inputs_are_named_and_nothing_is_written_on_a_registry() {
    bad_inputs_are_named_and_nothing_is_written(on_a_registry());
}

fn bad_inputs_are_named_and_nothing_is_written(w: World) {
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

    assert!(!s.exists("out", "x"), "a failed command wrote something");
}

#[test]
fn launcher_from_a_lifecycle_image_takes_its_apis_from_the_label() {
    let w = on_a_layout();
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
fn recouple_restores_the_exporters_launcher_layer_on_a_layout() {
    recouple_restores_the_exporters_launcher_layer(on_a_layout());
}

#[test]
fn recouple_restores_the_exporters_launcher_layer_on_a_registry() {
    recouple_restores_the_exporters_launcher_layer(on_a_registry());
}

fn recouple_restores_the_exporters_launcher_layer(w: World) {
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
    let run_v1 = s.get("run", "v1");
    let ann = recoupled.annotations();
    assert_eq!(
        ann["org.opencontainers.image.base.name"],
        s.r("run", "v1").as_str()
    );
    assert_eq!(
        ann["org.opencontainers.image.base.digest"],
        run_v1.digest().as_str()
    );
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

/// When the run image `runImage.reference` names cannot be read, decouple falls back to the
/// launcher labels the app inherited at export, and says so.
#[test]
fn unreadable_run_image_falls_back_to_the_inherited_labels() {
    let w = on_a_layout();
    let s = &w.store;
    let mut moved = w.built.clone();
    let mut md: Value =
        serde_json::from_str(&moved.label(LIFECYCLE_METADATA_LABEL).unwrap()).unwrap();
    let gone = s.digest_ref("gone", &s.get("run", "v1").digest());
    md["runImage"]["reference"] = gone.into();
    mutate::set_labels(
        &mut moved,
        [(LIFECYCLE_METADATA_LABEL, Some(md.to_string().as_str()))],
    )
    .unwrap();
    s.put(&moved, "app", "moved");
    let out = s.relaunch(&[
        "decouple",
        &s.r("app", "moved"),
        "--tag",
        &s.r("app", "decoupled"),
    ]);
    let err = support::stderr(&out);
    ok(out);
    assert!(err.contains("inherited from its run image"), "{err}");
    let (md, _) = lifecycle_metadata(&s.get("app", "decoupled")).unwrap();
    assert_eq!(
        md.launcher.target.as_deref(),
        Some("/usr/local/bin/launcher")
    );
    let inspected: Value = serde_json::from_str(&ok(s.relaunch(&[
        "inspect",
        &s.r("app", "decoupled"),
        "--json",
    ])))
    .unwrap();
    let runs = &inspected["cnb"]["runs"];
    assert!(
        runs["source"].as_str().unwrap().contains("inherited"),
        "{inspected:#}"
    );
}
