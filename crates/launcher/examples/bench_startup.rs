//! Start-up and memory benchmark for the static launcher (run via scripts/bench-launcher.sh).
//!
//! Candidates, interleaved round by round so that machine noise hits all of them alike:
//! - `true`:     /bin/true run directly;
//! - `floor`:    exec_floor (same target/profile as the launcher) exec'ing /bin/true;
//! - `launcher`: the launcher as `/cnb/process/bench`, a direct Buildpack API 0.12 process
//!   whose command is /bin/true (one buildpack with one launch layer and an env file);
//! - `bundle`:   the same, from a copy of the launcher with an empty bundle dir beside it
//!   (`launcher.d/`): the meta launcher's common case;
//! - `delegate`: a copy whose bundle holds /bin/true as a delegate (sidecar descriptor for
//!   Platform API 0.6), run with `CNB_PLATFORM_API=0.6`: refusal, bundle read, one execve.
//!
//! Prints medians, the ratios and peak RSS, and exits 1 if a budget is missed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const TRUE: &str = "/bin/true";

struct Args {
    launcher: PathBuf,
    floor: PathBuf,
    probe: PathBuf,
    rounds: usize,
}

fn parse_args() -> Args {
    let mut launcher = PathBuf::from("dist/launcher");
    let mut floor = None;
    let mut probe = None;
    let mut rounds = 300;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--launcher" => launcher = value().into(),
            "--floor" => floor = Some(PathBuf::from(value())),
            "--rss-probe" => probe = Some(PathBuf::from(value())),
            "--rounds" => {
                rounds = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--rounds: a number"))
            }
            _ => usage(&format!("unknown argument {a}")),
        }
    }
    let floor = floor.unwrap_or_else(|| usage("--floor is required"));
    let probe = probe.unwrap_or_else(|| usage("--rss-probe is required"));
    if rounds < 200 {
        usage("--rounds must be at least 200");
    }
    Args {
        launcher,
        floor,
        probe,
        rounds,
    }
}

fn usage(msg: &str) -> ! {
    eprintln!("bench_startup: {msg}\nusage: bench_startup --floor PATH --rss-probe PATH [--launcher PATH] [--rounds N>=200]");
    std::process::exit(2);
}

/// A temp app image layout: /cnb/process/bench -> launcher, layers, workspace.
struct Image {
    root: PathBuf,
}

