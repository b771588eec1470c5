//! `relaunch export` / the multicall `exporter` end to end, against a real registry and OCI
//! layouts: differential against the reference exporter (lifecycle v0.21.17), reuse of
//! unchanged layers audited in the registry's access log, reproducibility, both launcher
//! modes running under runc, and bad inputs.

mod support;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use relaunch_lifecycle::apis::Api;
use relaunch_lifecycle::contract::AdvertisedLauncher;
use relaunch_lifecycle::descriptor::LauncherBinary;
use relaunch_lifecycle::fixtures::{sample_app, stage_app, RunImageRef};
use relaunch_oci::layer::{Entry, LayerBuilder};
use relaunch_oci::v1::Flavor;
use relaunch_oci::{media_type, Image};
use relaunch_testkit::{runc_run, skopeo_inspect, umoci_unpack, Auth, Registry};
use serde_json::{json, Value};
use support::{base_run_image, launcher_path, reference_lifecycle, stamp, stderr, stdout, Store};

/// `DIR/exporter` → `target`: the multicall name both binaries dispatch on.
fn exporter_at(dir: &Path, target: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let link = dir.join("exporter");
    let _ = fs::remove_file(&link);
    symlink(target, &link).unwrap();
    link
}

fn ours(dir: &Path) -> PathBuf {
    exporter_at(dir, Path::new(env!("CARGO_BIN_EXE_relaunch")))
}

fn run_exporter(exporter: &Path, api: &str, env: &[(&str, &str)], args: &[String]) -> Output {
    Command::new(exporter)
        .env("CNB_PLATFORM_API", api)
        .env("CNB_NO_COLOR", "true")
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("CNB_EXEC_ENV")
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap()
}

