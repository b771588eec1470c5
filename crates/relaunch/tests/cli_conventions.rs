//! What a pipeline expects of a Unix tool: a closed stdout ends it quietly, an error names
//! its cause once, `oci:` references mean what they mean to skopeo, and a hostile layout
//! cannot redirect writes outside itself.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use relaunch_oci::layer::{Entry, LayerBuilder};
use relaunch_oci::v1::Flavor;
use relaunch_oci::{write_image, Image, Layout, NoProgress};
use serde_json::json;

fn relaunch() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_relaunch"));
    cmd.env_remove("CNB_INSECURE_REGISTRIES");
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `oci:<dir>:t` holding a one-layer image.
fn layout_image(dir: &Path) -> String {
    let mut img = Image::new(
        Flavor::Oci,
        json!({"architecture": "amd64", "os": "linux", "config": {}}),
    )
    .unwrap();
    let layer = LayerBuilder::new()
        .entry(Entry::file("/hello", 0o644, "hello"))
        .build()
        .unwrap();
    img.set_layers(vec![layer]).unwrap();
    let layout = Layout::create(dir).unwrap();
    write_image(&img, &layout, &["t".into()], &NoProgress).unwrap();
    format!("oci:{}:t", dir.display())
}

/// Before: `relaunch inspect … --json | head -0` panicked ("Broken pipe", exit 134).
#[test]
fn closed_stdout_ends_quietly_like_a_unix_tool() {
    let tmp = tempfile::tempdir().unwrap();
    let image = layout_image(&tmp.path().join("l"));
    for args in [
        vec!["inspect", &image as &str, "--json"],
        vec!["inspect", &image],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader); // closed before relaunch writes a byte
        let out = relaunch()
            .args(&args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(141), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}

/// Before: `…: Not a directory (os error 20): Not a directory (os error 20)`.
#[test]
fn errors_name_their_cause_once() {
    let tmp = tempfile::tempdir().unwrap();
    let image = layout_image(&tmp.path().join("l"));
    let file = tmp.path().join("file");
    std::fs::write(&file, "not a directory").unwrap();
    let target = format!("oci:{}:t", file.join("sub").display());
    let out = relaunch().args(["copy", &image, &target]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.matches("Not a directory").count(), 1, "{err}");
    assert!(err.starts_with("ERROR: "), "{err}");
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "relaunch failed: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// `oci:` references as skopeo (containers/image) parses them, both ways: the directory
/// ends at the first ':', the image name may hold ':'. Before: relaunch split at the last
/// ':' and wrote a layout named `<dir>:app`.
#[test]
fn oci_references_interoperate_with_skopeo_both_ways() {
    let tmp = tempfile::tempdir().unwrap();
    let src = layout_image(&tmp.path().join("src"));
    let from_skopeo = tmp.path().join("from-skopeo");
    let by_skopeo = format!("oci:{}:app:binary", from_skopeo.display());
    relaunch_testkit::skopeo_copy(&format!("oci:{}", &src["oci:".len()..]), &by_skopeo, &[]);
    let inspected: serde_json::Value = serde_json::from_str(&ok(relaunch()
        .args(["inspect", "--json", &by_skopeo])
        .output()
        .unwrap()))
    .unwrap();
    let digest = inspected["digest"].as_str().unwrap().to_string();
    assert_eq!(
        relaunch_testkit::skopeo_inspect(&by_skopeo, &[])["Digest"],
        digest.as_str()
    );

    let from_relaunch = tmp.path().join("from-relaunch");
    let by_relaunch = format!("oci:{}:registry.io/app:v1", from_relaunch.display());
    ok(relaunch()
        .args(["copy", &by_skopeo, &by_relaunch])
        .output()
        .unwrap());
    assert!(!tmp.path().join("from-relaunch:registry.io").exists());
    assert_eq!(
        relaunch_testkit::skopeo_inspect(&by_relaunch, &[])["Digest"],
        digest.as_str()
    );
    // `@sha256:…` selects by digest.
    let by_digest = format!("oci:{}@{digest}", from_relaunch.display());
    let again: serde_json::Value = serde_json::from_str(&ok(relaunch()
        .args(["inspect", "--json", &by_digest])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(again["digest"], digest.as_str());
}

/// Before: with `<layout>/blobs` a symlink, `relaunch copy … oci:<layout>:x` wrote the
/// blobs into the directory it points at.
#[test]
fn copy_into_a_layout_with_symlinked_blobs_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let image = layout_image(&tmp.path().join("src"));
    let target = tmp.path().join("target");
    Layout::create(&target).unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::remove_dir_all(target.join("blobs")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, target.join("blobs")).unwrap();
    let out = relaunch()
        .args(["copy", &image, &format!("oci:{}:x", target.display())])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("is a symlink; refusing to write blobs outside the layout"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}
