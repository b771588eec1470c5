//! The decoupling story end to end, against an OCI layout and a real registry: stamp a run
//! image with the static launcher, export an app like the lifecycle does, decouple it, run
//! it with umoci + runc, swap in a run image with another launcher build, and watch a run
//! image that lacks the app's Platform API get refused.

mod support;

use std::os::unix::fs::PermissionsExt;

use relaunch_lifecycle::app::lifecycle_metadata;
use relaunch_lifecycle::descriptor::LauncherBinary;
use relaunch_lifecycle::fixtures::{bumped_version, with_launcher_version};
use relaunch_oci::mutate;
use relaunch_testkit::{skopeo_inspect, umoci_unpack, Auth, Registry};
use serde_json::Value;
use support::{
    base_run_image, export_built, fails, launcher_path, ok, run_container, stamp, stderr, stdout,
    Store,
};

#[test]
fn story_on_an_oci_layout() {
    let scratch = tempfile::tempdir().unwrap();
    story(
        &Store::Layout(scratch.path().join("images")),
        scratch.path(),
    );
}

#[test]
fn story_on_a_registry() {
    let scratch = tempfile::tempdir().unwrap();
    story(
        &Store::Registry(Registry::start(Auth::Anonymous)),
        scratch.path(),
    );
}

#[test]
fn story_on_a_registry_with_token_auth() {
    let scratch = tempfile::tempdir().unwrap();
    story(
        &Store::Registry(Registry::start(Auth::Token)),
        scratch.path(),
    );
}

/// Runs `repo:tag` as a container and returns its stdout.
fn run_app(store: &Store, repo: &str, tag: &str, scratch: &std::path::Path) -> String {
    let layout = store.layout_of(repo, tag, scratch);
    let bundle = scratch.join(format!("bundle-{tag}"));
    umoci_unpack(&layout, tag, &bundle);
    let target = std::fs::read_link(bundle.join("rootfs/cnb/lifecycle/launcher")).unwrap();
    assert_eq!(
        target.to_str(),
        Some("/usr/local/bin/launcher"),
        "the app's launcher is a symlink"
    );
    let web = std::fs::read_link(bundle.join("rootfs/cnb/process/web")).unwrap();
    assert_eq!(web.to_str(), Some("/cnb/lifecycle/launcher"));
    let runtime: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        runtime["process"]["args"],
        serde_json::json!(["/cnb/process/web"]),
        "starts the web process"
    );
    run_container(&bundle)
}

