//! `relaunch copy` and `relaunch inspect` against OCI layouts and real registries.

use std::path::Path;
use std::process::{Command, Output};

use relaunch_oci::layer::{Entry, LayerBuilder};
use relaunch_oci::mutate::{self, History};
use relaunch_oci::v1::{Flavor, Index};
use relaunch_oci::{write_image, write_index, Image, IndexManifest, Layout, NoProgress};
use relaunch_testkit::{skopeo_inspect, umoci_unpack, Auth, Registry};
use serde_json::{json, Value};

fn relaunch(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_relaunch"));
    cmd.args(args).env_remove("CNB_INSECURE_REGISTRIES");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "relaunch failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn layer(path: &str, content: &str) -> relaunch_oci::Layer {
    let parent = &path[..path.rfind('/').unwrap()];
    LayerBuilder::new()
        .entry(Entry::dir(parent, 0o755))
        .entry(Entry::file(path, 0o755, content))
        .build()
        .unwrap()
}

/// A CNB-shaped app image: 2 run-image layers, an app layer, the launcher layer, with the
/// lifecycle metadata label pointing at them.
fn app_image(arch: &str) -> Image {
    let mut img = Image::new(
        Flavor::Oci,
        json!({"architecture": arch, "os": "linux", "config": {}}),
    )
    .unwrap();
    let layers = vec![
        (
            layer("/run/base", "base"),
            Some(History::created_by("run layer", "1980-01-01T00:00:01Z")),
        ),
        (
            layer("/run/top", arch),
            Some(History::created_by("run top", "1980-01-01T00:00:01Z")),
        ),
        (
            layer("/workspace/app", "app"),
            Some(History::created_by(
                "Application Layer",
                "1980-01-01T00:00:01Z",
            )),
        ),
        (
            layer("/cnb/lifecycle/launcher", "launcher-content"),
            Some(History::created_by(
                "Buildpacks Application Launcher",
                "1980-01-01T00:00:01Z",
            )),
        ),
    ];
    mutate::append_layers(&mut img, layers).unwrap();
    let ids = img.diff_ids();
    let meta = json!({
        "launcher": {"sha": ids[3].to_string()},
        "runImage": {"topLayer": ids[1].to_string(), "reference": "example/run@sha256:00"},
    });
    mutate::set_labels(
        &mut img,
        [(
            "io.buildpacks.lifecycle.metadata",
            Some(meta.to_string().as_str()),
        )],
    )
    .unwrap();
    img
}

fn layout_with_app(dir: &Path) -> String {
    let layout = Layout::create(dir).unwrap();
    let report = write_image(&app_image("amd64"), &layout, &["app".into()], &NoProgress).unwrap();
    report.digest.unwrap().to_string()
}

#[test]
fn copy_layout_to_layout_preserves_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let digest = layout_with_app(&src);
    let dst = tmp.path().join("dst");
    let out = ok(relaunch(
        &[
            "copy",
            &format!("oci:{}:app", src.display()),
            &format!("oci:{}:copied", dst.display()),
        ],
        &[],
    ));
    assert_eq!(out.trim(), digest);
    assert_eq!(
        skopeo_inspect(&format!("oci:{}:copied", dst.display()), &[])["Digest"],
        digest
    );
    let bundle = tmp.path().join("bundle");
    umoci_unpack(&dst, "copied", &bundle);
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/cnb/lifecycle/launcher")).unwrap(),
        "launcher-content"
    );
}

#[test]
fn inspect_reports_layers_and_launcher_facts() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let digest = layout_with_app(&src);
    let r: Value = serde_json::from_str(&ok(relaunch(
        &["inspect", "--json", &format!("oci:{}:app", src.display())],
        &[],
    )))
    .unwrap();
    assert_eq!(r["digest"], digest);
    assert_eq!(r["layers"].as_array().unwrap().len(), 4);
    assert_eq!(
        r["layers"][3]["createdBy"],
        "Buildpacks Application Launcher"
    );
    assert_eq!(r["cnb"]["launcher"]["layerIndex"], 3);
    assert_eq!(r["cnb"]["launcher"]["sha"], r["layers"][3]["diffID"]);
    assert_eq!(r["cnb"]["runImage"]["topLayerIndex"], 1);
    assert_eq!(r["cnb"]["launcher"]["aboveRunImage"], true);
    assert_eq!(r["platform"], "linux/amd64");

    let text = ok(relaunch(
        &["inspect", &format!("oci:{}:app", src.display())],
        &[],
    ));
    assert!(text.contains("launcher layer:     3 of 4"), "{text}");
}

