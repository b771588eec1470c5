//! Differential tests against the reference launcher (lifecycle v0.21.17), issue 11.
//!
//! - `regression_fixtures`: every case in `tests/differential/fixtures/` is run with our
//!   launcher and compared with the outcome recorded from the reference. Runs everywhere.
//! - `random_cases_agree_with_the_reference`: generated cases, run with both launchers in
//!   fresh temp roots. Needs `CNB_REFERENCE_LAUNCHER` (`.ci/run` sets it when the shared
//!   reference is there); otherwise it says so and passes.
//! - `replay` (ignored; a tool): one case from `DIFF_REPLAY=<file>` with both launchers.
//!
//! Knobs (environment): `DIFF_SEED` (default: the day number, so a retry repeats the run),
//! `DIFF_SECONDS` (default 60; 0 = no limit), `DIFF_CASES` (default: no limit), `DIFF_JOBS`
//! (default 2), `DIFF_LAUNCHER` (ours; default `RELAUNCH_STATIC_LAUNCHER`, else the test build), `DIFF_RECORD=1` (write a
//! shrunk fixture for each difference found, and record missing `expected` outcomes).
//! The long local run is in the README.

#[path = "differential/case.rs"]
mod case;
#[path = "differential/generate.rs"]
mod generate;
#[path = "differential/run.rs"]
mod run;
#[path = "differential/shrink.rs"]
mod shrink;
#[path = "common/signals.rs"]
mod signals;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use case::Case;
use run::{compare, describe, Agreement, Harness, Outcome};

/// A regression fixture: a case and what the reference did with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Fixture {
    about: String,
    case: Case,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expected: Option<Outcome>,
}

/// Ours: `DIFF_LAUNCHER`, else the shipped static build when `scripts/test.sh` names it
/// (`RELAUNCH_STATIC_LAUNCHER`), else the test build.
fn ours() -> PathBuf {
    std::env::var_os("DIFF_LAUNCHER")
        .or_else(|| std::env::var_os("RELAUNCH_STATIC_LAUNCHER"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_launcher")))
}

fn reference() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os("CNB_REFERENCE_LAUNCHER")?);
    assert!(
        path.is_file(),
        "CNB_REFERENCE_LAUNCHER={} is not a file",
        path.display()
    );
    Some(path)
}

fn env_number(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{key}={v} is not a number"))
        })
        .unwrap_or(default)
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential/fixtures")
}

fn recording() -> bool {
    std::env::var_os("DIFF_RECORD").is_some_and(|v| v == "1")
}

