//! Fleet rebase benchmark: 500 CNB app images (exported as the lifecycle does, one
//! repository each) in a loopback registry, rebased onto a new run image by one
//! `relaunch rebase --from-file` process, with `--jobs 8` and `--jobs 1`; for scale, the
//! reference lifecycle rebaser (`/work/shared/reference`, one process per image, as a
//! platform runs it) and `relaunch rebase` one process per image, over a sample of the
//! same images. Figures are wall-clock as the user's shell sees the spawned processes;
//! requests and bytes come from the fleet's own summary (its client's counters) and, for
//! the reference, from a counting proxy in front of the registry.
//!
//! Budget: >= 100 images/s with `--jobs 8` on a 2-core machine. Printed, not asserted:
//! timing on a shared machine is not a test.
//!
//! Run: `scripts/bench-fleet.sh`.
//! Usage: fleet_bench <relaunch binary> <launcher binary> [images] [sample]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use relaunch_lifecycle::apis::Api;
use relaunch_lifecycle::descriptor::LauncherBinary;
use relaunch_lifecycle::fixtures::{export_app, sample_app, RunImageRef};
use relaunch_lifecycle::launcher::{resolve, Overrides};
use relaunch_oci::mutate;
use relaunch_oci::remote::{ClientConfig, RegistryClient, RegistryTransport};
use relaunch_oci::{write_image, Image, ManifestRef, NoProgress, RawManifest, Transport};
use relaunch_testkit::{Auth, FaultPlan, FaultProxy, Registry};
use serde_json::Value;
use support::run_image;

const BUDGET_IMAGES_PER_SECOND: f64 = 100.0;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (relaunch, launcher) = match &args[..] {
        [r, l, ..] => (PathBuf::from(r), PathBuf::from(l)),
        _ => {
            eprintln!("usage: fleet_bench <relaunch binary> <launcher binary> [images] [sample]");
            std::process::exit(2);
        }
    };
    let count: usize = args.get(2).map_or(500, |n| n.parse().expect("images"));
    let sample: usize = args.get(3).map_or(50, |n| n.parse().expect("sample"));

    let registry = Registry::start(Auth::Anonymous);
    let host = registry.host();
    let client = Arc::new(RegistryClient::new(ClientConfig {
        insecure_registries: vec![host.clone()],
        ..ClientConfig::default()
    }));
    let repo = |name: &str| RegistryTransport::new(client.clone(), &host, name);

    // Run image v1 (OS layer + launcher stamp, stack id for Platform < 0.12 apps), the apps
    // on it recording `run:current`; then v2 (a patched OS layer) under `run:current`.
    let binary = LauncherBinary::from_file(&launcher).expect("launcher");
    let resolved = resolve(binary.clone(), None, &Overrides::default()).expect("launcher APIs");
    let v1 = run_image("os 1.0\n", &resolved);
    let v2 = run_image("os 1.1\n", &resolved);
    write_image(&v1, &repo("run"), &["v1".into()], &NoProgress).expect("push v1");
    let run_ref = RunImageRef {
        image: format!("{host}/run:current"),
        reference: format!("{host}/run@{}", v1.digest()),
    };
    let version = binary.descriptor.as_ref().map_or("0.0.0", |d| &d.version);
    let app = export_app(
        &v1,
        &run_ref,
        &sample_app(Api::new(0, 10)),
        &binary.bytes,
        version,
    )
    .expect("export");
    let started = Instant::now();
    let originals = push_apps(&app, count, &repo);
    write_image(&v2, &repo("run"), &["current".into()], &NoProgress).expect("push v2");
    eprintln!(
        "set-up: {count} app images pushed in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let names: Vec<String> = (0..count).map(app_repo).collect();
    let list = std::env::temp_dir().join(format!("fleet-bench-{}.txt", std::process::id()));
    let text: String = names.iter().map(|n| format!("{host}/{n}:1\n")).collect();
    std::fs::write(&list, text).expect("list");
    let reset = || {
        for (name, raw) in names.iter().zip(&originals) {
            repo(name)
                .put_manifest(&ManifestRef::Tag("1".into()), raw)
                .expect("reset tag");
        }
    };

    println!("fleet rebase of {count} CNB app images onto a new run image (loopback registry, anonymous)");
    println!(
        "{:<44} {:>9} {:>10} {:>12} {:>11} {:>14}",
        "", "images/s", "req/image", "bytes/image", "down/image", "cpu ms/image"
    );
    let mut fleet8 = 0.0;
    for jobs in [8, 1] {
        reset();
        let (rate, cpu, summary) = fleet(&relaunch, &host, &list, jobs);
        let r = &summary["registry"];
        assert_eq!(summary["rebased"], count, "every image rebased: {summary}");
        let down = r["bytes-down"].as_f64().unwrap_or(0.0) / count as f64;
        let cpu = cpu.map_or("-".into(), |c| format!("{:.2}", c * 1000.0 / count as f64));
        println!(
            "{:<44} {rate:>9.1} {:>10.2} {:>12.0} {down:>11.0} {cpu:>14}",
            format!("relaunch rebase --from-file --jobs {jobs}"),
            r["requests-per-image"].as_f64().unwrap_or(0.0),
            r["bytes-per-image"].as_f64().unwrap_or(0.0),
        );
        if jobs == 8 {
            fleet8 = rate;
        }
    }

    let sample = sample.min(count);
    reset();
    let per_image = |args: &dyn Fn(&str) -> Command| -> f64 {
        let started = Instant::now();
        for name in &names[..sample] {
            let status = args(name)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("spawn");
            assert!(status.success(), "{name}: {status}");
        }
        sample as f64 / started.elapsed().as_secs_f64()
    };
    let rate = per_image(&|name| {
        let mut cmd = Command::new(&relaunch);
        cmd.args([
            "rebase",
            &format!("{host}/{name}:1"),
            "--insecure-registry",
            &host,
        ]);
        cmd
    });
    println!(
        "{:<44} {rate:>9.1}",
        format!("relaunch rebase, one process per image ({sample})")
    );
    if let Some(reference) = reference_rebaser() {
        reset();
        let rebaser = Rebaser::new(&reference);
        let rate = per_image(&|name| rebaser.command(&[], &format!("{host}/{name}:1")));
        // Requests of the reference, counted by a proxy on a few more images.
        reset();
        let proxy = FaultProxy::start(&host, FaultPlan::default());
        let counted = 5.min(count);
        for name in &names[..counted] {
            // Through the proxy the run image has another name than the one recorded:
            // -force skips that name check (it changes no request).
            let status = rebaser
                .command(&["-force"], &format!("{}/{name}:1", proxy.host()))
                .env("CNB_RUN_IMAGE", format!("{}/run:current", proxy.host()))
                .stdout(Stdio::null())
                .status()
                .expect("spawn");
            assert!(
                status.success(),
                "reference rebaser through the proxy: {status}"
            );
        }
        let requests = proxy.requests_seen() as f64 / counted as f64;
        println!(
            "{:<44} {rate:>9.1} {requests:>10.2}",
            format!("reference rebaser v0.21.17, per image ({sample})")
        );
    } else {
        println!("(reference rebaser not found under ../shared/reference: not compared)");
    }
    let verdict = if fleet8 >= BUDGET_IMAGES_PER_SECOND {
        "within"
    } else {
        "OVER"
    };
    println!(
        "budget >= {BUDGET_IMAGES_PER_SECOND} images/s with --jobs 8: {fleet8:.1} ({verdict} budget; {} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let _ = std::fs::remove_file(&list);
}

fn app_repo(i: usize) -> String {
    format!("fleet/app-{i:04}")
}

/// Pushes `count` copies of `app`, each with its own label (a distinct config and
/// manifest, as apps differ), `jobs` at a time; returns each one's manifest.
fn push_apps(
    app: &Image,
    count: usize,
    repo: &(dyn Fn(&str) -> RegistryTransport + Sync),
) -> Vec<RawManifest> {
    let next = AtomicUsize::new(0);
    let pushed = Mutex::new(Vec::with_capacity(count));
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= count {
                    break;
                }
                let mut image = app.clone();
                let label = format!("app {i}");
                mutate::set_labels(
                    &mut image,
                    [("org.example.fleet.app", Some(label.as_str()))],
                )
                .expect("label");
                write_image(&image, &repo(&app_repo(i)), &["1".into()], &NoProgress)
                    .expect("push app");
                pushed.lock().unwrap().push((i, image.raw_manifest()));
            });
        }
    });
    let mut pushed = pushed.into_inner().unwrap();
    pushed.sort_by_key(|(i, _)| *i);
    pushed.into_iter().map(|(_, m)| m).collect()
}

