//! The fleet pre-flight against a real registry: apps of mixed API generations checked
//! against a run image whose launcher bundle holds the stand-in delegate; JSON lines, exit
//! codes, and the HTML report rendered by headless Chromium (screenshot kept under
//! target/test-artifacts/).

mod support;

#[path = "../../launcher/tests/common/delegates.rs"]
#[allow(dead_code)] // the reference launcher is not bundled here
mod delegates;

use std::path::{Path, PathBuf};
use std::process::Command;

use relaunch_lifecycle::apis::Api;
use relaunch_lifecycle::descriptor::LauncherBinary;
use relaunch_lifecycle::fixtures::{export_app, sample_app, RunImageRef};
use relaunch_testkit::{Auth, Registry};
use serde_json::Value;
use support::{base_run_image, launcher_path, stamp, stdout, Store};

/// (tag, Platform API, Buildpack API, expected verdict)
const APPS: [(&str, Api, Api, &str); 5] = [
    ("current", Api::new(0, 10), Api::new(0, 10), "starts"),
    ("newest", Api::new(0, 15), Api::new(0, 12), "starts"),
    ("old", Api::new(0, 6), Api::new(0, 6), "starts"),
    ("mixed", Api::new(0, 12), Api::new(0, 6), "refused"),
    ("ancient", Api::new(0, 5), Api::new(0, 6), "refused"),
];

fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A run image stamped with the launcher and the stand-in delegate (`run:bundle`), and
/// the apps of [`APPS`] exported onto it (`app:<tag>`).
fn world(store: &Store, scratch: &Path) {
    base_run_image(store, scratch);
    let standin = delegates::standin_delegate();
    stamp(
        store,
        &launcher_path(),
        "bundle",
        &["--delegate", standin.to_str().unwrap()],
    );
    let run = store.get("run", "bundle");
    let launcher = LauncherBinary::from_file(&launcher_path()).unwrap();
    let version = launcher.descriptor.as_ref().unwrap().version.clone();
    let run_ref = RunImageRef {
        image: store.r("run", "bundle"),
        reference: store.digest_ref("run", &run.digest()),
    };
    for (tag, platform, buildpack, _) in APPS {
        let mut app = sample_app(platform);
        app.buildpacks[0].api = buildpack;
        let image = export_app(&run, &run_ref, &app, &launcher.bytes, &version).unwrap();
        store.put(&image, "app", tag);
    }
}

#[test]
fn preflight_of_a_mixed_fleet_with_json_lines_and_an_html_report() {
    let scratch = tempfile::tempdir().unwrap();
    let store = Store::Registry(Registry::start(Auth::Anonymous));
    world(&store, scratch.path());
    let list = scratch.path().join("apps.txt");
    let refs: Vec<String> = APPS.iter().map(|a| store.r("app", a.0)).collect();
    std::fs::write(&list, format!("# the fleet\n{}\n", refs.join("\n"))).unwrap();
    let html = artifacts_dir().join("preflight-report.html");
    let run_image = store.r("run", "bundle");

    let out = store.relaunch(&[
        "check",
        "--from-file",
        list.to_str().unwrap(),
        "--run-image",
        &run_image,
        "--json",
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "some apps would not start:\n{}",
        stdout(&out)
    );
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        APPS.len() + 1,
        "one line per app and the summary"
    );
    for (tag, platform, buildpack, verdict) in APPS {
        let line = lines
            .iter()
            .find(|l| l["reference"] == store.r("app", tag))
            .unwrap_or_else(|| panic!("no line for {tag}"));
        assert_eq!(line["status"], verdict, "{line:#}");
        assert_eq!(line["apps"][0]["platform-api"], platform.to_string());
        assert_eq!(line["apps"][0]["buildpack-apis"], buildpack.to_string());
    }
    let old = lines
        .iter()
        .find(|l| l["reference"] == store.r("app", "old"))
        .unwrap();
    assert!(
        old["reason"]
            .as_str()
            .unwrap()
            .contains("via /usr/local/bin/launcher.d/01-standin_delegate"),
        "{old:#}"
    );
    let mixed = lines
        .iter()
        .find(|l| l["reference"] == store.r("app", "mixed"))
        .unwrap();
    assert!(
        mixed["reason"]
            .as_str()
            .unwrap()
            .contains("Buildpack API 0.6"),
        "{mixed:#}"
    );
    let summary = &lines[APPS.len()]["summary"];
    // Only manifests, configs and config layers move: a few KB per app of a 3 MB image.
    let per_app = summary["registry"]["bytes-per-image"].as_f64().unwrap();
    assert!(per_app < 16_000.0, "{summary:#}");
    assert_eq!(
        (summary["starts"].as_u64(), summary["refused"].as_u64()),
        (Some(3), Some(2))
    );

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("5 apps: <b>3</b> start, <b>2</b> would not start"),
        "{page}"
    );
    assert!(page.contains("<svg") && page.contains("Apps per Platform API"));
    render_with_chromium(&html);

    // The text table, and an app that cannot be checked: exit 1 (an error beats a refusal).
    std::fs::write(
        &list,
        format!(
            "{}\n{}\n",
            store.r("app", "current"),
            store.r("run", "base")
        ),
    )
    .unwrap();
    let out = store.relaunch(&[
        "check",
        "--from-file",
        list.to_str().unwrap(),
        "--run-image",
        &run_image,
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "starts    {}: Platform API 0.10 via /usr/local/bin/launcher",
            store.r("app", "current")
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("failed    {}: ", store.r("run", "base"))),
        "{text}"
    );
}

/// Headless Chromium renders the page to a PNG kept as a test artifact.
fn render_with_chromium(html: &Path) {
    let png = html.with_extension("png");
    let _ = std::fs::remove_file(&png);
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--window-size=1200,900")
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("run chromium (Debian package chromium, scripts/deps.sh)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        bytes.len() > 10_000,
        "the page rendered content ({} bytes)",
        bytes.len()
    );
}