fn story(store: &Store, scratch: &std::path::Path) {
    let launcher = launcher_path();
    let v1 = LauncherBinary::from_file(&launcher).unwrap();
    let v1_desc = v1
        .descriptor
        .clone()
        .expect("the static launcher describes itself");
    base_run_image(store, scratch);

    // Stamp: one layer on top of the base, contract labels from the self-description.
    stamp(store, &launcher, "v1", &[]);
    let base = store.get("run", "base");
    let run_v1 = store.get("run", "v1");
    assert_eq!(run_v1.layers().len(), base.layers().len() + 1);
    let l = run_v1.labels();
    assert_eq!(
        l["io.buildpacks.run.launcher.path"],
        "/usr/local/bin/launcher"
    );
    assert_eq!(
        l["io.buildpacks.run-image.launcher.version"],
        v1_desc.version.as_str()
    );
    assert_eq!(
        l["io.buildpacks.run-image.launcher.platform-apis"],
        v1_desc.platform_apis.to_label().as_str()
    );
    assert_eq!(
        l["io.buildpacks.run-image.launcher.buildpack-apis"],
        v1_desc.buildpack_apis.to_label().as_str()
    );
    assert!(l["io.buildpacks.run-image.launcher.platform-apis"]
        .as_str()
        .unwrap()
        .contains("0.10"));

    // The app, exported onto run:v1 with the binary launcher, at Platform API 0.10.
    let built = export_built(store, &run_v1, "v1", &v1);

    let report: Value = serde_json::from_str(&ok(store.relaunch(&[
        "check",
        &store.r("app", "built"),
        "--json",
    ])))
    .unwrap();
    assert_eq!(report["compatible"], true, "{report:#}");
    assert_eq!(report["app"]["platform-api"], "0.10");
    assert_eq!(report["app"]["buildpacks"][0]["api"], "0.10");

    // Decouple: same layer count, same position, same history, symlink layer by launcher.sha.
    let out = ok(store.decouple(&store.r("app", "built"), &store.r("app", "decoupled"), &[]));
    assert!(out.contains("decoupled: launcher layer"), "{out}");
    let decoupled = store.get("app", "decoupled");
    let (md_before, index_before) = lifecycle_metadata(&built).unwrap();
    let (md, index) = lifecycle_metadata(&decoupled).unwrap();
    assert_eq!(index, index_before);
    assert_eq!(decoupled.layers().len(), built.layers().len());
    assert_eq!(decoupled.history(), built.history());
    assert_ne!(md.launcher.sha, md_before.launcher.sha);
    assert_eq!(decoupled.layers()[index].diff_id.as_str(), md.launcher.sha);
    let lifecycle_label: Value = serde_json::from_str(
        decoupled.labels()["io.buildpacks.lifecycle.metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(lifecycle_label["launcher"]["type"], "symlink");
    assert_eq!(
        lifecycle_label["launcher"]["target"],
        "/usr/local/bin/launcher"
    );
    assert_eq!(
        lifecycle_label["config"]["sha"],
        md_before.config.sha.as_str(),
        "other keys kept"
    );
    let build_label: Value = serde_json::from_str(
        decoupled.labels()["io.buildpacks.build.metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(
        build_label["launcher"].get("version").is_none(),
        "{build_label}"
    );
    assert_eq!(build_label["launcher"]["type"], "symlink");
    // The APIs rebase validates later run images against, without the config layer.
    assert!(
        build_label["launcher"]["platform-api"].is_string(),
        "{build_label}"
    );
    assert!(
        !build_label["launcher"]["buildpack-apis"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{build_label}"
    );
    assert_eq!(
        build_label["processes"][0]["type"], "web",
        "other keys kept"
    );
    let ann = decoupled.annotations();
    assert_eq!(
        ann["org.opencontainers.image.base.digest"],
        run_v1.digest().as_str()
    );
    assert_eq!(
        ann["org.opencontainers.image.base.name"],
        store.r("run", "v1").as_str()
    );
    // Non-launcher layers are byte-identical.
    for (i, (a, b)) in built.layers().iter().zip(decoupled.layers()).enumerate() {
        if i != index {
            assert_eq!(a.descriptor.digest, b.descriptor.digest, "layer {i}");
        }
    }

    // Unchanged images change nothing, but --tag is still written (the next pipeline step
    // expects it), pointing at the same manifest.
    let out = ok(store.decouple(&store.r("app", "decoupled"), &store.r("app", "again"), &[]));
    let digest = decoupled.digest();
    assert!(
        out.contains("unchanged") && out.contains(digest.as_str()),
        "{out}"
    );
    assert_eq!(store.get("app", "again").digest(), digest);

    // skopeo accepts both the decoupled app and its run image.
    let skopeo_args = store.skopeo_args();
    let skopeo_args: Vec<&str> = skopeo_args.iter().map(String::as_str).collect();
    let inspected =
        store.explain_failure(|| skopeo_inspect(&store.skopeo("app", "decoupled"), &skopeo_args));
    assert_eq!(
        inspected["Layers"].as_array().unwrap().len(),
        decoupled.layers().len()
    );
    store.explain_failure(|| skopeo_inspect(&store.skopeo("run", "v1"), &skopeo_args));

    // inspect reports the launcher that will run: the run image's.
    let inspected: Value = serde_json::from_str(&ok(store.relaunch(&[
        "inspect",
        &store.r("app", "decoupled"),
        "--json",
    ])))
    .unwrap();
    let runs = &inspected["cnb"]["runs"];
    assert_eq!(runs["type"], "symlink", "{inspected:#}");
    assert_eq!(runs["path"], "/usr/local/bin/launcher");
    assert_eq!(runs["version"], v1_desc.version.as_str());

    // It runs: /cnb/process/web → /cnb/lifecycle/launcher → /usr/local/bin/launcher,
    // with the env file and exec.d applied.
    let output = run_app(store, "app", "decoupled", scratch);
    assert!(
        output.contains("hello world from an env file (set by exec.d)"),
        "{output}"
    );
    assert!(
        output.contains(&format!("\"version\":\"{}\"", v1_desc.version)),
        "{output}"
    );

    // A second launcher build (another version in its self-description) in run:v2.
    let v2_version = bumped_version(&v1_desc.version);
    let v2_path = scratch.join("launcher-v2");
    std::fs::write(
        &v2_path,
        with_launcher_version(&v1.bytes, &v2_version).unwrap(),
    )
    .unwrap();
    std::fs::set_permissions(&v2_path, std::fs::Permissions::from_mode(0o755)).unwrap();
    stamp(store, &v2_path, "v2", &[]);
    let run_v2 = store.get("run", "v2");
    assert_eq!(
        run_v2.labels()["io.buildpacks.run-image.launcher.version"],
        v2_version.as_str()
    );

    // Re-stamping run:v1 with v2 replaces its launcher layer rather than stacking another.
    let out = ok(store.add_launcher(
        &store.r("run", "v1"),
        v2_path.to_str().unwrap(),
        &store.r("run", "restamped"),
        &[],
    ));
    assert!(out.contains("replaced launcher layer"), "{out}");
    let restamped = store.get("run", "restamped");
    assert_eq!(restamped.diff_ids(), run_v2.diff_ids());
    // Stamping it again changes nothing, and still writes the requested tag.
    let out = ok(store.add_launcher(
        &store.r("run", "restamped"),
        v2_path.to_str().unwrap(),
        &store.r("run", "restamped-again"),
        &[],
    ));
    assert!(
        out.contains("unchanged") && out.contains(restamped.digest().as_str()),
        "{out}"
    );
    assert_eq!(
        store.get("run", "restamped-again").digest(),
        restamped.digest()
    );

    // A plain base swap, no lifecycle tooling: the app now runs the new launcher.
    let mut swapped = decoupled.clone();
    mutate::rebase(
        &mut swapped,
        &run_v1.layers().last().unwrap().diff_id,
        &run_v2,
    )
    .unwrap();
    store.put(&swapped, "app", "swapped");
    let output = run_app(store, "app", "swapped", scratch);
    assert!(
        output.contains(&format!("\"version\":\"{v2_version}\"")),
        "{output}"
    );
    assert!(
        output.contains("hello world from an env file (set by exec.d)"),
        "{output}"
    );
    // runImage.reference is stale after the plain swap: check says so and wants --run-image.
    let err = fails(store.relaunch(&["check", &store.r("app", "swapped")]), 1);
    assert!(
        err.contains("no longer based on runImage.reference"),
        "{err}"
    );
    ok(store.relaunch(&[
        "check",
        &store.r("app", "swapped"),
        "--run-image",
        &store.r("run", "v2"),
    ]));

    // Refusal: a run image advertising only Platform API 0.12+ against the 0.10 app.
    stamp(
        store,
        &launcher,
        "p012",
        &["--platform-apis", "0.12,0.13,0.14,0.15"],
    );
    let out = store.relaunch(&[
        "check",
        &store.r("app", "built"),
        "--run-image",
        &store.r("run", "p012"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("app Platform API 0.10   UNSUPPORTED"),
        "{}",
        stdout(&out)
    );
    let p012 = store.r("run", "p012");
    let err = fails(
        store.decouple(
            &store.r("app", "built"),
            &store.r("app", "refused"),
            &["--run-image", &p012],
        ),
        1,
    );
    assert!(err.contains("does not support Platform API 0.10"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert!(!store.exists("app", "refused"));
    ok(store.decouple(
        &store.r("app", "built"),
        &store.r("app", "forced"),
        &["--run-image", &p012, "--force"],
    ));
    assert!(store.exists("app", "forced"));
}

/// Decoupling on a registry reads the app's manifest, config and config layer only, and
/// sends only what changed. Prints the traffic it measured.
#[test]
fn decouple_on_a_registry_moves_only_the_small_blobs() {
    use relaunch_lifecycle::app::string_labels;
    use relaunch_lifecycle::contract::AdvertisedLauncher;
    use relaunch_lifecycle::decouple::{decouple, BaseImage};
    use relaunch_oci::remote::RegistryTransport;
    use relaunch_oci::{
        read, write_image, Artifact, ManifestRef, NoProgress, RegistryRef, Transport,
    };
    use std::sync::Arc;

    let scratch = tempfile::tempdir().unwrap();
    let store = Store::Registry(Registry::start(Auth::Anonymous));
    let launcher = launcher_path();
    let v1 = LauncherBinary::from_file(&launcher).unwrap();
    base_run_image(&store, scratch.path());
    stamp(&store, &launcher, "v1", &[]);
    let run_v1 = store.get("run", "v1");
    export_built(&store, &run_v1, "v1", &v1);

    let open = |repo: &str| {
        let Store::Registry(reg) = &store else {
            unreachable!()
        };
        let r = RegistryRef {
            registry: reg.host(),
            repository: repo.into(),
            tag: None,
            digest: None,
        };
        let opts = relaunch_oci::TransportOptions {
            insecure_registries: vec![reg.host()],
            ..Default::default()
        };
        Arc::new(RegistryTransport::open(&r, &opts).unwrap())
    };
    let load = |t: &Arc<RegistryTransport>, tag: &str| {
        let dyn_t: Arc<dyn Transport> = t.clone();
        match read::load(&dyn_t, &ManifestRef::Tag(tag.into())).unwrap() {
            Artifact::Image(img) => img,
            Artifact::Index(_) => unreachable!(),
        }
    };
    let (app_t, run_t) = (open("app"), open("run"));
    let app = load(&app_t, "built");
    let run = load(&run_t, "v1");
    let advertised = AdvertisedLauncher::from_labels(&string_labels(&run))
        .unwrap()
        .unwrap();
    let base = BaseImage {
        name: store.r("run", "v1"),
        digest: run.digest(),
    };
    let switched = decouple(app.clone(), &advertised, Some(&base), false).unwrap();
    write_image(
        &switched.image,
        app_t.as_ref(),
        &["decoupled".into()],
        &NoProgress,
    )
    .unwrap();

    let (app_c, run_c) = (app_t.client().counters(), run_t.client().counters());
    let (md, _) = lifecycle_metadata(&app).unwrap();
    let config_layer = app
        .layers()
        .iter()
        .find(|l| l.diff_id.as_str() == md.config.sha)
        .unwrap();
    let allowed = [
        app.manifest().config.digest.clone(),
        config_layer.descriptor.digest.clone(),
    ];
    for d in app_c.downloaded.keys() {
        assert!(
            allowed.contains(d),
            "decouple downloaded {d}, which it does not need"
        );
    }
    assert!(
        run_c
            .downloaded
            .keys()
            .all(|d| *d == run.manifest().config.digest),
        "only the run image's config"
    );
    assert_eq!(
        app_c.downloaded.get(&config_layer.descriptor.digest),
        Some(&config_layer.descriptor.size),
        "the config layer is downloaded exactly once"
    );
    let image_bytes: u64 = app.layers().iter().map(|l| l.descriptor.size).sum();
    println!(
        "decouple on a registry: image {} bytes in {} layers; downloaded {} bytes (config + config layer {} bytes) + run image config {} bytes; uploaded {} bytes (symlink layer + config); {} registry requests",
        image_bytes,
        app.layers().len(),
        app_c.bytes_downloaded(),
        config_layer.descriptor.size,
        run_c.bytes_downloaded(),
        app_c.bytes_uploaded(),
        app_c.total_requests() + run_c.total_requests(),
    );
    let (_, index) = lifecycle_metadata(&switched.image).unwrap();
    let sent: Vec<_> = app_c.uploaded.keys().cloned().collect();
    let expected = [
        switched.image.manifest().config.digest.clone(),
        switched.image.layers()[index].descriptor.digest.clone(),
    ];
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        expected.iter().all(|d| sent.contains(d)),
        "sent {sent:?}, expected the symlink layer and the new config"
    );
}

/// `relaunch demo` tells the whole story on local layouts, running the containers (root).
#[test]
fn demo_runs_the_story_on_local_layouts() {
    let scratch = tempfile::tempdir().unwrap();
    let launcher = launcher_path();
    let version = LauncherBinary::from_file(&launcher)
        .unwrap()
        .descriptor
        .unwrap()
        .version;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_relaunch"))
        .args(["demo", "--dir"])
        .arg(scratch.path())
        .arg("--launcher")
        .arg(&launcher)
        .output()
        .unwrap();
    let text = ok(out);
    // Decoupled, rebased (relaunch rebase), launcher-swapped: three containers.
    assert_eq!(
        text.matches("hello world from an env file (set by exec.d)")
            .count(),
        4, // decoupled, exported in run-image mode, rebased, swapped
        "{text}"
    );
    assert!(
        text.contains("launcher validated: /usr/local/bin/launcher"),
        "{text}"
    );
    assert!(
        text.contains("launcher: /cnb/lifecycle/launcher -> (regular file)"),
        "the swapped app runs its own (new) launcher binary: {text}"
    );
    assert!(
        text.contains(&format!("\"version\":\"{version}\"")),
        "{text}"
    );
    assert!(
        text.contains(&format!("\"version\":\"{}\"", bumped_version(&version))),
        "{text}"
    );
    assert!(
        text.contains("decoupling again changes nothing: unchanged = true"),
        "{text}"
    );
    assert!(
        text.contains("refused, nothing written") && text.contains("Platform API 0.10"),
        "{text}"
    );
}