#[test]
fn regression_fixtures() {
    let harness = Harness::new();
    let reference = reference();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "no fixtures in {}",
        fixtures_dir().display()
    );
    let mut failures = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        let mut fixture: Fixture =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Some(reference) = &reference {
            let now = harness.run(&fixture.case, reference);
            match &fixture.expected {
                None if recording() => {
                    fixture.expected = Some(now);
                    let json = serde_json::to_string_pretty(&fixture).unwrap();
                    std::fs::write(path, json + "\n").unwrap();
                }
                Some(expected) if *expected != now => failures.push(format!(
                    "{}: the reference no longer does what was recorded:\n{}",
                    path.display(),
                    describe(expected, &now)
                )),
                _ => {}
            }
        }
        let Some(expected) = &fixture.expected else {
            failures.push(format!(
                "{}: no recorded outcome (record with CNB_REFERENCE_LAUNCHER and DIFF_RECORD=1)",
                path.display()
            ));
            continue;
        };
        let got = harness.run(&fixture.case, &ours());
        if compare(&got, expected) == Agreement::Differ {
            failures.push(format!(
                "{} ({}):\n{}",
                path.display(),
                fixture.about,
                describe(&got, expected)
            ));
        }
    }
    println!("{} fixtures checked", paths.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Counts of one fuzzing run.
#[derive(Default)]
struct Tally {
    cases: AtomicUsize,
    exact: AtomicUsize,
    toml_text_only: AtomicUsize,
    differ: AtomicUsize,
}

#[test]
fn random_cases_agree_with_the_reference() {
    let Some(reference) = reference() else {
        println!("CNB_REFERENCE_LAUNCHER is not set: no differential fuzzing (fixtures still run)");
        return;
    };
    let seed = env_number(
        "DIFF_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 86_400,
    );
    let seconds = env_number("DIFF_SECONDS", 60);
    let max_cases = env_number("DIFF_CASES", u64::MAX);
    let jobs = env_number("DIFF_JOBS", 2).max(1);
    let ours = ours();
    let harness = Harness::new();
    let tally = Tally::default();
    let next = AtomicU64::new(0);
    let found: Mutex<Vec<(u64, Case)>> = Mutex::new(Vec::new());
    let start = Instant::now();
    let deadline = (seconds > 0).then(|| start + Duration::from_secs(seconds));
    println!("differential fuzzing: DIFF_SEED={seed} DIFF_SECONDS={seconds} DIFF_CASES={max_cases} DIFF_JOBS={jobs}");
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= max_cases || deadline.is_some_and(|d| Instant::now() > d) {
                    return;
                }
                let case = generate::case(generate::case_seed(seed, index));
                let (got, expected) = (harness.run(&case, &ours), harness.run(&case, &reference));
                let agreement = compare(&got, &expected);
                tally.cases.fetch_add(1, Ordering::Relaxed);
                if agreement == Agreement::Differ {
                    println!("case {index} differs:\n{}", describe(&got, &expected));
                }
                let counter = match agreement {
                    Agreement::Exact => &tally.exact,
                    Agreement::TomlTextOnly => &tally.toml_text_only,
                    Agreement::Differ => &tally.differ,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                if agreement == Agreement::Differ {
                    found.lock().unwrap().push((index, case));
                }
            });
        }
    });
    let mut found = found.into_inner().unwrap();
    found.sort_by_key(|(index, _)| *index);
    println!(
        "{} cases in {:.0?}: {} identical, {} identical but for TOML parser text after `line N`, {} differences",
        tally.cases.load(Ordering::Relaxed),
        start.elapsed(),
        tally.exact.load(Ordering::Relaxed),
        tally.toml_text_only.load(Ordering::Relaxed),
        tally.differ.load(Ordering::Relaxed),
    );
    let mut reports = Vec::new();
    // Shrink a few; the rest are listed by index (reproduce with the same DIFF_SEED).
    for (index, case) in found.iter().take(3) {
        let fails = |c: &Case| {
            compare(&harness.run(c, &ours), &harness.run(c, &reference)) == Agreement::Differ
        };
        if !fails(case) {
            reports.push(format!(
                "case {index}: the difference did not reproduce on a second run (a race?)"
            ));
            continue;
        }
        let small = shrink::shrink(case.clone(), fails);
        let expected = harness.run(&small, &reference);
        let got = harness.run(&small, &ours);
        let fixture = Fixture {
            about: format!("found by DIFF_SEED={seed}, case {index}, shrunk"),
            case: small,
            expected: Some(expected.clone()),
        };
        let json = serde_json::to_string_pretty(&fixture).unwrap() + "\n";
        let dir = if recording() {
            fixtures_dir()
        } else {
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("differential-found")
        };
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("found-{seed}-{index}.json"));
        std::fs::write(&file, &json).unwrap();
        reports.push(format!(
            "case {index} (shrunk, saved as {}):\n{json}{}",
            file.display(),
            describe(&got, &expected)
        ));
    }
    let rest: Vec<String> = found.iter().skip(3).map(|(i, _)| i.to_string()).collect();
    if !rest.is_empty() {
        reports.push(format!("also differing: cases {}", rest.join(", ")));
    }
    assert!(found.is_empty(), "{}", reports.join("\n"));
}

/// A tool, not a check: `DIFF_REPLAY=<fixture.json> … -- --ignored replay` runs one case
/// with both launchers and prints what each did.
#[test]
#[ignore = "a tool: set DIFF_REPLAY and run with --ignored"]
fn replay() {
    let path = std::env::var_os("DIFF_REPLAY").expect("DIFF_REPLAY=<fixture.json>");
    let fixture: Fixture = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let harness = Harness::new();
    let got = harness.run(&fixture.case, &ours());
    println!("ours: {got:#?}");
    if let Some(reference) = reference() {
        let expected = harness.run(&fixture.case, &reference);
        println!("reference: {expected:#?}");
        println!(
            "{:?}\n{}",
            compare(&got, &expected),
            describe(&got, &expected)
        );
    }
}
