//! Fleet mode (`--from-file`) against a real registry: one JSON line per image and a
//! summary, refusals and failures that do not stop the others, idempotent reruns, shards
//! that cover the list exactly once, one-line errors for bad input, and — through the
//! fault-injecting proxy, mid-rebase — every image ends either fully rebased or untouched,
//! as the report says, and a rerun finishes what was left.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use relaunch_lifecycle::apis::Api;
use relaunch_lifecycle::app::lifecycle_metadata;
use relaunch_lifecycle::descriptor::LauncherBinary;
use relaunch_lifecycle::fixtures::{export_app, sample_app, RunImageRef};
use relaunch_lifecycle::metadata::LauncherMode;
use relaunch_lifecycle::rebase::STACK_ID_LABEL;
use relaunch_oci::layer::{Entry, LayerBuilder, NORMALIZED_TIME};
use relaunch_oci::mutate::{self, History};
use relaunch_testkit::{skopeo_inspect, Auth, FaultPlan, FaultProxy, Registry};
use serde_json::Value;
use support::{base_run_image, launcher_path, stamp, stderr, Store};

/// Apps `NAMES` (tag `1`) exported onto `run:RUN_TAG`, binary launcher mode, recording
/// `run:RUN_NAME` as the run image to rebase onto.
fn export_apps(store: &Store, run_tag: &str, run_name: &str, names: &[String]) {
    let run = store.get("run", run_tag);
    let launcher = LauncherBinary::from_file(&launcher_path()).unwrap();
    let version = launcher.descriptor.as_ref().unwrap().version.clone();
    let run_ref = RunImageRef {
        image: store.r("run", run_name),
        reference: store.digest_ref("run", &run.digest()),
    };
    for name in names {
        let app = export_app(
            &run,
            &run_ref,
            &sample_app(Api::new(0, 10)),
            &launcher.bytes,
            &version,
        )
        .unwrap();
        store.put(&app, name, "1");
    }
}