/// `relaunch rebase --from-file LIST --jobs N --json`: (images/s as the shell sees the
/// process, its CPU seconds (user + system, from /usr/bin/time when present), its summary).
fn fleet(relaunch: &Path, host: &str, list: &Path, jobs: usize) -> (f64, Option<f64>, Value) {
    let timed = Path::new("/usr/bin/time").is_file();
    let mut cmd = match timed {
        true => {
            let mut c = Command::new("/usr/bin/time");
            c.args(["-f", "cpu %U %S"]).arg(relaunch);
            c
        }
        false => Command::new(relaunch),
    };
    let started = Instant::now();
    let out = cmd
        .args(["rebase", "--from-file"])
        .arg(list)
        .args([
            "--jobs",
            &jobs.to_string(),
            "--json",
            "--insecure-registry",
            host,
        ])
        .output()
        .expect("spawn relaunch");
    let elapsed = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v.get("summary").cloned())
        .unwrap_or_else(|| panic!("no summary ({}): {text}", out.status));
    let cpu = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("cpu "))
        .next_back()
        .and_then(|l| {
            let t: Vec<f64> = l.split(' ').filter_map(|x| x.parse().ok()).collect();
            (t.len() == 2).then(|| t[0] + t[1])
        });
    let images = summary["images"].as_f64().unwrap_or(0.0);
    (images / elapsed, cpu, summary)
}

fn reference_rebaser() -> Option<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|d| d.join("shared/reference/lifecycle-v0.21.17"))
        .chain([PathBuf::from("/work/shared/reference/lifecycle-v0.21.17")])
        .find(|p| p.is_file())
}

/// The reference multicall binary run through a symlink named `rebaser`.
struct Rebaser {
    dir: tempfile::TempDir,
}

impl Rebaser {
    fn new(binary: &Path) -> Rebaser {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(binary, dir.path().join("rebaser")).unwrap();
        Rebaser { dir }
    }

    /// Rebases `image` (after `flags`) onto the run image its metadata records, or
    /// CNB_RUN_IMAGE (Platform API 0.12: a loopback registry is reached over plain HTTP).
    fn command(&self, flags: &[&str], image: &str) -> Command {
        let mut cmd = Command::new(self.dir.path().join("rebaser"));
        cmd.args(flags)
            .arg(image)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.dir.path())
            .env("DOCKER_CONFIG", self.dir.path())
            .env("CNB_PLATFORM_API", "0.12")
            .env("CNB_REPORT_PATH", self.dir.path().join("report.toml"));
        cmd
    }
}