impl Image {
    fn new(launcher: &Path, command: &str, name: &str) -> Image {
        let root =
            std::env::temp_dir().join(format!("launcher-bench-{}-{name}", std::process::id(),));
        let _ = std::fs::remove_dir_all(&root);
        let launcher = std::fs::canonicalize(launcher).expect("launcher binary");
        std::fs::create_dir_all(root.join("cnb/process")).unwrap();
        std::fs::create_dir_all(root.join("workspace")).unwrap();
        std::fs::create_dir_all(root.join("layers/config")).unwrap();
        std::fs::create_dir_all(root.join("layers/bench_bp/layer/env")).unwrap();
        std::fs::write(root.join("layers/bench_bp/layer/env/BENCH_VAR"), "1").unwrap();
        std::fs::write(
            root.join("layers/config/metadata.toml"),
            format!(
                "[[buildpacks]]\nid = \"bench/bp\"\napi = \"0.12\"\n\n[[processes]]\ntype = \"bench\"\ncommand = [\"{command}\"]\ndirect = true\nbuildpack-id = \"bench/bp\"\n"
            ),
        )
        .unwrap();
        std::os::unix::fs::symlink(&launcher, root.join("cnb/process/bench")).unwrap();
        Image { root }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(self.root.join("cnb/process/bench"));
        with_env(&mut cmd, self);
        cmd
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The same environment for every candidate.
fn with_env(cmd: &mut Command, image: &Image) {
    cmd.env_clear()
        .env("PATH", "/cnb/process:/usr/local/bin:/usr/bin:/bin")
        .env("CNB_PLATFORM_API", "0.15")
        .env("CNB_LAYERS_DIR", image.root.join("layers"))
        .env("CNB_APP_DIR", image.root.join("workspace"));
}

/// Wall time of one spawn-to-exit.
fn time(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let status = cmd.status().expect("spawn");
    let elapsed = start.elapsed();
    assert!(status.success(), "{cmd:?} failed: {status}");
    elapsed
}

/// Peak RSS (KiB) and exit status of `program args` run under the static rss_probe.
fn max_rss(probe: &Path, image: &Image, program: &Path, args: &[&str]) -> (i64, i32) {
    let mut cmd = Command::new(probe);
    cmd.arg(program).args(args);
    with_env(&mut cmd, image);
    let out = cmd
        .stderr(std::process::Stdio::null())
        .output()
        .expect("run rss_probe");
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    let (rss, status) = last
        .split_once(' ')
        .expect("rss_probe output: <rss> <status>");
    (rss.parse().expect("rss"), status.parse().expect("status"))
}

/// Largest peak RSS over a few runs, checking the exit status.
fn peak_rss(probe: &Path, image: &Image, program: &Path, args: &[&str], status: i32) -> i64 {
    (0..20)
        .map(|_| {
            let (rss, got) = max_rss(probe, image, program, args);
            assert_eq!(got, status, "{} exit status", program.display());
            rss
        })
        .max()
        .unwrap_or(0)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let args = parse_args();
    // Copies of the launcher side by side, so `launcher` and `bundle` differ only in the
    // empty bundle dir beside the latter.
    let copies = std::env::temp_dir().join(format!("launcher-bench-{}-copies", std::process::id()));
    let _ = std::fs::remove_dir_all(&copies);
    let copy = |name: &str, bundle: bool| {
        let dir = copies.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        if bundle {
            std::fs::create_dir(dir.join("launcher.d")).unwrap();
        }
        std::fs::copy(&args.launcher, dir.join("launcher")).unwrap();
        dir
    };
    let image = Image::new(&copy("plain", false).join("launcher"), TRUE, "plain");
    let bundled = Image::new(&copy("bundle", true).join("launcher"), TRUE, "bundle");
    let delegating_dir = copy("delegate", true);
    std::fs::copy(TRUE, delegating_dir.join("launcher.d/01-true")).unwrap();
    std::fs::write(
        delegating_dir.join("launcher.d/01-true.toml"),
        "name = \"true\"\nversion = \"1\"\nplatform-apis = [\"0.6\"]\nbuildpack-apis = [\"0.12\"]\n",
    )
    .unwrap();
    let delegating = Image::new(&delegating_dir.join("launcher"), TRUE, "delegate");
    let mut true_cmd = Command::new(TRUE);
    with_env(&mut true_cmd, &image);
    let mut floor_cmd = Command::new(&args.floor);
    floor_cmd.arg(TRUE);
    with_env(&mut floor_cmd, &image);
    let mut launcher_cmd = image.command();
    let mut bundle_cmd = bundled.command();
    let mut delegate_cmd = delegating.command();
    delegate_cmd.env("CNB_PLATFORM_API", "0.6");

    let names = ["true", "floor", "launcher", "bundle", "delegate"];
    let mut cmds = [
        &mut true_cmd,
        &mut floor_cmd,
        &mut launcher_cmd,
        &mut bundle_cmd,
        &mut delegate_cmd,
    ];
    let mut samples: [Vec<Duration>; 5] = Default::default();
    // Warm the page cache and the dentry cache first.
    for cmd in cmds.iter_mut() {
        for _ in 0..20 {
            time(cmd);
        }
    }
    for round in 0..args.rounds {
        for k in 0..cmds.len() {
            let i = (round + k) % cmds.len();
            samples[i].push(time(cmds[i]));
        }
    }
    let [t, f, l, b, d] = samples.map(|mut s| median(&mut s));
    let size = std::fs::metadata(&args.launcher)
        .map(|m| m.len())
        .unwrap_or(0);
    let ratio_true = l.as_secs_f64() / t.as_secs_f64();
    let ratio_floor = l.as_secs_f64() / f.as_secs_f64();
    let ratio_bundle = b.as_secs_f64() / l.as_secs_f64();
    let ratio_delegate = d.as_secs_f64() / l.as_secs_f64();

    // Peak RSS: launcher -> /bin/true upper-bounds the launcher's own peak (ru_maxrss
    // keeps the pre-exec high-water mark); a failing lookup measures the launcher alone.
    let process = image.root.join("cnb/process/bench");
    let rss_chain = peak_rss(&args.probe, &image, &process, &[], 0);
    let missing = Image::new(&args.launcher, "/nonexistent/program", "missing");
    let rss_alone = peak_rss(
        &args.probe,
        &missing,
        &missing.root.join("cnb/process/bench"),
        &[],
        82,
    );
    let rss_true = peak_rss(&args.probe, &image, Path::new(TRUE), &[], 0);
    let rss_floor = peak_rss(&args.probe, &image, &args.floor, &[TRUE], 0);

    println!(
        "launcher start-up benchmark ({} rounds, candidates interleaved)",
        args.rounds
    );
    println!(
        "  binary size           {size} bytes ({:.1} KB; budget <= 640 KB)",
        size as f64 / 1000.0
    );
    for (name, m) in names.iter().zip([t, f, l, b, d]) {
        println!("  median {name:<9}      {}", micros(m));
    }
    println!("  launcher / true       {ratio_true:.3}  (budget <= 1.5)");
    println!("  launcher / floor      {ratio_floor:.3}  (budget <= 1.15)");
    println!("  bundle / launcher     {ratio_bundle:.3}  (empty bundle dir; budget <= 1.02)");
    println!("  delegate / launcher   {ratio_delegate:.3}  (delegate path: refusal, bundle read, one more execve)");
    println!("  peak RSS launcher->/bin/true   {rss_chain} KiB (budget <= 2048 KiB)");
    println!("  peak RSS launcher alone        {rss_alone} KiB");
    println!("  peak RSS /bin/true alone       {rss_true} KiB");
    println!("  peak RSS floor->/bin/true      {rss_floor} KiB");

    let mut failed = Vec::new();
    if size > 640_000 {
        failed.push("size > 640 KB");
    }
    if ratio_bundle > 1.02 {
        failed.push("bundle/launcher > 1.02");
    }
    if ratio_true > 1.5 {
        failed.push("launcher/true > 1.5");
    }
    if ratio_floor > 1.15 {
        failed.push("launcher/floor > 1.15");
    }
    if rss_chain > 2048 {
        failed.push("peak RSS > 2 MiB");
    }
    let _ = std::fs::remove_dir_all(&copies);
    if failed.is_empty() {
        println!("all budgets met");
    } else {
        println!("budgets missed: {}", failed.join(", "));
        std::process::exit(1);
    }
}