fn write_list(dir: &Path, host: &str, names: &[String]) -> String {
    let mut text = String::from("# the fleet\n\n");
    for name in names {
        text += &format!("{host}/{name}:1\n");
    }
    let path = dir.join(format!("list-{host}.txt").replace(':', "_"));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// Runs `relaunch decouple --from-file LIST --json EXTRA`; see [`run_json`].
fn fleet(store: &Store, list: &str, extra: &[&str]) -> (Output, BTreeMap<String, Value>, Value) {
    let mut args = vec!["decouple", "--from-file", list, "--json"];
    args.extend_from_slice(extra);
    run_json(store, &args)
}

/// Runs `relaunch ARGS` (a fleet with --json) and splits its output into the per-image
/// lines (by reference) and the summary.
fn run_json(store: &Store, args: &[impl AsRef<str>]) -> (Output, BTreeMap<String, Value>, Value) {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let out = store.relaunch(&args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut images = BTreeMap::new();
    let mut summary = Value::Null;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{}", stderr(&out)));
        if v.get("summary").is_some() {
            summary = v["summary"].clone();
        } else {
            let r = v["reference"].as_str().unwrap().to_string();
            assert!(images.insert(r, v).is_none(), "an image reported twice");
        }
    }
    assert!(
        summary.is_object(),
        "no summary line: {text}\n{}",
        stderr(&out)
    );
    (out, images, summary)
}

fn mode(store: &Store, repo: &str) -> LauncherMode {
    let (md, _) = lifecycle_metadata(&store.get(repo, "1")).unwrap();
    md.launcher.mode()
}

#[test]
fn decouples_a_fleet_with_refusals_failures_reruns_and_shards() {
    let scratch = tempfile::tempdir().unwrap();
    let store = Store::Registry(Registry::start(Auth::Token));
    let Store::Registry(reg) = &store else {
        unreachable!()
    };
    base_run_image(&store, scratch.path());
    let launcher = launcher_path();
    stamp(&store, &launcher, "v1", &[]);
    stamp(&store, &launcher, "narrow", &["--platform-apis", "0.12"]);
    let names: Vec<String> = (0..10).map(|i| format!("app-{i}")).collect();
    export_apps(&store, "v1", "v1", &names);
    export_apps(&store, "narrow", "narrow", &["old-api".to_string()]);
    let mut all = names.clone();
    all.insert(3, "old-api".into());
    all.insert(6, "missing".into());
    let list = write_list(scratch.path(), &reg.host(), &all);

    let tokens_before = reg.token_requests().len();
    let (out, images, summary) = fleet(&store, &list, &["--jobs", "4"]);
    // One token per repository and scope set (pull to read, pull,push to write) and one
    // for the run image: the client is shared, not one per image or request.
    let tokens = reg.token_requests()[tokens_before..].len();
    assert!(tokens <= 2 * all.len() + 1, "{tokens} token requests");
    assert_eq!(out.status.code(), Some(1), "a failure makes the run fail");
    assert_eq!(images.len(), all.len());
    for (i, name) in all.iter().enumerate() {
        let line = &images[&format!("{}/{name}:1", reg.host())];
        assert_eq!(line["position"], i);
        let status = line["status"].as_str().unwrap();
        let want = match name.as_str() {
            "old-api" => "refused",
            "missing" => "failed",
            _ => "decoupled",
        };
        assert_eq!(status, want, "{line}");
        match status {
            "decoupled" => {
                assert_ne!(line["old-digest"], line["new-digest"]);
                assert_eq!(mode(&store, name), LauncherMode::Symlink);
            }
            "refused" => {
                let reason = line["reason"].as_str().unwrap();
                assert!(reason.contains("Platform API 0.10"), "{reason}");
                assert_eq!(line["old-digest"], line["new-digest"]);
                assert_eq!(mode(&store, name), LauncherMode::Binary);
            }
            _ => assert!(line["reason"].as_str().unwrap().contains("/missing")),
        }
    }
    assert_eq!(
        (
            &summary["images"],
            &summary["decoupled"],
            &summary["refused"],
            &summary["failed"]
        ),
        (&all.len().into(), &10.into(), &1.into(), &1.into())
    );

    // A rerun pushes nothing for the decoupled ones.
    let (_, again, summary) = fleet(&store, &list, &[]);
    assert_eq!(summary["unchanged"], 10, "{summary}");
    assert_eq!(summary["decoupled"], 0);
    let unchanged = &again[&format!("{}/app-0:1", reg.host())];
    assert_eq!(unchanged["old-digest"], unchanged["new-digest"]);

    // Three shards report every position exactly once.
    let mut positions = Vec::new();
    for i in 0..3 {
        let shard = format!("{i}/3");
        let (_, images, _) = fleet(&store, &list, &["--shard", &shard]);
        for line in images.values() {
            let p = line["position"].as_u64().unwrap();
            assert_eq!(p % 3, i, "shard {shard} got position {p}");
            positions.push(p);
        }
    }
    positions.sort();
    assert_eq!(positions, (0..all.len() as u64).collect::<Vec<_>>());

    // Human output: one line per image and a summary line.
    let text = String::from_utf8_lossy(
        &store
            .relaunch(&["decouple", "--from-file", &list, "--shard", "0/3"])
            .stdout,
    )
    .into_owned();
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("4 images: 0 decoupled, 2 unchanged, 1 refused, 1 failed"),
        "{text}"
    );
}

