//! Differential test: relaunch run as `rebaser` against the reference lifecycle v0.21.17
//! rebaser (`../shared/reference/lifecycle-v0.21.17` through a symlink named `rebaser`),
//! same inputs in a real registry. Compared: exit code, `ERROR:`/`Warning:` lines, report
//! tags, and the resulting image (layers, os/arch, labels, run-image metadata). Not
//! compared, deliberately (README "Rebaser"): history and `created` (the reference blanks
//! them), manifest/config media types (the reference writes Docker v2s2 over OCI layers),
//! hence digests. Skipped, with a message, when the reference binary is absent.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use relaunch_lifecycle::apis::Api;
use relaunch_lifecycle::descriptor::LauncherBinary;
use relaunch_lifecycle::fixtures::{export_app, sample_app, RunImageRef};
use relaunch_lifecycle::rebase::{REBASABLE_LABEL, STACK_ID_LABEL};
use relaunch_oci::{mutate, Image};
use relaunch_testkit::{Auth, Registry};
use serde_json::Value;
use support::{base_run_image, launcher_path, Store};

/// `shared/reference/lifecycle-v0.21.17` beside the repository (or beside a directory
/// holding it, as with git worktrees).
fn reference_binary() -> Option<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .skip(2)
        .map(|dir| dir.join("shared/reference/lifecycle-v0.21.17"))
        .find(|p| p.is_file())
}

/// One implementation, run through a symlink named `rebaser`.
struct Rebaser {
    name: &'static str,
    dir: tempfile::TempDir,
}

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    /// `ERROR:`/`Warning:` lines of stdout, colour codes removed.
    lines: Vec<String>,
    report: Option<Value>,
}

impl Rebaser {
    fn new(name: &'static str, binary: &Path) -> Rebaser {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(binary, dir.path().join("rebaser")).unwrap();
        Rebaser { name, dir }
    }

