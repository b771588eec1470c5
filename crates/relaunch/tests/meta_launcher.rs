//! The meta launcher end to end: a run image stamped with the static launcher plus the
//! stand-in delegate (Platform/Buildpack API 0.6 only) and the reference Go launcher (sidecar
//! descriptor); apps of both API generations checked, decoupled onto it and run with runc.

mod support;

#[path = "../../launcher/tests/common/delegates.rs"]
mod delegates;

use relaunch_lifecycle::apis::Api;
use relaunch_lifecycle::descriptor::LauncherBinary;
use relaunch_lifecycle::fixtures::{export_app, sample_app, RunImageRef};
use relaunch_oci::mutate;
use relaunch_testkit::umoci_unpack;
use serde_json::Value;
use support::{base_run_image, fails, launcher_path, ok, run_container, stamp, stdout, Store};

const LAUNCHER_AT: &str = "/usr/local/bin/launcher";

/// The sample app at `platform`, its buildpack at `buildpack`, exported onto `run:bundle`
/// with the static launcher and stored as `app:<tag>`.
fn export(store: &Store, platform: Api, buildpack: Api, tag: &str) {
    let run = store.get("run", "bundle");
    let launcher = LauncherBinary::from_file(&launcher_path()).unwrap();
    let mut app = sample_app(platform);
    app.buildpacks[0].api = buildpack;
    let run_ref = RunImageRef {
        image: store.r("run", "bundle"),
        reference: store.digest_ref("run", &run.digest()),
    };
    let version = launcher.descriptor.as_ref().unwrap().version.clone();
    let image = export_app(&run, &run_ref, &app, &launcher.bytes, &version).unwrap();
    store.put(&image, "app", tag);
}

/// Runs `app:<tag>` with runc; returns its stdout.
fn run_app(store: &Store, tag: &str, scratch: &std::path::Path) -> String {
    let layout = store.layout_of("app", tag, scratch);
    let bundle = scratch.join(format!("bundle-{tag}"));
    umoci_unpack(&layout, tag, &bundle);
    run_container(&bundle)
}

#[test]
fn apps_of_every_generation_start_through_one_bundle() {
    let scratch = tempfile::tempdir().unwrap();
    let store = Store::Layout(scratch.path().join("images"));
    // A stack id, which the rebaser requires of apps below Platform API 0.12.
    let mut base = base_run_image(&store, scratch.path());
    mutate::set_labels(
        &mut base,
        [("io.buildpacks.stack.id", Some("io.relaunch.test"))],
    )
    .unwrap();
    store.put(&base, "run", "base");
    let sidecar = scratch.path().join("lifecycle.toml");
    std::fs::write(
        &sidecar,
        "name = \"lifecycle\"\nversion = \"0.21.17\"\nplatform-apis = [\"0.7\", \"0.8\", \"0.9\", \"0.10\", \"0.11\", \"0.12\", \"0.13\", \"0.14\", \"0.15\"]\nbuildpack-apis = [\"0.7\", \"0.8\", \"0.9\", \"0.10\", \"0.11\", \"0.12\"]\n",
    )
    .unwrap();
    let standin = delegates::standin_delegate();
    let mut flags = vec!["--delegate".to_string(), standin.display().to_string()];
    let reference = delegates::reference_launcher();
    if let Some(go) = &reference {
        flags.extend([
            "--delegate".into(),
            format!("{}={}", go.display(), sidecar.display()),
        ]);
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let out = stamp(&store, &launcher_path(), "bundle", &flags);
    assert!(
        out.contains(&format!(
            "delegate {LAUNCHER_AT}.d/01-standin_delegate 0.6.0"
        )),
        "{out}"
    );

    // One layer on the base; the union in the API labels, each launcher in the bundle label.
    let run = store.get("run", "bundle");
    assert_eq!(
        run.layers().len(),
        store.get("run", "base").layers().len() + 1
    );
    let labels = run.labels();
    assert!(labels["io.buildpacks.run-image.launcher.platform-apis"]
        .as_str()
        .unwrap()
        .starts_with("0.6,0.7,"));
    let bundle: Value = serde_json::from_str(
        labels["io.buildpacks.run-image.launcher.bundle"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let paths: Vec<&str> = bundle
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["path"].as_str().unwrap())
        .collect();
    let mut want = vec![
        LAUNCHER_AT.to_string(),
        format!("{LAUNCHER_AT}.d/01-standin_delegate"),
    ];
    if let Some(go) = &reference {
        let name = go.file_name().unwrap().to_string_lossy();
        want.push(format!("{LAUNCHER_AT}.d/02-{name}"));
    }
    assert_eq!(paths, want);
    assert_eq!(bundle[1]["platform-apis"], serde_json::json!(["0.6"]));

    // An app only the stand-in supports: check says so, decouple, and runc starts it through
    // the stand-in with argv[0] as the image's entrypoint wrote it.
    export(&store, Api::new(0, 6), Api::new(0, 6), "old");
    let report: Value = serde_json::from_str(&ok(store.relaunch(&[
        "check",
        &store.r("app", "old"),
        "--json",
    ])))
    .unwrap();
    assert_eq!(report["compatible"], true, "{report:#}");
    assert_eq!(
        report["started-by"],
        format!("{LAUNCHER_AT}.d/01-standin_delegate")
    );
    ok(store.decouple(
        &store.r("app", "old"),
        &store.r("app", "old-decoupled"),
        &[],
    ));
    let out = run_app(&store, "old-decoupled", scratch.path());
    assert_eq!(
        out,
        "standin-old-launcher 0.6.0: argv=[\"/cnb/process/web\"] CNB_PLATFORM_API=0.6\n"
    );

    // A current app: the built-in launcher serves it.
    export(&store, Api::new(0, 10), Api::new(0, 10), "current");
    ok(store.decouple(
        &store.r("app", "current"),
        &store.r("app", "current-decoupled"),
        &[],
    ));
    let out = run_app(&store, "current-decoupled", scratch.path());
    assert!(
        out.starts_with("hello world from an env file (set by exec.d)\n"),
        "{out}"
    );

    // Platform 0.12 with Buildpack 0.6: each API is in the bundle, no launcher has both.
    export(&store, Api::new(0, 12), Api::new(0, 6), "mixed");
    let out = store.relaunch(&["check", &store.r("app", "mixed")]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!(
            "no launcher of the run image's bundle at {LAUNCHER_AT}.d supports"
        )),
        "{}",
        stdout(&out)
    );
    let err = fails(
        store.decouple(
            &store.r("app", "mixed"),
            &store.r("app", "mixed-decoupled"),
            &[],
        ),
        1,
    );
    assert!(err.contains("Buildpack API 0.6"), "{err}");

    // The rebaser validates per launcher too: onto the bundle the 0.6 app passes (the
    // delegate starts it); onto the run image re-stamped without the delegate it is refused.
    let old = store.r("app", "old-decoupled");
    let rebased: Value =
        serde_json::from_str(&ok(store.relaunch(&["rebase", &old, "--json"]))).unwrap();
    assert_eq!(rebased["launcher-check"]["compatible"], true, "{rebased:#}");
    assert_eq!(
        rebased["launcher-check"]["started-by"],
        format!("{LAUNCHER_AT}.d/01-standin_delegate")
    );
    stamp(&store, &launcher_path(), "bundle", &[]);
    let out = store.relaunch(&["rebase", &old, "--json"]);
    assert_eq!(out.status.code(), Some(72), "{}", stdout(&out));
    let refused: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(refused["status"], "refused");
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("does not support Platform API 0.6"),
        "{refused:#}"
    );
}
