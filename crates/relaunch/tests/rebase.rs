//! `relaunch rebase` end to end against a real registry (anonymous and token auth) and an
//! OCI layout: a reference-style rebase, idempotency, a `--decouple` rebase, a
//! `--launcher-image` swap, launcher validation and the refusals — each result checked
//! with skopeo and run with umoci + runc.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use relaunch_lifecycle::app::lifecycle_metadata;
use relaunch_lifecycle::descriptor::LauncherBinary;
use relaunch_lifecycle::fixtures::{bumped_version, with_launcher_version};
use relaunch_lifecycle::rebase::STACK_ID_LABEL as STACK_ID;
use relaunch_oci::{mutate, Image};
use relaunch_testkit::{skopeo_inspect, umoci_unpack, Auth, Registry};
use serde_json::Value;
use support::{
    base_run_image, export_built, fails, launcher_path, ok, run_container, stamp, stderr, Store,
};

#[test]
fn rebase_on_a_registry() {
    let scratch = tempfile::tempdir().unwrap();
    story(
        &Store::Registry(Registry::start(Auth::Anonymous)),
        scratch.path(),
    );
}

#[test]
fn rebase_on_a_registry_with_token_auth() {
    let scratch = tempfile::tempdir().unwrap();
    story(
        &Store::Registry(Registry::start(Auth::Token)),
        scratch.path(),
    );
}

#[test]
fn rebase_on_an_oci_layout() {
    let scratch = tempfile::tempdir().unwrap();
    story(
        &Store::Layout(scratch.path().join("images")),
        scratch.path(),
    );
}

fn md(image: &Image) -> Value {
    serde_json::from_str(&image.label("io.buildpacks.lifecycle.metadata").unwrap()).unwrap()
}

fn json(out: std::process::Output) -> Value {
    serde_json::from_str(&ok(out)).unwrap()
}

/// Runs `repo:tag` and returns the container's stdout; `symlink` says whether the app's
/// launcher must be a symlink into the run image.
fn run_app(store: &Store, repo: &str, tag: &str, scratch: &Path, symlink: bool) -> String {
    let layout = store.layout_of(repo, tag, scratch);
    let bundle = scratch.join(format!("bundle-{repo}-{tag}"));
    umoci_unpack(&layout, tag, &bundle);
    let link = std::fs::read_link(bundle.join("rootfs/cnb/lifecycle/launcher"));
    assert_eq!(link.is_ok(), symlink, "{link:?}");
    run_container(&bundle)
}

