//! Fleet pre-flight throughput (run via scripts/bench-preflight.sh): pushes N app images of
//! mixed Platform APIs (distinct configs, shared layers) to a loopback registry, then times
//! `relaunch check --from-file apps.txt --run-image R --json` as a separate process at the
//! default concurrency. Prints apps/s end to end (process start to exit) and as the runner
//! measured it; exits 1 below the budget of 200 apps/s end to end.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use relaunch_lifecycle::apis::Api;
use relaunch_lifecycle::descriptor::LauncherBinary;
use relaunch_lifecycle::fixtures::{export_app, run_image_from_rootfs, sample_app, RunImageRef};
use relaunch_lifecycle::launcher::{resolve, Overrides};
use relaunch_lifecycle::stamp::stamp_run_image;
use relaunch_oci::mutate;
use relaunch_oci::remote::{ClientConfig, RegistryClient, RegistryTransport};
use relaunch_oci::{write_image, NoProgress};
use relaunch_testkit::{busybox_rootfs, Auth, Registry};

const BUDGET: f64 = 200.0;

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut relaunch, mut launcher, mut apps) = (None, None, 400usize);
    while let Some(a) = args.next() {
        let value = args.next().expect("flag value");
        match a.as_str() {
            "--relaunch" => relaunch = Some(PathBuf::from(value)),
            "--launcher" => launcher = Some(PathBuf::from(value)),
            "--apps" => apps = value.parse().expect("--apps N"),
            _ => panic!("usage: preflight_bench --relaunch BIN --launcher FILE [--apps N]"),
        }
    }
    let relaunch = relaunch.expect("--relaunch");
    let launcher = LauncherBinary::from_file(&launcher.expect("--launcher")).unwrap();
    let version = launcher.descriptor.as_ref().unwrap().version.clone();

    let registry = Registry::start(Auth::Anonymous);
    let host = registry.host();
    let client = Arc::new(RegistryClient::new(ClientConfig {
        insecure_registries: vec![host.clone()],
        ..ClientConfig::default()
    }));
    let push = |image: &relaunch_oci::Image, repo: &str, tag: &str| {
        let t = RegistryTransport::new(client.clone(), &host, repo);
        write_image(image, &t, &[tag.to_string()], &NoProgress).unwrap();
    };
    let scratch = tempfile::tempdir().unwrap();
    busybox_rootfs(&scratch.path().join("rootfs"));
    let base = run_image_from_rootfs(&scratch.path().join("rootfs")).unwrap();
    let resolved = resolve(launcher.clone(), None, &Overrides::default()).unwrap();
    let run = stamp_run_image(base, &resolved, "/usr/local/bin/launcher")
        .unwrap()
        .image;
    push(&run, "run", "latest");
    let run_ref = RunImageRef {
        image: format!("{host}/run:latest"),
        reference: format!("{host}/run@{}", run.digest()),
    };
    // Apps of five API generations; two of them the run image's launcher does not support.
    let generations = [(0, 6), (0, 9), (0, 10), (0, 12), (0, 15)].map(|(major, minor)| {
        export_app(
            &run,
            &run_ref,
            &sample_app(Api::new(major, minor)),
            &launcher.bytes,
            &version,
        )
        .unwrap()
    });
    let setup = Instant::now();
    let mut list = String::new();
    for i in 0..apps {
        let mut app = generations[i % generations.len()].clone();
        let id = i.to_string();
        mutate::set_labels(&mut app, [("org.example.app", Some(id.as_str()))]).unwrap();
        let repo = format!("fleet/app-{i}");
        push(&app, &repo, "v1");
        list.push_str(&format!("{host}/{repo}:v1\n"));
    }
    eprintln!(
        "pushed {apps} apps in {:.1}s",
        setup.elapsed().as_secs_f64()
    );
    let list_file = scratch.path().join("apps.txt");
    std::fs::write(&list_file, list).unwrap();

    // One pre-flight run: (end-to-end seconds, the summary line).
    let preflight = |jobs: &str| {
        let start = Instant::now();
        // GNU time reports the CPU relaunch itself used (the machine may be shared).
        let out = Command::new("/usr/bin/time")
            .args(["-f", "relaunch-cpu %U %S"])
            .arg(&relaunch)
            .args(["--insecure-registry", &host, "check", "--from-file"])
            .arg(&list_file)
            .args([
                "--run-image",
                &format!("{host}/run:latest"),
                "--json",
                "--jobs",
                jobs,
            ])
            .output()
            .expect("run relaunch under /usr/bin/time");
        let elapsed = start.elapsed().as_secs_f64();
        let cpu: f64 = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter_map(|l| l.strip_prefix("relaunch-cpu "))
            .flat_map(|l| {
                l.split(' ')
                    .filter_map(|x| x.parse::<f64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum();
        let text = String::from_utf8_lossy(&out.stdout);
        let summary: serde_json::Value =
            serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap_or_default();
        let s = summary["summary"].clone();
        assert_eq!(
            s["images"].as_u64(),
            Some(apps as u64),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(s["failed"].as_u64(), Some(0), "{text}");
        assert_eq!(out.status.code(), Some(2), "some apps would not start");
        (elapsed, s, cpu)
    };
    let (elapsed, s, cpu) = preflight("8");
    let end_to_end = apps as f64 / elapsed;
    println!("fleet pre-flight benchmark ({apps} apps, loopback registry)");
    println!(
        "  verdicts            {} start, {} would not start (exit 2)",
        s["starts"], s["refused"]
    );
    println!("  end to end          {elapsed:.2}s, {end_to_end:.0} apps/s at the default --jobs 8 (budget >= {BUDGET:.0})");
    println!(
        "  runner              {:.2}s, {:.0} apps/s; {} registry requests/app, {:.0} bytes down/app",
        s["seconds"].as_f64().unwrap_or_default(),
        s["images-per-second"].as_f64().unwrap_or_default(),
        s["registry"]["requests-per-image"],
        s["registry"]["bytes-per-image"].as_f64().unwrap_or_default()
    );
    println!(
        "  relaunch CPU        {cpu:.2}s user+sys ({:.2} ms per app); load average {}",
        cpu * 1000.0 / apps as f64,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let (wide, _, _) = preflight("32");
    println!(
        "  end to end --jobs 32  {wide:.2}s, {:.0} apps/s",
        apps as f64 / wide
    );
    // What moves per app: the requests of a debug-logged run over a slice of the fleet.
    let sample: Vec<String> = std::fs::read_to_string(&list_file)
        .unwrap()
        .lines()
        .take(20)
        .map(String::from)
        .collect();
    let sample_file = scratch.path().join("sample.txt");
    std::fs::write(&sample_file, sample.join("\n")).unwrap();
    let logged = Command::new(&relaunch)
        .args(["--insecure-registry", &host, "check", "--from-file"])
        .arg(&sample_file)
        .args(["--run-image", &format!("{host}/run:latest"), "--json"])
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1")
        .output()
        .expect("run relaunch");
    let log = String::from_utf8_lossy(&logged.stderr);
    let requests: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("registry request"))
        .collect();
    let per_app = |what: &str| {
        let n = requests.iter().filter(|l| l.contains(what)).count();
        n as f64 / sample.len() as f64
    };
    println!(
        "  requests per app    {:.2} (manifests {:.2}, blobs {:.2}; {} apps, run image included)",
        requests.len() as f64 / sample.len() as f64,
        per_app("/manifests/"),
        per_app("/blobs/"),
        sample.len()
    );
    if end_to_end < BUDGET {
        println!("budget missed: end-to-end apps/s < {BUDGET:.0}");
        std::process::exit(1);
    }
    println!("budget met");
}
