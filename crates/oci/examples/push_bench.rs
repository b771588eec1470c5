//! Push benchmark: a 1 GiB, 5-layer OCI layout pushed into a fresh loopback registry by
//! `relaunch copy` and by `skopeo copy`, in the same run, each a separate process measured
//! as a user would see it: wall time and peak RSS (GNU time's `%M`), and the registry
//! requests it made (counted by a fault-free testkit proxy, in a separate push so the
//! proxy does not slow the timed one). Every push goes to a registry of its own.
//!
//! Budgets (issue 10): relaunch's time ≤ 0.6 × skopeo's, peak RSS ≤ 32 MiB, about one
//! upload request per blob plus a few.
//!
//! Run: `scripts/bench-registry.sh push` (builds `relaunch` in release first). Arguments:
//! `push_bench RELAUNCH_BINARY [ROUNDS]`; the median of ROUNDS (default 3) is reported.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use relaunch_oci::digest::HashingWriter;
use relaunch_testkit::{Auth, FaultPlan, FaultProxy, Registry};
use serde_json::json;

/// The push command of one tool, given the registry's `host:port`.
type CommandFor<'a> = Box<dyn Fn(&str) -> Command + 'a>;

const LAYER_MIB: [u64; 5] = [400, 256, 200, 100, 68];
const TIME_RATIO_BUDGET: f64 = 0.6;
const RSS_BUDGET_KIB: u64 = 32 << 10;