/// A copy of the launcher under test whose self-description says `version`.
fn launcher_v(launcher: &LauncherBinary, version: &str, scratch: &Path) -> String {
    let path = scratch.join(format!("launcher-{version}"));
    std::fs::write(
        &path,
        with_launcher_version(&launcher.bytes, version).unwrap(),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_string()
}

fn story(store: &Store, scratch: &Path) {
    let launcher = launcher_path();
    let v1 = LauncherBinary::from_file(&launcher).unwrap();
    let v1_version = v1.descriptor.clone().unwrap().version;
    let v2_version = bumped_version(&v1_version);
    let v2_path = launcher_v(&v1, &v2_version, scratch);
    // Apps at Platform API < 0.12 are checked by stack id, so the run image has one.
    let mut base = base_run_image(store, scratch);
    mutate::set_labels(
        &mut base,
        [(STACK_ID, Some("io.buildpacks.stacks.relaunch"))],
    )
    .unwrap();
    store.put(&base, "run", "base");
    stamp(store, &launcher, "v1", &[]);
    stamp(store, Path::new(&v2_path), "v2", &[]);
    // A run image whose launcher cannot start a Platform 0.10 app.
    stamp(
        store,
        &launcher,
        "narrow",
        &["--platform-apis", "0.12", "--buildpack-apis", "0.10"],
    );
    let run_v1 = store.get("run", "v1");
    let run_v2 = store.get("run", "v2");
    let built = export_built(store, &run_v1, "v1", &v1);
    let (app, run2) = (store.r("app", "built"), store.r("run", "v2"));

    // The reference's name check includes the tag (G-24): refused, nothing written.
    let err = fails(store.relaunch(&["rebase", &app, "--run-image", &run2]), 72);
    assert!(
        err.contains(&format!("failed to rebase: rebase app image: new base image '{run2}' not found in existing run image metadata")),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_eq!(store.get("app", "built").digest(), built.digest());

    // Forced: rebased onto v2, run-image metadata and launcher labels follow it.
    let out = json(store.relaunch(&["rebase", &app, "--run-image", &run2, "--force", "--json"]));
    assert_eq!(out["status"], "rebased", "{out:#}");
    let rebased = store.get("app", "built");
    assert_eq!(out["new-digest"], rebased.digest().as_str());
    let n = run_v2.layers().len();
    assert_eq!(rebased.diff_ids()[..n], run_v2.diff_ids()[..]);
    assert_eq!(
        rebased.diff_ids()[n..],
        built.diff_ids()[run_v1.layers().len()..],
        "the app's own layers are carried over"
    );
    let m = md(&rebased);
    assert_eq!(m["runImage"]["topLayer"], run_v2.diff_ids()[n - 1].as_str());
    assert!(
        m["runImage"]["reference"]
            .as_str()
            .unwrap()
            .ends_with(&format!("@{}", run_v2.digest())),
        "{m}"
    );
    assert_eq!(m["runImage"]["image"], run2.as_str());
    assert_eq!(
        rebased.label("io.buildpacks.run-image.launcher.version"),
        Some(v2_version.clone()),
        "launcher labels re-synced from the new run image"
    );
    let skopeo_args = store.skopeo_args();
    let skopeo_args: Vec<&str> = skopeo_args.iter().map(String::as_str).collect();
    let inspected =
        store.explain_failure(|| skopeo_inspect(&store.skopeo("app", "built"), &skopeo_args));
    assert_eq!(inspected["Digest"], rebased.digest().as_str());
    // A binary-mode app keeps its own launcher: v1.
    let said = run_app(store, "app", "built", scratch, false);
    assert!(
        said.contains(&format!("\"version\":\"{v1_version}\"")),
        "{said}"
    );

    // Again: unchanged, nothing pushed; an extra name is still written.
    let out = json(store.relaunch(&[
        "rebase",
        &app,
        &store.r("app", "extra"),
        "--run-image",
        &run2,
        "--json",
    ]));
    assert_eq!(out["status"], "unchanged", "{out:#}");
    assert_eq!(store.get("app", "built").digest(), rebased.digest());
    assert_eq!(store.get("app", "extra").digest(), rebased.digest());
    if let Store::Registry(_) = store {
        assert_eq!(out["registry"]["bytes-up"], 0, "{out:#}");
    }

    // --decouple onto v2 in one write: symlink mode, runs v2's launcher.
    let out = json(store.relaunch(&[
        "rebase",
        &store.r("app", "decoupled"),
        "--previous-image",
        &store.r("app", "built"),
        "--run-image",
        &run2,
        "--decouple",
        "--json",
    ]));
    assert_eq!(out["status"], "rebased", "{out:#}");
    let decoupled = store.get("app", "decoupled");
    let (dmd, index) = lifecycle_metadata(&decoupled).unwrap();
    assert_eq!(
        dmd.launcher.target.as_deref(),
        Some("/usr/local/bin/launcher")
    );
    assert_eq!(decoupled.layers().len(), rebased.layers().len());
    assert_eq!(decoupled.history(), rebased.history());
    for (i, (a, b)) in rebased.layers().iter().zip(decoupled.layers()).enumerate() {
        assert_eq!(
            i == index,
            a.diff_id != b.diff_id,
            "only the launcher layer changes ({i})"
        );
    }
    let said = run_app(store, "app", "decoupled", scratch, true);
    assert!(
        said.contains(&format!("\"version\":\"{v2_version}\"")),
        "{said}"
    );

    // A symlink-mode app is validated against the new run image's launcher.
    let narrow = store.r("run", "narrow");
    let before = store.get("app", "decoupled").digest();
    let err = fails(
        store.relaunch(&[
            "rebase",
            &store.r("app", "decoupled"),
            "--run-image",
            &narrow,
            "--platform-api",
            "0.11",
        ]),
        72,
    );
    assert!(err.contains("does not support Platform API 0.10"), "{err}");
    assert_eq!(
        store.get("app", "decoupled").digest(),
        before,
        "nothing written"
    );
    // ... and --launcher-image is refused for it.
    let err = fails(
        store.relaunch(&[
            "rebase",
            &store.r("app", "decoupled"),
            "--launcher-image",
            &v2_path,
        ]),
        72,
    );
    assert!(err.contains("rebase the app onto a run image"), "{err}");

    // --launcher-image on the binary-mode app: launcher layer swapped in place.
    let err = fails(
        store.relaunch(&[
            "rebase",
            &store.r("app", "swapped"),
            "--previous-image",
            &app,
            "--launcher-image",
            &v2_path,
            "--launcher-must-match",
            "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ]),
        72,
    );
    assert!(err.contains("allow-list"), "{err}");
    assert!(!store.exists("app", "swapped"));
    let (old_md, launcher_index) = lifecycle_metadata(&rebased).unwrap();
    let out = json(store.relaunch(&[
        "rebase",
        &store.r("app", "swapped"),
        "--previous-image",
        &app,
        "--launcher-image",
        &v2_path,
        "--launcher-must-match",
        &old_md.launcher.sha,
        "--json",
    ]));
    assert_eq!(out["status"], "rebased", "{out:#}");
    let swapped = store.get("app", "swapped");
    let (new_md, new_index) = lifecycle_metadata(&swapped).unwrap();
    assert_eq!(new_index, launcher_index, "same position");
    assert_eq!(swapped.history(), rebased.history(), "same history");
    assert_eq!(
        swapped.layers()[new_index].diff_id.as_str(),
        new_md.launcher.sha
    );
    for (i, (a, b)) in rebased.layers().iter().zip(swapped.layers()).enumerate() {
        if i != new_index {
            assert_eq!(a.descriptor.digest, b.descriptor.digest, "layer {i}");
        }
    }
    store.explain_failure(|| skopeo_inspect(&store.skopeo("app", "swapped"), &skopeo_args));
    let said = run_app(store, "app", "swapped", scratch, false);
    assert!(
        said.contains(&format!("\"version\":\"{v2_version}\"")),
        "{said}"
    );
    // Rerun with the same allow-list: already swapped, unchanged.
    let out = json(store.relaunch(&[
        "rebase",
        &store.r("app", "swapped"),
        "--launcher-image",
        &v2_path,
        "--launcher-must-match",
        &old_md.launcher.sha,
        "--json",
    ]));
    assert_eq!(out["status"], "unchanged", "{out:#}");
}

/// Bad input: a one-line error with the reference's exit code, and nothing written.
#[test]
fn bad_input_is_one_line_and_writes_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let store = Store::Registry(Registry::start(Auth::Anonymous));
    let launcher = launcher_path();
    let v1 = LauncherBinary::from_file(&launcher).unwrap();
    let plain = base_run_image(&store, scratch.path());
    let mut base = plain.clone();
    mutate::set_labels(
        &mut base,
        [(STACK_ID, Some("io.buildpacks.stacks.relaunch"))],
    )
    .unwrap();
    store.put(&base, "run", "base");
    stamp(&store, &launcher, "v1", &[]);
    store.put(&plain, "run", "plain");
    let built = export_built(&store, &store.get("run", "v1"), "v1", &v1);
    let (run_v1, run_plain) = (store.r("run", "v1"), store.r("run", "plain"));

    let broken = |label: Option<&str>| {
        let mut image = built.clone();
        mutate::set_labels(&mut image, [("io.buildpacks.lifecycle.metadata", label)]).unwrap();
        image
    };
    let unknown_sha = {
        let mut md = md(&built);
        md["launcher"]["sha"] =
            "sha256:1111111111111111111111111111111111111111111111111111111111111111".into();
        broken(Some(&md.to_string()))
    };
    store.put(&broken(None), "bad", "no-metadata");
    store.put(&broken(Some("{\"runImage\":")), "bad", "malformed");
    store.put(&unknown_sha, "bad", "unknown-sha");
    let not_a_launcher = scratch.path().join("not-a-launcher");
    std::fs::write(&not_a_launcher, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&not_a_launcher, std::fs::Permissions::from_mode(0o755)).unwrap();

    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec![
                store.r("bad", "no-metadata"),
                "--run-image".into(),
                run_v1.clone(),
            ],
            72,
            "io.buildpacks.lifecycle.metadata",
        ),
        (
            vec![store.r("bad", "no-metadata")],
            72,
            "io.buildpacks.lifecycle.metadata",
        ),
        (
            vec![
                store.r("bad", "malformed"),
                "--run-image".into(),
                run_v1.clone(),
            ],
            72,
            "get image metadata: label io.buildpacks.lifecycle.metadata is not valid JSON",
        ),
        (
            vec![
                store.r("app", "built"),
                "--run-image".into(),
                run_plain.clone(),
            ],
            72,
            "stack not defined on new base image",
        ),
        (
            vec![
                store.r("app", "built"),
                "--run-image".into(),
                store.r("run", "base"),
                "--decouple".into(),
                "--force".into(),
            ],
            72,
            "advertises no launcher",
        ),
        (
            vec![
                store.r("bad", "unknown-sha"),
                "--launcher-image".into(),
                launcher.to_str().unwrap().into(),
            ],
            72,
            "is not among the app image's layers",
        ),
        (
            vec![
                store.r("app", "built"),
                "--launcher-image".into(),
                run_plain.clone(),
            ],
            1,
            "has no usable /cnb/lifecycle/launcher",
        ),
        (
            vec![
                store.r("app", "built"),
                "--launcher-image".into(),
                not_a_launcher.to_str().unwrap().into(),
            ],
            1,
            "is not an ELF executable",
        ),
        (
            vec![
                store.r("app", "built"),
                "--run-image".into(),
                store.r("run", "missing"),
            ],
            1,
            "failed to access run image",
        ),
        (
            vec![
                store.r("missing", "app"),
                "--run-image".into(),
                run_v1.clone(),
            ],
            72,
            "failed to access image to rebase",
        ),
        (
            vec![
                store.r("app", "built"),
                "--launcher-must-match".into(),
                "nope".into(),
            ],
            2,
            "nope",
        ),
    ];
    let before: Vec<_> = [
        "app:built",
        "bad:no-metadata",
        "bad:malformed",
        "bad:unknown-sha",
    ]
    .iter()
    .map(|r| {
        let (repo, tag) = r.split_once(':').unwrap();
        store.get(repo, tag).digest()
    })
    .collect();
    for (args, code, says) in &cases {
        let mut argv = vec!["rebase"];
        argv.extend(args.iter().map(String::as_str));
        let err = fails(store.relaunch(&argv), *code);
        assert!(err.contains(says), "{args:?}: {err}");
        if *code != 2 {
            assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
        }
    }
    let after: Vec<_> = [
        "app:built",
        "bad:no-metadata",
        "bad:malformed",
        "bad:unknown-sha",
    ]
    .iter()
    .map(|r| {
        let (repo, tag) = r.split_once(':').unwrap();
        store.get(repo, tag).digest()
    })
    .collect();
    assert_eq!(before, after, "nothing written");
}

/// Through the testkit's fault proxy (drops, 5xx, 429, truncated bodies): each rebase ends
/// rebased (tag complete, skopeo reads every blob) or failed with the tag untouched.
#[test]
fn faults_leave_the_image_rebased_or_untouched() {
    use relaunch_lifecycle::apis::Api;
    use relaunch_lifecycle::fixtures::{export_app, sample_app, RunImageRef};
    use relaunch_oci::layer::{Entry, LayerBuilder};
    use relaunch_testkit::{skopeo_copy, FaultPlan, FaultProxy};

    let run_image = |os: &str| {
        let mut run = Image::new(
            relaunch_oci::v1::Flavor::Oci,
            serde_json::json!({"os": "linux", "architecture": "amd64", "config": {}}),
        )
        .unwrap();
        let layer = LayerBuilder::new()
            .entry(Entry::file("/etc/os", 0o644, os.repeat(20_000)))
            .build()
            .unwrap();
        mutate::append_layers(&mut run, vec![(layer, None)]).unwrap();
        mutate::set_labels(&mut run, [(STACK_ID, Some("s"))]).unwrap();
        run
    };
    let (mut outcomes, mut faults) = (Vec::new(), 0);
    for seed in 1..=5 {
        let scratch = tempfile::tempdir().unwrap();
        let registry = Registry::start(Auth::Anonymous);
        let direct = registry.host();
        let (v1, v2) = (run_image("1"), run_image("2"));
        let run_ref = RunImageRef {
            image: "run".into(),
            reference: "run".into(),
        };
        let app = export_app(
            &v1,
            &run_ref,
            &sample_app(Api::new(0, 10)),
            b"launcher",
            "1",
        )
        .unwrap();
        let store = Store::Registry(registry);
        store.put(&app, "app", "v1");
        store.put(&v2, "run", "v2");
        // Seeds 1-3: half the requests fault (retries ride it out); 4-5: nine in ten.
        let k = if seed > 3 { 1.8 } else { 1.0 };
        let proxy = FaultProxy::start(
            &direct,
            FaultPlan {
                seed,
                drop_connection: 0.12 * k,
                status_500: 0.1 * k,
                status_429: 0.05 * k,
                status_502: 0.1 * k,
                truncate_body: 0.13 * k,
            },
        );
        let via = proxy.host();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_relaunch"))
            .args(["rebase", &format!("{via}/app:v1"), "--run-image"])
            .arg(format!("{via}/run:v2"))
            .args(["--force", "--json", "--insecure-registry", &via])
            .env("DOCKER_CONFIG", scratch.path())
            .output()
            .unwrap();
        let result: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}: {}", stderr(&out)));
        let now = store.get("app", "v1").digest();
        match result["status"].as_str().unwrap() {
            "rebased" => {
                assert_eq!(now.as_str(), result["new-digest"], "seed {seed}");
                let layout = scratch.path().join("pulled");
                skopeo_copy(
                    &format!("docker://{direct}/app:v1"),
                    &format!("oci:{}:v1", layout.display()),
                    &["--src-tls-verify=false"],
                );
            }
            "failed" => {
                assert_eq!(now, app.digest(), "seed {seed}: untouched");
                let reason = result["reason"].as_str().unwrap();
                assert!(!reason.contains('\n'), "seed {seed}: {reason}");
            }
            other => panic!("seed {seed}: {other}: {result:#}"),
        }
        outcomes.push(result["status"].as_str().unwrap().to_string());
        faults += proxy.faults_injected();
    }
    eprintln!("outcomes under {faults} faults: {outcomes:?}");
    assert!(faults > 0, "no fault was injected");
    assert!(
        outcomes.iter().any(|o| o == "failed"),
        "heavy faults never failed a rebase"
    );
}

