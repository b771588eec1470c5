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

/// The scenario `$scenario(World)` as one test per store.
macro_rules! on_both_stores {
    ($scenario:ident: $on_a_layout:ident, $on_a_registry:ident) => {
        #[test]
        fn $on_a_layout() {
            $scenario(on_a_layout());
        }

        #[test]
        fn $on_a_registry() {
            $scenario(on_a_registry());
        }
    };
}

/// `image` with its lifecycle metadata label changed by `edit`.
fn with_lifecycle_metadata(image: &Image, edit: impl FnOnce(&mut Value)) -> Image {
    let mut md: Value =
        serde_json::from_str(&image.label(LIFECYCLE_METADATA_LABEL).unwrap()).unwrap();
    edit(&mut md);
    let mut edited = image.clone();
    mutate::set_labels(
        &mut edited,
        [(LIFECYCLE_METADATA_LABEL, Some(md.to_string().as_str()))],
    )
    .unwrap();
    edited
}

on_both_stores!(bad_inputs_are_named_and_nothing_is_written:
    bad_inputs_are_named_and_nothing_is_written_on_a_layout,
    bad_inputs_are_named_and_nothing_is_written_on_a_registry);

fn bad_inputs_are_named_and_nothing_is_written(w: World) {
    let s = &w.store;
    let out = || s.r("out", "x");

    // An app image without lifecycle metadata (the plain run image).
    let err = fails(s.decouple(&s.r("run", "base"), &out(), &[]), 1);
    assert!(
        err.contains("no io.buildpacks.lifecycle.metadata label"),
        "{err}"
    );
    let err = fails(s.relaunch(&["check", &s.r("run", "base")]), 1);
    assert!(err.contains("not a CNB app image"), "{err}");

    // launcher.sha naming no layer of the image.
    let bogus = format!("sha256:{}", "0".repeat(64));
    let lost = with_lifecycle_metadata(&w.built, |md| {
        md["launcher"]["sha"] = bogus.clone().into();
    });
    s.put(&lost, "app", "lost");
    let err = fails(s.decouple(&s.r("app", "lost"), &out(), &[]), 1);
    assert!(
        err.contains(&format!("launcher layer {bogus}")) && err.contains("is not among"),
        "{err}"
    );

    // A run image without the launcher labels.
    let err = fails(
        s.decouple(
            &s.r("app", "built"),
            &out(),
            &["--run-image", &s.r("run", "base")],
        ),
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
        let err = fails(s.add_launcher(&s.r("run", "base"), file, &out(), &[]), 1);
        assert!(err.contains(expected), "{file}: {err}");
        let err = fails(s.recouple(&s.r("app", "built"), file, &out()), 1);
        assert!(err.contains(expected), "recouple {file}: {err}");
    }

    // A path the app's own layers overwrite, and widening the declared APIs.
    let l = launcher_path();
    let l = l.to_str().unwrap();
    for (extra, expected) in [
        (
            ["--path", "/cnb/lifecycle/launcher"],
            "is under /cnb/lifecycle",
        ),
        (["--platform-apis", "0.6,0.7"], "--platform-apis lists 0.6"),
    ] {
        let err = fails(s.add_launcher(&s.r("run", "base"), l, &out(), &extra), 1);
        assert!(err.contains(expected), "{err}");
    }

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

    ok(s.add_launcher(
        &s.r("run", "base"),
        &s.r("lifecycle", "v0.21.17"),
        &s.r("run", "go"),
        &[],
    ));
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
    let unlabelled_ref = s.r("lifecycle", "unlabelled");
    let err = fails(
        s.add_launcher(&s.r("run", "base"), &unlabelled_ref, &s.r("run", "x"), &[]),
        1,
    );
    assert!(
        err.contains("pass --platform-apis, --buildpack-apis"),
        "{err}"
    );
    ok(s.add_launcher(
        &s.r("run", "base"),
        &unlabelled_ref,
        &s.r("run", "flags"),
        &["--platform-apis", "0.10", "--buildpack-apis", "0.10"],
    ));
    assert_eq!(
        s.get("run", "flags").labels()["io.buildpacks.run-image.launcher.version"],
        "0.21.17"
    );
}