fn main() {
    let mut args = std::env::args().skip(1);
    let relaunch = PathBuf::from(
        args.next()
            .expect("usage: push_bench RELAUNCH_BINARY [ROUNDS]"),
    );
    let rounds: usize = args
        .next()
        .map_or(3, |r| r.parse().expect("ROUNDS is a number"));
    let scratch = tempfile::tempdir().expect("scratch dir");
    // PUSH_BENCH_LAYOUT=DIR keeps the layout there and reuses it on later runs.
    let layout = std::env::var_os("PUSH_BENCH_LAYOUT")
        .map_or_else(|| scratch.path().join("layout"), PathBuf::from);
    let blobs = match layout.join("index.json").exists() {
        true => LAYER_MIB.len() + 1,
        false => write_layout(&layout),
    };
    let total: u64 = LAYER_MIB.iter().sum();
    println!(
        "push of a {total} MiB, {}-layer OCI layout ({blobs} blobs) into a fresh loopback registry, {rounds} interleaved rounds, medians:",
        LAYER_MIB.len()
    );

    let src = format!("oci:{}:bench", layout.display());
    let tools: [(&str, CommandFor); 2] = [
        (
            "skopeo",
            Box::new(|host: &str| {
                let mut c = Command::new("skopeo");
                c.args(["copy", "--quiet", "--dest-tls-verify=false", &src])
                    .arg(format!("docker://{host}/bench/app:v1"));
                c
            }),
        ),
        (
            "relaunch",
            Box::new(|host: &str| {
                let mut c = Command::new(&relaunch);
                c.args(["copy", &src]).arg(format!("{host}/bench/app:v1"));
                c
            }),
        ),
    ];
    // Rounds interleave the tools (alternating which goes first), so both see the same
    // load; the ratio is the median of the per-round ratios.
    let mut runs: [Vec<(Duration, u64)>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for i in [round % 2, 1 - round % 2] {
            let registry = Registry::start(Auth::Anonymous);
            runs[i].push(measure(tools[i].0, tools[i].1(&registry.host())));
        }
    }
    let mut ratios: Vec<f64> = (0..rounds)
        .map(|r| runs[1][r].0.as_secs_f64() / runs[0][r].0.as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[rounds / 2];
    let median = |mut values: Vec<u64>| {
        values.sort();
        values[rounds / 2]
    };
    let mut results = Vec::new();
    for (i, (name, command)) in tools.iter().enumerate() {
        let time = Duration::from_nanos(median(
            runs[i].iter().map(|(t, _)| t.as_nanos() as u64).collect(),
        ));
        let rss = median(runs[i].iter().map(|(_, rss)| *rss).collect());
        let registry = Registry::start(Auth::Anonymous);
        let proxy = FaultProxy::start(&registry.host(), FaultPlan::default());
        measure(name, command(&proxy.host()));
        let requests = proxy.requests_seen();
        let by_method = proxy.requests_by_method();
        let listed: Vec<String> = by_method.iter().map(|(m, n)| format!("{m} {n}")).collect();
        println!(
            "  {name:<9} {:>6.2} s  peak RSS {:>6.1} MiB  {requests:>3} registry requests ({})",
            time.as_secs_f64(),
            rss as f64 / 1024.0,
            listed.join(", ")
        );
        let with_bytes = ["PUT", "PATCH"]
            .iter()
            .filter_map(|m| by_method.get(*m))
            .sum::<u64>();
        results.push((time, rss, requests, with_bytes));
    }
    let ratios: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    println!(
        "  per-round time ratios relaunch/skopeo: {}",
        ratios.join(" ")
    );
    let relaunch = results[1];
    // Per blob: HEAD (is it there?), POST (session), PUT (the bytes); then the manifest.
    let request_budget = 3 * blobs as u64 + 1;
    let checks = [
        (
            ratio <= TIME_RATIO_BUDGET,
            format!("time ratio relaunch/skopeo {ratio:.2} (budget <= {TIME_RATIO_BUDGET})"),
        ),
        (
            relaunch.1 <= RSS_BUDGET_KIB,
            format!("relaunch peak RSS {:.1} MiB (budget <= 32 MiB)", relaunch.1 as f64 / 1024.0),
        ),
        (
            relaunch.2 <= request_budget,
            format!(
                "relaunch requests {} (budget <= {request_budget}: HEAD, POST, PUT per blob, PUT manifest)",
                relaunch.2
            ),
        ),
        (
            relaunch.3 <= blobs as u64 + 1,
            format!(
                "relaunch requests carrying blob bytes (PUT/PATCH) {} (budget <= {} blobs + 1 manifest)",
                relaunch.3, blobs
            ),
        ),
    ];
    let mut ok = true;
    for (within, text) in checks {
        println!(
            "  {text}: {}",
            if within {
                "within budget"
            } else {
                "OVER BUDGET"
            }
        );
        ok &= within;
    }
    if !ok {
        std::process::exit(1);
    }
}

/// Runs `command` under GNU time; returns wall time and peak RSS in KiB.
fn measure(name: &str, command: Command) -> (Duration, u64) {
    let report = tempfile::NamedTempFile::new().expect("time report file");
    let mut timed = Command::new("/usr/bin/time");
    timed
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(report.path())
        .arg(command.get_program())
        .args(command.get_args());
    let started = Instant::now();
    let out = timed
        .output()
        .expect("run /usr/bin/time (Debian package `time`)");
    let elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(report.path()).expect("read time report");
    let rss = text
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no peak RSS in {text:?}"));
    (elapsed, rss)
}

/// Pseudo-random, incompressible bytes (xorshift), written in 1 MiB pieces.
fn write_noise(out: &mut impl Write, seed: u64, len: u64) -> io::Result<()> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for chunk in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Writes one blob through `fill` into the layout; returns its digest and size.
fn write_blob(layout: &Path, fill: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> (String, u64) {
    let tmp = layout.join("blobs/sha256/.tmp");
    let mut out = HashingWriter::new(BufWriter::new(File::create(&tmp).expect("create blob")));
    fill(&mut out).expect("write blob");
    out.flush().expect("flush blob");
    let (_, digest, size) = out.finish();
    let digest = digest.to_string();
    let hex = digest.trim_start_matches("sha256:");
    std::fs::rename(&tmp, layout.join("blobs/sha256").join(hex)).expect("move blob");
    (digest, size)
}

/// The layout: each layer a gzip (stored blocks: cheap to make, already "compressed", so
/// neither tool recompresses it) of a tar holding one file of random bytes.
fn write_layout(layout: &Path) -> usize {
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("layout dir");
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, mib) in LAYER_MIB.iter().enumerate() {
        let mut diff_id = None;
        let (digest, size) = write_blob(layout, |out| {
            let gzip = GzEncoder::new(out, flate2::Compression::none());
            let mut tar_out = HashingWriter::new(gzip);
            {
                let mut tar = tar::Builder::new(&mut tar_out);
                let mut header = tar::Header::new_gnu();
                header.set_size(mib << 20);
                header.set_mode(0o644);
                header.set_cksum();
                let mut pipe = NoiseReader {
                    seed: i as u64 + 1,
                    left: mib << 20,
                    buf: Vec::new(),
                    pos: 0,
                };
                tar.append_data(&mut header, format!("data-{i}"), &mut pipe)?;
                tar.finish()?;
            }
            let (gzip, tar_digest, _) = tar_out.finish();
            diff_id = Some(tar_digest.to_string());
            gzip.finish()?;
            Ok(())
        });
        diff_ids.push(diff_id.expect("diff id"));
        layers.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest,
            "size": size,
        }));
    }
    let config = json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
    .to_string();
    let (config_digest, config_size) = write_blob(layout, |out| out.write_all(config.as_bytes()));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": layers,
    })
    .to_string();
    let (manifest_digest, manifest_size) =
        write_blob(layout, |out| out.write_all(manifest.as_bytes()));
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "bench"},
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).expect("index.json");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    LAYER_MIB.len() + 1
}

/// `left` bytes of noise as a reader (the tar builder pulls file content).
struct NoiseReader {
    seed: u64,
    left: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl io::Read for NoiseReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            write_noise(&mut self.buf, self.seed, self.left.min(1 << 20))?;
            self.seed = self.seed.wrapping_add(0x9E37);
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        self.left -= n as u64;
        Ok(n)
    }
}