/// A single-platform app on a multi-platform run image takes the run image's manifest for
/// its own platform; an app that is itself an index is refused (one line, nothing written)
/// rather than narrowed to one platform.
#[test]
fn index_run_images_give_the_apps_platform_and_index_apps_are_rebased_per_platform() {
    use relaunch_lifecycle::apis::Api;
    use relaunch_lifecycle::fixtures::{export_app, sample_app, RunImageRef};
    use relaunch_oci::layer::{Entry, LayerBuilder};

    let scratch = tempfile::tempdir().unwrap();
    let store = Store::Layout(scratch.path().join("images"));
    let run_image = |arch: &str, os: &str| {
        let mut run = Image::new(
            relaunch_oci::v1::Flavor::Oci,
            serde_json::json!({"os": "linux", "architecture": arch, "config": {}}),
        )
        .unwrap();
        let layer = LayerBuilder::new()
            .entry(Entry::file("/etc/os", 0o644, format!("{os} {arch}")))
            .build()
            .unwrap();
        mutate::append_layers(&mut run, vec![(layer, None)]).unwrap();
        mutate::set_labels(&mut run, [(STACK_ID, Some("s"))]).unwrap();
        run
    };
    let v1 = run_image("amd64", "1");
    let (amd, arm) = (run_image("amd64", "2"), run_image("arm64", "2"));
    store.put_index(&[arm, amd.clone()], "run", "v2");
    let run_ref = RunImageRef {
        image: "run".into(),
        reference: "run".into(),
    };
    let app = export_app(
        &v1,
        &run_ref,
        &sample_app(Api::new(0, 10)),
        b"launcher",
        "1",
    )
    .unwrap();
    store.put(&app, "app", "v1");
    let run2 = store.r("run", "v2");
    ok(store.relaunch(&[
        "rebase",
        &store.r("app", "v1"),
        "--run-image",
        &run2,
        "--force",
    ]));
    let rebased = store.get("app", "v1");
    assert_eq!(
        rebased.diff_ids()[0],
        amd.diff_ids()[0],
        "the amd64 run image"
    );

    // An index app is rebased platform by platform (tests/multi_arch.rs has the story).
    store.put_index(&[app], "multi", "v1");
    let out = ok(store.relaunch(&[
        "rebase",
        &store.r("multi", "v1"),
        "--run-image",
        &run2,
        "--force",
    ]));
    assert!(out.contains("rebased"), "{out}");
}