on_both_stores!(recouple_restores_the_exporters_launcher_layer:
    recouple_restores_the_exporters_launcher_layer_on_a_layout,
    recouple_restores_the_exporters_launcher_layer_on_a_registry);

fn recouple_restores_the_exporters_launcher_layer(w: World) {
    let s = &w.store;
    let l = launcher_path();
    let l = l.to_str().unwrap();
    ok(s.decouple(&s.r("app", "built"), &s.r("app", "decoupled"), &[]));
    ok(s.recouple(&s.r("app", "decoupled"), l, &s.r("app", "recoupled")));
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
    // Recoupling again changes nothing but still writes the requested tag.
    let out = ok(s.recouple(&s.r("app", "recoupled"), l, &s.r("app", "again")));
    let digest = s.get("app", "recoupled").digest();
    assert!(
        out.contains("unchanged") && out.contains(digest.as_str()),
        "{out}"
    );
    assert_eq!(s.get("app", "again").digest(), digest);
}

/// When the run image `runImage.reference` names is gone, decouple falls back to the
/// launcher labels the app inherited at export, and says so.
#[test]
fn gone_run_image_falls_back_to_the_inherited_labels() {
    let w = on_a_layout();
    let s = &w.store;
    let gone = s.digest_ref("gone", &s.get("run", "v1").digest());
    let moved = with_lifecycle_metadata(&w.built, |md| {
        md["runImage"]["reference"] = gone.into();
    });
    s.put(&moved, "app", "moved");
    let out = s.decouple(&s.r("app", "moved"), &s.r("app", "decoupled"), &[]);
    let err = support::stderr(&out);
    ok(out);
    assert!(err.contains("inherited from its run image"), "{err}");
    assert!(err.contains("is gone"), "{err}");
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

/// A registry answering 404 for the run image's manifest: gone, so the inherited labels
/// stand in (with a warning naming why).
#[test]
fn run_image_unknown_to_its_registry_falls_back_to_the_inherited_labels() {
    let w = on_a_registry();
    let s = &w.store;
    let gone = s.digest_ref("gone", &s.get("run", "v1").digest());
    let moved = with_lifecycle_metadata(&w.built, |md| {
        md["runImage"]["reference"] = gone.clone().into();
    });
    s.put(&moved, "app", "moved");
    let out = s.decouple(&s.r("app", "moved"), &s.r("app", "decoupled"), &[]);
    let err = support::stderr(&out);
    ok(out);
    assert!(
        err.contains(&format!("run image {gone} (runImage.reference) is gone")),
        "{err}"
    );
    assert!(s.exists("app", "decoupled"));
}

/// Any failure other than "gone" (here: nothing listens where the run image's registry
/// should be; a manifest whose config blob is missing) is an error: stale inherited labels
/// could call the app compatible. Nothing is written.
#[test]
fn unreadable_run_image_is_an_error_not_a_fallback() {
    let w = on_a_layout();
    let s = &w.store;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let run_digest = s.get("run", "v1").digest();
    let unreachable = format!("127.0.0.1:{closed}/run@{run_digest}");
    let broken_dir = w.dir.join("broken-run");
    copy_dir(&w.dir.join("images/run"), &broken_dir);
    let config = s.get("run", "v1").raw_manifest();
    let config: Value = serde_json::from_slice(&config.bytes).unwrap();
    let config_hex = config["config"]["digest"].as_str().unwrap()["sha256:".len()..].to_string();
    std::fs::remove_file(broken_dir.join("blobs/sha256").join(config_hex)).unwrap();
    let broken = format!("oci:{}@{run_digest}", broken_dir.display());
    for reference in [unreachable, broken] {
        let moved = with_lifecycle_metadata(&w.built, |md| {
            md["runImage"]["reference"] = reference.clone().into();
        });
        s.put(&moved, "app", "moved");
        for args in [
            vec![
                "decouple",
                &s.r("app", "moved") as &str,
                "--tag",
                &s.r("app", "out"),
            ],
            vec!["check", &s.r("app", "moved")],
        ] {
            let err = fails(s.relaunch(&args), 1);
            assert!(
                err.contains(&format!(
                    "cannot read run image {reference} (runImage.reference)"
                )),
                "{err}"
            );
            assert!(!err.contains("inherited"), "{err}");
        }
        assert!(!s.exists("app", "out"));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}
