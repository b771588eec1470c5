//! Conventions a pipeline expects of a Unix tool: a closed stdout ends it quietly, and an
//! error names its cause once.

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