#[test]
fn bad_fleet_input_is_a_one_line_error() {
    let relaunch = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_relaunch"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let scratch = tempfile::tempdir().unwrap();
    let list = scratch.path().join("list");
    std::fs::write(&list, "oci:/nowhere:1\n").unwrap();
    let list = list.to_str().unwrap();
    for (args, needle) in [
        (
            vec!["decouple", "--from-file", list, "--shard", "3/3"],
            "--shard \"3/3\": expected i/n with 0 <= i < n",
        ),
        (
            vec!["decouple", "--from-file", list, "--shard", "x"],
            "--shard \"x\"",
        ),
        (
            vec!["decouple", "--from-file", "/nonexistent/list"],
            "reading the image list /nonexistent/list",
        ),
        (
            vec!["rebase", "oci:/nowhere:1", "--shard", "0/2"],
            "--shard 0/2 needs --from-file",
        ),
    ] {
        let out = relaunch(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("ERROR: ") && err.contains(needle), "{err}");
    }
    // `-` reads the list from stdin.
    let mut child = Command::new(env!("CARGO_BIN_EXE_relaunch"))
        .args(["decouple", "--from-file", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"# one\noci:/nowhere/x:1\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"status\":\"failed\""), "{text}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn faults_mid_rebase_leave_each_image_rebased_or_untouched() {
    let scratch = tempfile::tempdir().unwrap();
    let store = Store::Registry(Registry::start(Auth::Anonymous));
    let Store::Registry(reg) = &store else {
        unreachable!()
    };
    // Run image v1, and v2 = v1's base plus a small patch layer, both stamped; the apps
    // record `run:current`, which moves from v1 to v2 (Platform < 0.12: by stack id).
    let mut base = base_run_image(&store, scratch.path());
    mutate::set_labels(
        &mut base,
        [(STACK_ID_LABEL, Some("io.buildpacks.stacks.relaunch"))],
    )
    .unwrap();
    store.put(&base, "run", "base");
    stamp(&store, &launcher_path(), "v1", &[]);
    store.put(&store.get("run", "v1"), "run", "current");
    let names: Vec<String> = (0..16).map(|i| format!("app-{i}")).collect();
    export_apps(&store, "v1", "current", &names);
    let patch = LayerBuilder::new()
        .entry(Entry::file("/etc/patch-level", 0o644, "2\n"))
        .build()
        .unwrap();
    let history = History::created_by("patch", NORMALIZED_TIME);
    mutate::append_layers(&mut base, vec![(patch, Some(history))]).unwrap();
    store.put(&base, "run", "base");
    stamp(&store, &launcher_path(), "current", &[]);
    let run_v2 = store.get("run", "current");
    let before: BTreeMap<String, String> = names
        .iter()
        .map(|n| (n.clone(), store.get(n, "1").digest().to_string()))
        .collect();

    let proxy = FaultProxy::start(
        &reg.host(),
        FaultPlan {
            seed: 7,
            // Heavy enough that retries give up on some images, not on all.
            drop_connection: 0.12,
            status_500: 0.12,
            status_429: 0.1,
            status_502: 0.12,
            truncate_body: 0.12,
        },
    );
    let faulty = write_list(scratch.path(), &proxy.host(), &names);
    let args = |list: &str| -> Vec<String> {
        ["rebase", "--from-file", list, "--json", "--jobs", "4"]
            .iter()
            .map(|s| s.to_string())
            .chain(["--insecure-registry".into(), proxy.host()])
            .collect()
    };
    let (_, images, summary) = run_json(&store, &args(&faulty));
    let mut done = 0;
    for name in &names {
        let line = &images[&format!("{}/{name}:1", proxy.host())];
        let now = store.get(name, "1");
        match line["status"].as_str().unwrap() {
            "rebased" => {
                done += 1;
                assert_eq!(line["new-digest"], now.digest().to_string());
                let n = run_v2.layers().len();
                assert_eq!(now.diff_ids()[..n], run_v2.diff_ids()[..], "{name}");
                // Complete: skopeo reads the manifest and config of what the tag names.
                skopeo_inspect(&store.skopeo(name, "1"), &[]);
            }
            "failed" => {
                assert_eq!(now.digest().to_string(), before[name], "{line}");
                assert_eq!(line["new-digest"], line["old-digest"], "{line}");
            }
            other => panic!("{name}: {other}: {line}"),
        }
    }
    eprintln!(
        "faults: {} injected; {done} rebased, {} failed",
        proxy.faults_injected(),
        summary["failed"]
    );
    assert!(
        done > 0 && done < names.len(),
        "the faults should stop some images and not others: {summary}"
    );

    // Without faults, a rerun finishes what was left and pushes nothing for the rest.
    let clean = write_list(scratch.path(), &reg.host(), &names);
    let (out, _, summary) = run_json(&store, &args(&clean));
    assert_eq!(out.status.code(), Some(0), "{summary}");
    assert_eq!(summary["unchanged"], done);
    assert_eq!(summary["rebased"], names.len() - done);
}
