//! `relaunch copy` and `relaunch inspect` against OCI layouts and real registries.

use std::path::Path;
use std::process::{Command, Output};

use relaunch_oci::layer::{Entry, LayerBuilder};
use relaunch_oci::mutate::{self, History};
use relaunch_oci::v1::{Flavor, Index};
use relaunch_oci::{
    media_type, write_image, write_index, Child, Descriptor, Digest, Image, IndexManifest, Layout,
    ManifestRef, NoProgress, RawManifest, Transport,
};
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
    let output = relaunch(
        &[
            "copy",
            &format!("oci:{}:app", src.display()),
            &format!("oci:{}:copied", dst.display()),
        ],
        &[],
    );
    // stderr is not a terminal here: no progress bar, just the summary line.
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        stderr.starts_with("copied ") && stderr.lines().count() == 1,
        "{stderr}"
    );
    let out = ok(output);
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

    // A retag within one repository finds every blob present.
    let again = ok(relaunch(
        &[
            &insecure[..],
            &[
                "copy",
                "--json",
                &format!("{host}/other/app:v1"),
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
    let children: Vec<Child> = children.into_iter().map(Child::from).collect();
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

/// Stores `bytes` as a blob of `layout` and returns its descriptor.
fn put_blob(layout: &Layout, media_type: &str, bytes: &[u8]) -> Descriptor {
    let digest = Digest::of(bytes);
    layout
        .put_blob(&digest, bytes.len() as u64, &mut &bytes[..])
        .unwrap();
    Descriptor::new(media_type, digest, bytes.len() as u64)
}

/// Stores a manifest by digest and returns its descriptor.
fn put_manifest(layout: &Layout, manifest: &Value) -> Descriptor {
    let raw = RawManifest {
        media_type: media_type::OCI_MANIFEST.into(),
        bytes: serde_json::to_vec(manifest).unwrap(),
    };
    layout
        .put_manifest(&ManifestRef::Digest(raw.digest()), &raw)
        .unwrap();
    raw.descriptor()
}

/// An index holding an image, an OCI 1.1 artifact (SBOM with the empty config, `subject`
/// naming the image) and a BuildKit-style attestation (image config type, no rootfs).
#[test]
fn copy_index_with_artifact_manifests() {
    let registry = Registry::start(Auth::Anonymous);
    let host = registry.host();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let layout = Layout::create(&src).unwrap();
    let image = app_image("amd64");
    write_image(&image, &layout, &[], &NoProgress).unwrap();
    let image_desc = IndexManifest::child_descriptor(&image);

    let empty = put_blob(&layout, "application/vnd.oci.empty.v1+json", b"{}");
    let sbom = put_blob(
        &layout,
        "application/spdx+json",
        br#"{"spdxVersion":"SPDX-2.3"}"#,
    );
    let artifact = put_manifest(
        &layout,
        &json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_MANIFEST,
            "artifactType": "application/spdx+json",
            "config": empty,
            "layers": [sbom],
            "subject": {"mediaType": image_desc.media_type, "digest": image_desc.digest, "size": image_desc.size},
        }),
    );
    let statement = put_blob(&layout, "application/vnd.in-toto+json", br#"{"_type":"x"}"#);
    let att_config = put_blob(
        &layout,
        media_type::OCI_CONFIG,
        br#"{"architecture":"unknown","os":"unknown"}"#,
    );
    let mut attestation = put_manifest(
        &layout,
        &json!({"schemaVersion": 2, "mediaType": media_type::OCI_MANIFEST, "config": att_config, "layers": [statement]}),
    );
    attestation.platform = Some(relaunch_oci::Platform::parse("unknown/unknown").unwrap());
    let mut index = Index::empty_oci();
    index.manifests = vec![image_desc, artifact.clone(), attestation.clone()];
    let index = IndexManifest::new(index);
    layout
        .put_manifest(&ManifestRef::Tag("multi".into()), &index.raw)
        .unwrap();
    let index_digest = index.raw.digest().to_string();

    // layout → registry → other repository (mounts) → layout: every byte kept.
    let insecure = ["--insecure-registry", host.as_str()];
    let copy = |from: String, to: String| {
        let out = ok(relaunch(
            &[&insecure[..], &["copy", "--json", &from, &to]].concat(),
            &[],
        ));
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let pushed = copy(
        format!("oci:{}:multi", src.display()),
        format!("{host}/multi:1"),
    );
    assert_eq!(pushed["digest"], index_digest);
    let mounted = copy(format!("{host}/multi:1"), format!("{host}/other:1"));
    assert_eq!(mounted["digest"], index_digest);
    assert_eq!(mounted["blobs"]["uploaded"], 0, "{mounted}");
    let back = tmp.path().join("back");
    let pulled = copy(
        format!("{host}/other:1"),
        format!("oci:{}:multi", back.display()),
    );
    assert_eq!(pulled["digest"], index_digest);
    let back_layout = Layout::open(&back).unwrap();
    for d in [
        &empty,
        &sbom,
        &statement,
        &att_config,
        &artifact,
        &attestation,
    ] {
        assert_eq!(back_layout.blob_size(&d.digest).unwrap(), Some(d.size));
    }
    // skopeo, an independent client, copies every manifest and blob of the index.
    let checked = tmp.path().join("skopeo");
    relaunch_testkit::skopeo_copy(
        &format!("docker://{host}/other:1"),
        &format!("oci:{}:all", checked.display()),
        &["--all", "--preserve-digests"],
    );
    let copied = Layout::open(&checked).unwrap();
    assert_eq!(
        copied.resolve(Some("all")).unwrap().digest.to_string(),
        index_digest
    );
    assert_eq!(copied.blob_size(&sbom.digest).unwrap(), Some(sbom.size));

    // Asked for as an image, an artifact is a clear error naming what it is.
    let out = relaunch(
        &[
            "inspect",
            &format!("oci:{}@{}", back.display(), artifact.digest),
        ],
        &[],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("manifest {}", artifact.digest))
            && err.contains("artifact (application/spdx+json), not a container image"),
        "{err}"
    );
}