fn check_ok(out: &Output, who: &str) {
    assert!(
        out.status.success(),
        "{who} failed ({}):\n{}\n{}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// A layers directory as a builder leaves it: two buildpacks (one layer with a long,
/// non-ASCII tree so tars need PAX headers), a cache-only layer, layer and store metadata,
/// a launch SBOM, project metadata, labels, two processes, plus app, launcher and run.toml.
fn write_inputs(root: &Path, run_reference: &str, run_name: &str) {
    let l = root.join("layers");
    write(
        &l.join("group.toml"),
        "[[group]]\nid = \"example/bp\"\nversion = \"1.0.0\"\napi = \"0.10\"\n\n[[group]]\nid = \"other/bp\"\nversion = \"2.0\"\napi = \"0.9\"\nhomepage = \"https://example.com/bp\"\n",
    );
    write(
        &l.join("analyzed.toml"),
        &format!("[run-image]\nreference = {run_reference:?}\nimage = {run_name:?}\n"),
    );
    write(
        &l.join("example_bp/web.toml"),
        "[types]\nlaunch = true\n[metadata]\nfoo = \"bar\"\n",
    );
    write(&l.join("example_bp/web/bin/hello"), "hi\n");
    fs::set_permissions(
        l.join("example_bp/web/bin/hello"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let long = format!("example_bp/web/{}/\u{e9}/na\u{ef}ve.txt", "x".repeat(120));
    write(&l.join(long), "a\n");
    write(&l.join("example_bp/cached.toml"), "[types]\ncache = true\n");
    write(&l.join("example_bp/cached/c"), "cache\n");
    write(&l.join("example_bp/store.toml"), "[metadata]\nx = \"y\"\n");
    write(
        &l.join("other_bp/lib.toml"),
        "[types]\nlaunch = true\ncache = true\n[metadata]\nb = 2\na = \"<x>\"\n[metadata.nested]\nq = true\n",
    );
    write(&l.join("other_bp/lib/f"), "lib\n");
    write(
        &l.join("sbom/launch/example_bp/web/sbom.cdx.json"),
        "{\"bom\":1}\n",
    );
    write(
        &l.join("project-metadata.toml"),
        "[source]\ntype = \"git\"\n[source.version]\ncommit = \"abc<>&\"\n[source.metadata]\nrepository = \"r\"\n",
    );
    write(
        &l.join("config/metadata.toml"),
        "buildpack-default-process-type = \"web\"\n\n[[buildpacks]]\nid = \"example/bp\"\nversion = \"1.0.0\"\napi = \"0.10\"\n\n[[processes]]\ntype = \"web\"\ncommand = [\"hello\"]\nargs = [\"world\"]\ndirect = true\nbuildpack-id = \"example/bp\"\n\n[[processes]]\ntype = \"worker\"\ncommand = [\"w\", \"x\"]\ndirect = false\nbuildpack-id = \"other/bp\"\nworking-dir = \"/w\"\n\n[[labels]]\nkey = \"my.label\"\nvalue = \"v<1>\"\n",
    );
    write(&root.join("workspace/index.html"), "app\n");
    write(&root.join("workspace/sub/y"), "y\n");
    write(&root.join("fake-launcher"), "launcher-content");
    write(
        &root.join("run.toml"),
        &format!("[[images]]\nimage = \"other/run\"\n\n[[images]]\nimage = {run_name:?}\nmirrors = [\"m1\"]\n"),
    );
    write(
        &root.join("stack.toml"),
        &format!("[run-image]\nimage = {run_name:?}\nmirrors = [\"s1\"]\n"),
    );
}

/// Standard exporter arguments for the inputs of [`write_inputs`].
fn args(root: &Path, api: Api, report: &str, extra: &[&str], tags: &[String]) -> Vec<String> {
    let p = |s: &str| root.join(s).display().to_string();
    let mut a = vec![
        "-layers".into(),
        p("layers"),
        "-app".into(),
        p("workspace"),
        "-launcher".into(),
        p("fake-launcher"),
        "-report".into(),
        p(report),
    ];
    if api >= Api::new(0, 12) {
        a.extend(["-run".into(), p("run.toml")]);
    } else {
        a.extend(["-stack".into(), p("stack.toml")]);
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    a.extend(tags.iter().cloned());
    a
}

/// [`tiny_run_image`] in `store` and the exporter's inputs under `<scratch>/in`, whose
/// `runImage` names it: (run image, input root).
fn inputs_on_tiny_run_image(store: &Store, scratch: &Path) -> (Image, PathBuf) {
    let run = tiny_run_image(store);
    let root = scratch.join("in");
    write_inputs(
        &root,
        &store.digest_ref("run", &run.digest()),
        &store.r("run", "base"),
    );
    (run, root)
}

/// A small OCI run image with history and a PATH, stored as `run:base`.
fn tiny_run_image(store: &Store) -> Image {
    let layer = LayerBuilder::new()
        .entry(Entry::dir("/etc", 0o755))
        .entry(Entry::file("/etc/os-release", 0o644, "ID=test\n"))
        .build()
        .unwrap();
    let mut run = Image::new(
        Flavor::Oci,
        json!({"os": "linux", "architecture": "amd64", "config": {"Env": ["PATH=/usr/bin:/bin"], "User": "1000:1000", "Labels": {"io.buildpacks.stack.id": "test"}}}),
    )
    .unwrap();
    relaunch_oci::mutate::append_layers(
        &mut run,
        vec![(
            layer,
            Some(relaunch_oci::mutate::History::created_by(
                "run",
                "2020-01-01T00:00:00Z",
            )),
        )],
    )
    .unwrap();
    store.put(&run, "run", "base");
    run
}

/// What must agree between the reference's image and ours: diffIDs, history, config (Env,
/// Entrypoint, WorkingDir, User, created) and labels, JSON labels compared parsed, minus
/// the one deliberate difference (`launcher.source` in the build metadata names the tool).
fn comparable(image: &Image) -> Value {
    let mut labels = image.labels();
    for (_, v) in labels.iter_mut() {
        if let Some(parsed) = v
            .as_str()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
        {
            *v = parsed;
        }
    }
    if let Some(build) = labels.get_mut("io.buildpacks.build.metadata") {
        build.as_object_mut().unwrap().remove("launcher");
    }
    let cfg = image.container_config().cloned().unwrap_or_default();
    json!({
        "diff_ids": image.diff_ids().iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "history": image.history(),
        "created": image.config().get("created"),
        "Env": cfg.get("Env"),
        "Entrypoint": cfg.get("Entrypoint"),
        "Cmd": cfg.get("Cmd"),
        "WorkingDir": cfg.get("WorkingDir"),
        "User": cfg.get("User"),
        "labels": labels,
    })
}

#[test]
fn default_mode_matches_the_reference_exporter() {
    let Some(reference) = reference_lifecycle() else {
        eprintln!("SKIPPED: the reference lifecycle (../shared/reference/lifecycle-v0.21.17 beside the repository, or RELAUNCH_REFERENCE_DIR) is absent");
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let store = Store::Registry(Registry::start(Auth::Anonymous));
    let (_, root) = inputs_on_tiny_run_image(&store, scratch.path());
    // With -uid the reference drops to that user before writing its report.
    for dir in [scratch.path(), root.as_path()] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o777)).unwrap();
    }
    let theirs = exporter_at(&scratch.path().join("ref"), &reference);
    let mine = ours(&scratch.path().join("ours"));
    let sbom_dir: &str = Box::leak(root.join("launcher-sbom").display().to_string().into());
    write(
        &root.join("launcher-sbom/some.sbom.spdx.json"),
        "{\"spdx\":1}\n",
    );
    write(
        &root.join("launcher-sbom/a-regular-file.txt"),
        "not an SBOM\n",
    );
    type Env<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&str, Env, &[&str]); 5] = [
        ("0.9", &[], &[]),
        ("0.12", &[], &[]),
        // Layer contents owned by the build user, their parent directories by their owner.
        ("0.13", &[], &["-uid", "1234", "-gid", "4321"]),
        (
            "0.14",
            &[("SOURCE_DATE_EPOCH", "1700000000")],
            &["-process-type", "worker"],
        ),
        // A custom launcher SBOM directory: SBOM files are copied into the launch SBOM layer.
        (
            "0.15",
            &[("CNB_EXEC_ENV", "test")],
            &["-launcher-sbom", sbom_dir],
        ),
    ];
    for (api, env, extra) in cases {
        if extra.contains(&"-uid") && !relaunch_sandbox::is_root() {
            eprintln!(
                "SKIPPED Platform {api} -uid case: the reference switches users, which needs root"
            );
            continue;
        }
        let a: Api = api.parse().unwrap();
        if api == "0.14" {
            // From here on the app is split into slices (one matches nothing).
            let md = root.join("layers/config/metadata.toml");
            let text = fs::read_to_string(&md).unwrap();
            let slices =
                "\n[[slices]]\npaths = [\"sub/*\"]\n\n[[slices]]\npaths = [\"nothing/*\"]\n";
            fs::write(&md, text + slices).unwrap();
        }
        let tag = |who: &str| store.r("app", &format!("{who}-{}", api.replace('.', "-")));
        let out = run_exporter(
            &theirs,
            api,
            env,
            &args(&root, a, &format!("ref-{api}.toml"), extra, &[tag("ref")]),
        );
        check_ok(&out, "reference exporter");
        // Whatever the reference copied into the layers directory (launcher SBOMs) ours must
        // copy itself.
        let copied = root.join("layers/sbom/launch/buildpacksio_lifecycle");
        let had_sbom = copied.join("launcher/some.sbom.spdx.json").is_file();
        let _ = fs::remove_dir_all(&copied);
        let out = run_exporter(
            &mine,
            api,
            env,
            &args(&root, a, &format!("ours-{api}.toml"), extra, &[tag("ours")]),
        );
        check_ok(&out, "relaunch exporter");
        assert_eq!(
            copied.join("launcher/some.sbom.spdx.json").is_file(),
            had_sbom,
            "launcher SBOM copied alike"
        );
        assert!(!copied.join("launcher/a-regular-file.txt").exists());
        assert_eq!(
            had_sbom,
            api == "0.15",
            "only the 0.15 case names an SBOM directory"
        );
        let log = stdout(&out);
        for line in [
            "Adding layer 'example/bp:web'",
            "Adding layer 'buildpacksio/lifecycle:launcher'",
        ] {
            assert!(log.contains(line), "{line} missing from:\n{log}");
        }
        let (r, o) = (
            store.get("app", &format!("ref-{}", api.replace('.', "-"))),
            store.get("app", &format!("ours-{}", api.replace('.', "-"))),
        );
        assert_eq!(comparable(&o), comparable(&r), "Platform API {api}");
        // Same layer bytes; media types consistent with the OCI manifest (the reference
        // writes Docker layer types under it).
        assert!(o
            .layers()
            .iter()
            .all(|l| l.descriptor.media_type == media_type::OCI_LAYER_GZIP));
        let report = fs::read_to_string(root.join(format!("ours-{api}.toml"))).unwrap();
        assert!(
            report.contains(&format!("digest = \"{}\"", o.digest())),
            "{report}"
        );
    }
}

/// The registry's access log: which blobs a step uploaded.
fn uploads_during(reg: &Registry, f: impl FnOnce()) -> Vec<String> {
    let before = reg.blob_uploads().len();
    f();
    reg.blob_uploads()[before..].to_vec()
}

#[test]
fn re_export_reuses_unchanged_layers_without_uploading_them() {
    let scratch = tempfile::tempdir().unwrap();
    let store = Store::Registry(Registry::start(Auth::Anonymous));
    let (run, root) = inputs_on_tiny_run_image(&store, scratch.path());
    let mine = ours(&scratch.path().join("ours"));
    let api = Api::new(0, 12);
    let out = run_exporter(
        &mine,
        "0.12",
        &[],
        &args(&root, api, "r.toml", &[], &[store.r("app", "v1")]),
    );
    check_ok(&out, "first export");
    let v1 = store.get("app", "v1");

    // The analyzer's view for the next build: the previous image and its layer metadata;
    // `other/bp:lib` left as metadata only (restored, not rebuilt).
    let md: Value =
        serde_json::from_str(&v1.label("io.buildpacks.lifecycle.metadata").unwrap()).unwrap();
    let lib_sha = md["buildpacks"][1]["layers"]["lib"]["sha"]
        .as_str()
        .unwrap();
    write(
        &root.join("layers/analyzed.toml"),
        &format!(
            "[previous-image]\nreference = {:?}\n\n[run-image]\nreference = {:?}\nimage = {:?}\n\n[[metadata.buildpacks]]\nkey = \"other/bp\"\nversion = \"2.0\"\n[metadata.buildpacks.layers.lib]\nsha = {lib_sha:?}\nlaunch = true\n",
            store.r("app", "v1"),
            store.digest_ref("run", &run.digest()),
            store.r("run", "base"),
        ),
    );
    fs::remove_dir_all(root.join("layers/other_bp/lib")).unwrap();
    write(&root.join("workspace/index.html"), "app v2\n");

    let Store::Registry(reg) = &store else {
        unreachable!()
    };
    let mut out = None;
    let uploaded = uploads_during(reg, || {
        out = Some(run_exporter(
            &mine,
            "0.12",
            &[],
            &args(&root, api, "r.toml", &[], &[store.r("app", "v2")]),
        ));
    });
    let out = out.unwrap();
    check_ok(&out, "second export");
    let log = stdout(&out);
    for line in [
        "Reusing layer 'example/bp:web'",
        "Reusing layer 'other/bp:lib'",
        "Reusing layer 'buildpacksio/lifecycle:launcher'",
        "Added 1/1 app layer(s)",
    ] {
        assert!(log.contains(line), "{line} missing from:\n{log}");
    }
    let v2 = store.get("app", "v2");
    let inspected = skopeo_inspect(&store.skopeo("app", "v2"), &[]);
    assert_eq!(
        inspected["Digest"],
        v2.digest().as_str(),
        "skopeo reads the registry output"
    );
    let app_layer = &v2.layers()[v2.layers().len() - 4];
    let expected = vec![
        app_layer.descriptor.digest.to_string(),
        v2.config_descriptor().digest.to_string(),
    ];
    let mut got = uploaded.clone();
    got.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(
        got, want,
        "only the changed app layer and the new config are uploaded"
    );
    // Same layers as v1 everywhere else.
    let (a, b) = (v1.diff_ids(), v2.diff_ids());
    assert_eq!(a.len(), b.len());
    let differing: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    assert_eq!(differing, vec![a.len() - 4], "only the app layer differs");
}

#[test]
fn export_is_reproducible_and_layouts_are_accepted_by_skopeo_and_umoci() {
    let scratch = tempfile::tempdir().unwrap();
    let store = Store::Layout(scratch.path().join("images"));
    let (_, root) = inputs_on_tiny_run_image(&store, scratch.path());
    let mine = ours(&scratch.path().join("ours"));
    let api = Api::new(0, 12);
    let mut digests = Vec::new();
    for dir in ["layout-a", "layout-b"] {
        let tags = vec!["example.com/team/app:v1".to_string()];
        let extra = [
            "-layout",
            "-layout-dir",
            &scratch.path().join(dir).display().to_string(),
        ]
        .map(String::from);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let out = run_exporter(
            &mine,
            "0.12",
            &[("SOURCE_DATE_EPOCH", "1700000000")],
            &args(&root, api, "r.toml", &extra, &tags),
        );
        check_ok(&out, "layout export");
        let layout = scratch.path().join(dir).join("example.com/team/app/v1");
        let inspected = skopeo_inspect(&format!("oci:{}:v1", layout.display()), &[]);
        digests.push(inspected["Digest"].as_str().unwrap().to_string());
        assert_eq!(inspected["Created"], "2023-11-14T22:13:20Z");
        if relaunch_sandbox::is_root() {
            umoci_unpack(&layout, "v1", &scratch.path().join(format!("bundle-{dir}")));
            let rootfs = scratch.path().join(format!("bundle-{dir}/rootfs"));
            let launcher = rootfs.join("cnb/lifecycle/launcher");
            assert_eq!(fs::read(launcher).unwrap(), b"launcher-content");
        }
    }
    assert_eq!(digests[0], digests[1], "same inputs, same image digest");
}

/// The busybox run image stamped with the launcher under test (`run:stamped`).
fn stamped_run_image(store: &Store, scratch: &Path) -> Image {
    base_run_image(store, scratch);
    stamp(store, &launcher_path(), "stamped", &[]);
    store.get("run", "stamped")
}

#[test]
fn both_launcher_modes_run_under_runc() {
    if !relaunch_sandbox::is_root() {
        eprintln!("SKIPPED: runc needs root");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let store = Store::Layout(scratch.path().join("images"));
    let run = stamped_run_image(&store, scratch.path());
    let launcher = LauncherBinary::from_file(&launcher_path()).unwrap();
    let version = launcher.descriptor.as_ref().unwrap().version.clone();
    let run_ref = RunImageRef {
        image: store.r("run", "stamped"),
        reference: store.digest_ref("run", &run.digest()),
    };
    let root = scratch.path().join("in");
    stage_app(
        &root,
        &run_ref,
        &sample_app(Api::new(0, 12)),
        &launcher.bytes,
        &version,
    )
    .unwrap();
    let mine = ours(&scratch.path().join("ours"));
    let p = |s: &str| root.join(s).display().to_string();
    // Binary mode takes the launcher from the proposal's CNB_LAUNCHER_PATH.
    let launcher_file = p("launcher");
    let binary_env = [("CNB_LAUNCHER_PATH", launcher_file.as_str())];
    for (tag, extra, env) in [
        ("binary", vec![], &binary_env[..]),
        (
            "symlink",
            vec!["--launcher-in-run-image".to_string()],
            &[][..],
        ),
    ] {
        let mut a = vec![
            "-layers".into(),
            p("layers"),
            "-app".into(),
            p("workspace"),
            "-run".into(),
            p("none.toml"),
        ];
        a.extend(extra);
        a.push(store.r("app", tag));
        let out = run_exporter(&mine, "0.12", env, &a);
        check_ok(&out, tag);
        let app = store.get("app", tag);
        let md: Value =
            serde_json::from_str(&app.label("io.buildpacks.lifecycle.metadata").unwrap()).unwrap();
        let build: Value =
            serde_json::from_str(&app.label("io.buildpacks.build.metadata").unwrap()).unwrap();
        if tag == "symlink" {
            assert_eq!(md["launcher"]["type"], "symlink");
            assert_eq!(build["launcher"]["type"], "symlink");
            assert!(build["launcher"]["platform-api"].is_string(), "{build}");
            assert!(build["launcher"]["buildpack-apis"].is_array(), "{build}");
        } else {
            assert!(md["launcher"].get("type").is_none());
            assert_eq!(
                build["launcher"]["version"],
                version.as_str(),
                "version from .cnb_launcher"
            );
        }
        let bundle = scratch.path().join(format!("bundle-{tag}"));
        umoci_unpack(&store.layout_of("app", tag, scratch.path()), tag, &bundle);
        let out = runc_run(&bundle, None, &[]);
        let text = stdout(&out);
        assert!(out.status.success(), "{tag}: {text}\n{}", stderr(&out));
        assert!(
            text.contains("hello world from an env file (set by exec.d)"),
            "{tag}: {text}"
        );
        if tag == "symlink" {
            assert!(
                text.contains("launcher: /cnb/lifecycle/launcher -> /"),
                "{text}"
            );
        } else {
            assert!(text.contains("(regular file)"), "{text}");
        }
    }
}

#[test]
fn run_image_mode_refuses_run_images_that_cannot_run_the_app_before_writing() {
    let scratch = tempfile::tempdir().unwrap();
    let store = Store::Layout(scratch.path().join("images"));
    let (run, root) = inputs_on_tiny_run_image(&store, scratch.path());
    let mine = ours(&scratch.path().join("ours"));
    let tag = store.r("app", "never");
    let out = run_exporter(
        &mine,
        "0.12",
        &[("CNB_LAUNCHER_IN_RUN_IMAGE", "true")],
        &args(&root, Api::new(0, 12), "r.toml", &[], &[tag]),
    );
    assert_eq!(out.status.code(), Some(62), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("ERROR: failed to export: run image"),
        "{text}"
    );
    assert!(text.contains("advertises no launcher"), "{text}");
    assert!(!store.exists("app", "never"));

    // A run image whose launcher supports Platform 0.13+ and Buildpack 0.10 only: the export
    // at Platform 0.12 with an 0.9 buildpack is refused, naming both.
    let mut narrow = run.clone();
    let advertised = AdvertisedLauncher {
        path: "/usr/local/bin/launcher".into(),
        version: "9.9.9".into(),
        platform_apis: "0.13,0.14".parse().unwrap(),
        buildpack_apis: "0.10".parse().unwrap(),
    };
    let labels = advertised.to_labels();
    relaunch_oci::mutate::set_labels(
        &mut narrow,
        labels.iter().map(|(k, v)| (*k, Some(v.as_str()))),
    )
    .unwrap();
    store.put(&narrow, "run", "narrow");
    write(
        &root.join("layers/analyzed.toml"),
        &format!(
            "[run-image]\nreference = {:?}\n",
            store.digest_ref("run", &narrow.digest())
        ),
    );
    let out = run_exporter(
        &mine,
        "0.12",
        &[],
        &args(
            &root,
            Api::new(0, 12),
            "r.toml",
            &["--launcher-in-run-image"],
            &[store.r("app", "never")],
        ),
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(62), "{text}");
    assert!(
        text.contains("does not support Platform API 0.12"),
        "{text}"
    );
    assert!(text.contains("other/bp@0.9"), "{text}");
    assert!(!store.exists("app", "never"));
}

#[test]
fn bad_inputs_fail_with_the_reference_codes_and_write_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let store = Store::Layout(scratch.path().join("images"));
    let run = tiny_run_image(&store);
    let mine = ours(&scratch.path().join("ours"));
    type Breaker = fn(&Path);
    let cases: Vec<(&str, Breaker, &[&str], i32, &str)> = vec![
        ("missing group", |r| fs::remove_file(r.join("layers/group.toml")).unwrap(), &[], 1, "ERROR: failed to read group file: open "),
        ("bad group", |r| write(&r.join("layers/group.toml"), "[[group"), &[], 1, "ERROR: failed to read group file: toml: "),
        ("missing analyzed", |r| fs::remove_file(r.join("layers/analyzed.toml")).unwrap(), &[], 3, "ERROR: failed to resolve inputs: failed to read analyzed file: open "),
        ("bad analyzed", |r| write(&r.join("layers/analyzed.toml"), "x"), &[], 3, "ERROR: failed to resolve inputs: failed to read analyzed file: toml: "),
        ("missing run image", |r| write(&r.join("layers/analyzed.toml"), "[run-image]\nreference = \"oci:/nonexistent/run@sha256:0000000000000000000000000000000000000000000000000000000000000000\"\n"), &[], 1, "ERROR: failed to create new app image: "),
        ("bad layer toml", |r| write(&r.join("layers/example_bp/web.toml"), "[types"), &[], 62, "ERROR: failed to export: failed to parse metadata for layers '[example/bp:web]'"),
        ("missing metadata.toml", |r| fs::remove_file(r.join("layers/config/metadata.toml")).unwrap(), &[], 62, "ERROR: failed to export: read build metadata: failed to read build metadata file: open "),
        ("bad metadata.toml", |r| write(&r.join("layers/config/metadata.toml"), "x="), &[], 62, "ERROR: failed to export: read build metadata: failed to read build metadata file: toml: "),
        ("bad project metadata", |r| write(&r.join("layers/project-metadata.toml"), "x="), &[], 1, "ERROR: failed to read project metadata file: toml: "),
        ("unknown process type", |_| {}, &["-process-type", "nope"], 62, "ERROR: failed to export: determining entrypoint: tried to set nope to default but it doesn't exist"),
        ("bad process type", |r| {
            let p = r.join("layers/config/metadata.toml");
            write(&p, &fs::read_to_string(&p).unwrap().replace("type = \"web\"", "type = \"we>b\""));
        }, &[], 62, "ERROR: failed to export: creating layer '': invalid process type 'we>b': type may not contain characters '/><:|&\\'"),
        ("missing launcher", |r| fs::remove_file(r.join("fake-launcher")).unwrap(), &[], 62, "ERROR: failed to export: creating launcher layers: failed to stat launcher at path '"),
        ("unsupported buildpack API", |r| write(&r.join("layers/group.toml"), "[[group]]\nid = \"a/b\"\nversion = \"1\"\napi = \"0.99\"\n"), &[], 12, "ERROR: failed to set API for Buildpack 'a/b@1': buildpack API version '0.99' is incompatible with the lifecycle"),
        ("daemon", |_| {}, &["-daemon"], 3, "ERROR: -daemon is not supported"),
        ("cache image", |_| {}, &["-cache-image", "x/cache"], 3, "ERROR: -cache-image is not supported"),
    ];
    for (i, (name, breaker, extra, code, message)) in cases.into_iter().enumerate() {
        let root = scratch.path().join(format!("case-{i}"));
        write_inputs(
            &root,
            &store.digest_ref("run", &run.digest()),
            &store.r("run", "base"),
        );
        breaker(&root);
        let tag = format!("bad-{i}");
        let out = run_exporter(
            &mine,
            "0.12",
            &[],
            &args(
                &root,
                Api::new(0, 12),
                "r.toml",
                extra,
                &[store.r("app", &tag)],
            ),
        );
        let text = stdout(&out);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{name}: {text}{}",
            stderr(&out)
        );
        assert!(
            text.contains(message),
            "{name}: expected {message:?} in:\n{text}"
        );
        assert!(!store.exists("app", &tag), "{name}: nothing may be written");
    }
    let root = scratch.path().join("api");
    write_inputs(
        &root,
        &store.digest_ref("run", &run.digest()),
        &store.r("run", "base"),
    );
    let out = run_exporter(
        &mine,
        "0.99",
        &[],
        &args(
            &root,
            Api::new(0, 12),
            "r.toml",
            &[],
            &[store.r("app", "x")],
        ),
    );
    assert_eq!(out.status.code(), Some(11));
    assert!(stdout(&out).contains("platform API version '0.99' is incompatible with the lifecycle"));
}