#[test]
fn bad_references_fail_with_a_clear_message() {
    let out = relaunch(&["inspect", "oci:/nonexistent/layout:t"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("OCI layout (oci-layout file) not found in /nonexistent/layout"),
        "{err}"
    );
    let out = relaunch(&["inspect", "Bad/Name"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid image reference"));
}

#[test]
fn copy_through_registry_mounts_between_repositories() {
    let registry = Registry::start(Auth::Basic);
    let host = registry.host();
    let config = registry.docker_config_dir();
    let env = [("DOCKER_CONFIG", config.as_path())];
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let digest = layout_with_app(&src);
    let insecure = ["--insecure-registry", host.as_str()];

    let push = ok(relaunch(
        &[
            &insecure[..],
            &[
                "copy",
                "--json",
                &format!("oci:{}:app", src.display()),
                &format!("{host}/team/app:v1"),
            ],
        ]
        .concat(),
        &env,
    ));
    let push: Value = serde_json::from_str(&push).unwrap();
    assert_eq!(push["digest"], digest);
    assert_eq!(push["blobs"]["uploaded"], 4);

    let mount = ok(relaunch(
        &[
            &insecure[..],
            &[
                "copy",
                "--json",
                &format!("{host}/team/app:v1"),
                &format!("{host}/other/app:v1"),
            ],
        ]
        .concat(),
        &env,
    ));
    let mount: Value = serde_json::from_str(&mount).unwrap();
    assert_eq!(mount["digest"], digest);
    assert_eq!(
        (
            mount["blobs"]["mounted"].as_u64(),
            mount["blobs"]["uploaded"].as_u64()
        ),
        (Some(4), Some(0))
    );

    let again = ok(relaunch(
        &[
            &insecure[..],
            &[
                "copy",
                "--json",
                &format!("{host}/team/app:v1"),
                &format!("{host}/other/app:v2"),
            ],
        ]
        .concat(),
        &env,
    ));
    assert_eq!(
        serde_json::from_str::<Value>(&again).unwrap()["blobs"]["skipped"],
        4
    );

    // The insecure list also comes from CNB_INSECURE_REGISTRIES (comma-separated).
    let back = tmp.path().join("back");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_relaunch"));
    cmd.args([
        "copy",
        &format!("{host}/other/app:v1"),
        &format!("oci:{}:back", back.display()),
    ])
    .env("DOCKER_CONFIG", &config)
    .env("CNB_INSECURE_REGISTRIES", format!("example.invalid,{host}"));
    assert_eq!(ok(cmd.output().unwrap()).trim(), digest);
    assert_eq!(
        skopeo_inspect(&format!("oci:{}:back", back.display()), &[])["Digest"],
        digest
    );
    let inspected = skopeo_inspect(
        &format!("docker://{host}/other/app:v1"),
        &["--authfile", config.join("config.json").to_str().unwrap()],
    );
    assert_eq!(inspected["Digest"], digest);
}

#[test]
fn copy_index_all_platforms_and_one_platform() {
    let registry = Registry::start(Auth::Anonymous);
    let host = registry.host();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let layout = Layout::create(&src).unwrap();
    let children = vec![app_image("amd64"), app_image("arm64")];
    let mut index = Index::empty_oci();
    index.manifests = children
        .iter()
        .map(IndexManifest::child_descriptor)
        .collect();
    let index = IndexManifest::new(index);
    let report = write_index(&index, &children, &layout, &["multi".into()], &NoProgress).unwrap();
    let index_digest = report.digest.unwrap().to_string();
    skopeo_inspect(&format!("oci:{}:multi", src.display()), &["--raw"]);

    let insecure = ["--insecure-registry", host.as_str()];
    let out = ok(relaunch(
        &[
            &insecure[..],
            &[
                "copy",
                &format!("oci:{}:multi", src.display()),
                &format!("{host}/multi:1"),
            ],
        ]
        .concat(),
        &[],
    ));
    assert_eq!(out.trim(), index_digest);
    let r: Value = serde_json::from_str(&ok(relaunch(
        &[
            &insecure[..],
            &["inspect", "--json", &format!("{host}/multi:1")],
        ]
        .concat(),
        &[],
    )))
    .unwrap();
    let platforms: Vec<&str> = r["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);

    let one = tmp.path().join("one");
    let out = ok(relaunch(
        &[
            &insecure[..],
            &[
                "copy",
                "--platform",
                "linux/arm64",
                &format!("{host}/multi:1"),
                &format!("oci:{}:arm", one.display()),
            ],
        ]
        .concat(),
        &[],
    ));
    assert_eq!(out.trim(), children[1].digest().to_string());
    assert_eq!(
        skopeo_inspect(&format!("oci:{}:arm", one.display()), &[])["Architecture"],
        "arm64"
    );
}