    fn run(&self, api: &str, args: &[&str]) -> Run {
        let report = self.dir.path().join("report.toml");
        let _ = std::fs::remove_file(&report);
        let out = Command::new(self.dir.path().join("rebaser"))
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.dir.path())
            .env("DOCKER_CONFIG", self.dir.path())
            .env("CNB_NO_COLOR", "true")
            .env("CNB_PLATFORM_API", api)
            .env("CNB_REPORT_PATH", &report)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let lines = strip_ansi(&stdout)
            .lines()
            .filter(|l| l.starts_with("ERROR: ") || l.starts_with("Warning: "))
            // go-containerregistry's retry chatter, not the rebaser's.
            .filter(|l| !l.starts_with("Warning: Failed to open remote image"))
            .map(String::from)
            .collect();
        let report = std::fs::read_to_string(&report).ok().map(|t| {
            let v: toml::Value = toml::from_str(&t).unwrap();
            serde_json::to_value(v).unwrap()
        });
        eprintln!(
            "[{}] {args:?} -> {:?}\n{stdout}{}",
            self.name,
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        Run {
            code: out.status.code(),
            lines,
            report,
        }
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Ours must say what the reference says; an `ERROR:` line may name a different cause
/// after the reference's last `: ` (ours names the image and the registry's answer).
fn same_line(theirs: &str, ours: &str) -> bool {
    let head = match theirs.rsplit_once(": ") {
        Some((head, _)) if theirs.starts_with("ERROR: ") => head,
        _ => theirs,
    };
    ours.starts_with(theirs) || ours.starts_with(head)
}

/// What both implementations must agree on about a rebased image.
fn essence(image: &Image) -> Value {
    let mut labels: BTreeMap<String, Value> = image.labels().into_iter().collect();
    let md: Value =
        serde_json::from_str(labels["io.buildpacks.lifecycle.metadata"].as_str().unwrap()).unwrap();
    labels.remove("io.buildpacks.lifecycle.metadata");
    let reference = md["runImage"]["reference"].as_str().unwrap_or_default();
    serde_json::json!({
        "diff-ids": image.diff_ids().iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "platform": image.platform().to_string(),
        "labels": labels,
        "runImage.topLayer": md["runImage"]["topLayer"],
        "runImage.image": md["runImage"]["image"],
        "runImage.mirrors": md["runImage"].get("mirrors"),
        "runImage.reference digest": reference.rsplit_once('@').map(|(_, d)| d),
        "stack": md["stack"],
    })
}

struct World {
    store: Store,
    host: String,
    app: Image,
    app12: Image,
    app13: Image,
}

impl World {
    /// What the app repositories hold now.
    fn results(&self) -> Vec<Value> {
        ["app", "app12", "app13"]
            .iter()
            .map(|repo| essence(&self.store.get(repo, "latest")))
            .collect()
    }

    fn reset(&self) {
        self.store.put(&self.app, "app", "latest");
        self.store.put(&self.app12, "app12", "latest");
        self.store.put(&self.app13, "app13", "latest");
    }
}

fn world(scratch: &Path) -> World {
    let registry = Registry::start(Auth::Anonymous);
    let host = registry.host();
    let store = Store::Registry(registry);
    let mut base = base_run_image(&store, scratch);
    mutate::set_labels(
        &mut base,
        [(STACK_ID_LABEL, Some("io.buildpacks.stacks.relaunch"))],
    )
    .unwrap();
    store.put(&base, "run", "v1");
    // v2: the same with one more layer, under the tag the apps record ("current") and as v2.
    let mut v2 = base.clone();
    let extra = relaunch_oci::layer::LayerBuilder::new()
        .entry(relaunch_oci::layer::Entry::file(
            "/etc/patched",
            0o644,
            "yes\n",
        ))
        .build()
        .unwrap();
    mutate::append_layers(&mut v2, vec![(extra, None)]).unwrap();
    mutate::set_labels(&mut v2, [("io.buildpacks.stack.patched", Some("yes"))]).unwrap();
    store.put(&v2, "run", "v2");
    store.put(&v2, "run", "current");
    // An arm64 run image for the target check.
    let mut arm = v2.clone();
    arm.edit_config(|c| {
        c.insert("architecture".into(), "arm64".into());
        Ok(())
    })
    .unwrap();
    store.put(&arm, "run", "arm");

    let launcher = LauncherBinary::from_file(&launcher_path()).unwrap();
    let export = |api: Api| {
        let run_ref = RunImageRef {
            image: format!("{host}/run:current"),
            reference: format!("{host}/run@{}", base.digest()),
        };
        export_app(&base, &run_ref, &sample_app(api), &launcher.bytes, "1.0.0").unwrap()
    };
    let app = export(Api::new(0, 10));
    let app13 = export(Api::new(0, 13));
    let mut app12 = export(Api::new(0, 12));
    mutate::set_labels(&mut app12, [(REBASABLE_LABEL, Some("false"))]).unwrap();
    World {
        store,
        host,
        app,
        app12,
        app13,
    }
}

#[test]
fn relaunch_rebaser_matches_the_reference_rebaser() {
    let Some(reference) = reference_binary() else {
        eprintln!(
            "SKIPPED: the reference lifecycle (../shared/reference/lifecycle-v0.21.17 beside the repository) is absent"
        );
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let w = world(scratch.path());
    let theirs = Rebaser::new("reference", &reference);
    let ours = Rebaser::new("relaunch", Path::new(env!("CARGO_BIN_EXE_relaunch")));
    let h = &w.host;
    let app = format!("{h}/app:latest");
    let app12 = format!("{h}/app12:latest");
    let app13 = format!("{h}/app13:latest");
    let run = |r: &str| format!("{h}/run:{r}");
    let cases: Vec<(&str, &str, Vec<String>)> = vec![
        ("resolved from metadata", "0.15", vec![app.clone()]),
        (
            "named run image",
            "0.15",
            vec![
                "-run-image".into(),
                run("current"),
                app.clone(),
                format!("{h}/app:extra"),
            ],
        ),
        (
            "name not recorded",
            "0.15",
            vec!["-run-image".into(), run("v2"), app.clone()],
        ),
        (
            "name not recorded, forced",
            "0.15",
            vec!["-force".into(), "-run-image".into(), run("v2"), app.clone()],
        ),
        (
            "name not recorded, Platform 0.11",
            "0.11",
            vec!["-run-image".into(), run("v2"), app.clone()],
        ),
        (
            "not rebasable",
            "0.15",
            vec!["-run-image".into(), run("current"), app12.clone()],
        ),
        (
            "not rebasable, forced",
            "0.15",
            vec![
                "-force".into(),
                "-run-image".into(),
                run("current"),
                app12.clone(),
            ],
        ),
        (
            "target mismatch",
            "0.15",
            vec!["-run-image".into(), run("arm"), app13.clone()],
        ),
        (
            "target mismatch, forced",
            "0.15",
            vec![
                "-force".into(),
                "-run-image".into(),
                run("arm"),
                app12.clone(),
            ],
        ),
        (
            "additional tags",
            "0.15",
            vec![
                app13.clone(),
                format!("{h}/app13:a"),
                format!("{h}/app13:b"),
            ],
        ),
        (
            "previous image",
            "0.15",
            vec![
                "-previous-image".into(),
                app.clone(),
                "-run-image".into(),
                run("current"),
                format!("{h}/app:other"),
            ],
        ),
        (
            "deprecated -image",
            "0.15",
            vec!["-image".into(), run("current"), app.clone()],
        ),
        (
            "missing app image",
            "0.15",
            vec![
                "-run-image".into(),
                run("current"),
                format!("{h}/nope:latest"),
            ],
        ),
        (
            "missing run image",
            "0.15",
            vec!["-run-image".into(), run("nope"), app.clone()],
        ),
        ("no image", "0.15", vec![]),
        ("undefined flag", "0.15", vec!["-bogus".into(), app.clone()]),
        (
            "flag of a later Platform API",
            "0.11",
            vec!["-force".into(), app.clone()],
        ),
        ("unsupported Platform API", "0.16", vec![app.clone()]),
        ("unset Platform API", "", vec![app.clone()]),
    ];
    let mut mismatches = Vec::new();
    for (name, api, args) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        w.reset();
        let a = theirs.run(api, &args);
        let a_image = (a.code == Some(0)).then(|| w.results());
        w.reset();
        let b = ours.run(api, &args);
        let b_image = (b.code == Some(0)).then(|| w.results());
        if b.code == Some(0) {
            // The deliberate difference: the app's (OCI) manifest type is kept.
            for repo in ["app", "app12", "app13"] {
                let flavor = w.store.get(repo, "latest").flavor();
                assert_eq!(flavor, relaunch_oci::v1::Flavor::Oci, "{name}: {repo}");
            }
        }
        let mut problems = Vec::new();
        if a.code != b.code {
            problems.push(format!("exit code {:?} vs {:?}", a.code, b.code));
        }
        if a.lines.len() != b.lines.len()
            || a.lines.iter().zip(&b.lines).any(|(x, y)| !same_line(x, y))
        {
            problems.push(format!("lines {:?} vs {:?}", a.lines, b.lines));
        }
        let tags = |r: &Option<Value>| r.as_ref().map(|v| v["image"]["tags"].clone());
        if tags(&a.report) != tags(&b.report) {
            problems.push(format!("report {:?} vs {:?}", a.report, b.report));
        }
        if a_image != b_image {
            problems.push(format!("image {a_image:#?} vs {b_image:#?}"));
        }
        if !problems.is_empty() {
            mismatches.push(format!("{name}: {}", problems.join("; ")));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