#[test]
fn cnb_registry_auth_supplies_basic_credentials() {
    let scratch = tempfile::tempdir().unwrap();
    let store = Store::Registry(Registry::start(Auth::Basic));
    let Store::Registry(reg) = &store else {
        unreachable!()
    };
    let (_, root) = inputs_on_tiny_run_image(&store, scratch.path());
    let mine = ours(&scratch.path().join("ours"));
    // The registry's own docker config holds `auth` = base64(user:password).
    let config: Value =
        serde_json::from_slice(&fs::read(reg.docker_config_dir().join("config.json")).unwrap())
            .unwrap();
    let basic = config["auths"][reg.host()]["auth"]
        .as_str()
        .unwrap()
        .to_string();
    let auth = json!({ reg.host(): format!("Basic {basic}") }).to_string();
    let no_config = scratch.path().join("no-docker-config");
    fs::create_dir_all(&no_config).unwrap();
    let no_config = no_config.display().to_string();
    let api = Api::new(0, 12);
    let anonymous = run_exporter(
        &mine,
        "0.12",
        &[("DOCKER_CONFIG", &no_config)],
        &args(&root, api, "r.toml", &[], &[store.r("app", "anon")]),
    );
    assert_eq!(anonymous.status.code(), Some(1), "{}", stdout(&anonymous));
    let out = run_exporter(
        &mine,
        "0.12",
        &[("DOCKER_CONFIG", &no_config), ("CNB_REGISTRY_AUTH", &auth)],
        &args(&root, api, "r.toml", &[], &[store.r("app", "authed")]),
    );
    check_ok(&out, "export with CNB_REGISTRY_AUTH");
    assert!(store.exists("app", "authed"));
}

#[test]
fn every_tag_is_written_and_reported() {
    let scratch = tempfile::tempdir().unwrap();
    let store = Store::Registry(Registry::start(Auth::Anonymous));
    let (_, root) = inputs_on_tiny_run_image(&store, scratch.path());
    let mine = ours(&scratch.path().join("ours"));
    let tags = [
        store.r("app", "one"),
        store.r("app", "two"),
        store.r("other", "three"),
    ];
    let out = run_exporter(
        &mine,
        "0.12",
        &[],
        &args(&root, Api::new(0, 12), "report.toml", &[], &tags),
    );
    check_ok(&out, "export to three tags");
    let digest = store.get("app", "one").digest();
    assert_eq!(store.get("app", "two").digest(), digest);
    assert_eq!(store.get("other", "three").digest(), digest);
    let report = fs::read_to_string(root.join("report.toml")).unwrap();
    let listed = tags
        .iter()
        .map(|t| format!("{t:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    assert!(report.contains(&format!("tags = [{listed}]")), "{report}");
    assert!(
        report.contains(&format!("digest = \"{digest}\"")),
        "{report}"
    );
    assert!(report.contains("manifest-size = "), "{report}");
}
