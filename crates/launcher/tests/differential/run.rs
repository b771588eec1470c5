//! Running one launcher on a case in a fresh temp root, and comparing what came out.

use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::case::{replace, rooted, Bytes, Case, ROOT};
use crate::signals::set_signal_state;

/// Held while writing files and while spawning. Without it a process forked by another
/// job can hold a copy of a script's write descriptor until it execs, and the launcher
/// running that script gets ETXTBSY ("text file busy") — a harness race, not a difference.
static FILES_AND_FORKS: Mutex<()> = Mutex::new(());

/// A launch that has not finished after this long is killed and recorded as `timeout`.
const DEADLINE: Duration = Duration::from_secs(10);

/// What a launch produced, with the temp root's path replaced by `@ROOT@`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// `exit N`, `signal N` or `timeout`.
    pub status: String,
    pub stdout: Bytes,
    pub stderr: Bytes,
    /// The probe's reports (argv, cwd, env, stdin of each run of `bin/probe`).
    pub seen: Bytes,
}

/// Temp roots under one base directory, and the compiled probe.
pub struct Harness {
    base: PathBuf,
    probe: PathBuf,
    runs: AtomicUsize,
}

impl Harness {
    pub fn new() -> Harness {
        let base = std::env::temp_dir().join(format!("launcher-diff-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let probe = base.join("probe");
        build_probe(&probe);
        Harness {
            base,
            probe,
            runs: AtomicUsize::new(0),
        }
    }

    /// Runs `launcher` on `case` in a fresh root and removes the root afterwards.
    pub fn run(&self, case: &Case, launcher: &Path) -> Outcome {
        let dir = self
            .base
            .join(format!("run-{}", self.runs.fetch_add(1, Ordering::Relaxed)));
        let root = dir.join("root");
        std::fs::create_dir_all(&root).unwrap();
        let outcome = self.run_in(case, launcher, &dir, &root);
        let _ = std::fs::remove_dir_all(&dir);
        outcome
    }

    fn run_in(&self, case: &Case, launcher: &Path, dir: &Path, root: &Path) -> Outcome {
        let writing = FILES_AND_FORKS.lock().unwrap_or_else(|e| e.into_inner());
        case.materialize(root);
        let lifecycle = root.join("cnb/lifecycle/launcher");
        std::fs::create_dir_all(root.join("cnb/process")).unwrap();
        std::fs::create_dir_all(root.join("cnb/lifecycle")).unwrap();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::os::unix::fs::symlink(launcher, &lifecycle).unwrap();
        if std::fs::hard_link(&self.probe, root.join("bin/probe")).is_err() {
            std::fs::copy(&self.probe, root.join("bin/probe")).unwrap();
        }
        let (program, argv0) = match case.argv0.as_str() {
            "launcher" => (lifecycle.clone(), lifecycle.into_os_string()),
            t if !t.contains('/') && !t.is_empty() && t != "." && t != ".." => {
                let link = root.join("cnb/process").join(t);
                std::os::unix::fs::symlink("../lifecycle/launcher", &link).unwrap();
                (link.clone(), link.into_os_string())
            }
            other => (
                lifecycle,
                std::ffi::OsString::from_vec(rooted(other.as_bytes(), root)),
            ),
        };
        let stdout = std::fs::File::create(dir.join("stdout")).unwrap();
        let stderr = std::fs::File::create(dir.join("stderr")).unwrap();
        drop(writing);
        let mut cmd = Command::new(&program);
        cmd.arg0(argv0)
            .env_clear()
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        for a in &case.args {
            cmd.arg(std::ffi::OsStr::from_bytes(&rooted(&a.0, root)));
        }
        for (k, v) in &case.env {
            cmd.env(k, std::ffi::OsStr::from_bytes(&rooted(&v.0, root)));
        }
        let (ignored, blocked) = (case.ignored_signals.clone(), case.blocked_signals.clone());
        // SAFETY: only async-signal-safe syscalls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                inherit_signals(&ignored, &blocked);
                Ok(())
            });
        }
        let mut child = {
            let _forking = FILES_AND_FORKS.lock().unwrap_or_else(|e| e.into_inner());
            cmd.spawn().expect("spawn launcher")
        };
        let mut stdin = child.stdin.take().unwrap();
        let input = rooted(&case.stdin.0, root);
        // A launch that never reads must not block the harness: write from a thread.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let status = wait(&mut child);
        let _ = writer.join();
        let read = |name: &str| {
            let bytes = std::fs::read(dir.join(name)).unwrap_or_default();
            Bytes(replace(
                &bytes,
                root.as_os_str().as_bytes(),
                ROOT.as_bytes(),
            ))
        };
        Outcome {
            status,
            stdout: read("stdout"),
            stderr: read("stderr"),
            seen: Bytes(replace(
                &std::fs::read(root.join("seen")).unwrap_or_default(),
                root.as_os_str().as_bytes(),
                ROOT.as_bytes(),
            )),
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// Gives the launch a defined state whatever the harness inherited: fds 0-2 only; signals:
/// everything at
/// its default and unblocked, then the case's ignored and blocked signals (raw syscalls:
/// libc refuses 32–34). Runs between fork and exec, so only syscalls.
fn inherit_signals(ignored: &[i32], blocked: &[i32]) {
    // Only stdin, stdout and stderr, whatever descriptors the harness inherited.
    // SAFETY: close_range(3, ~0, 0) closes descriptors this child does not use.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    set_signal_state(ignored, blocked);
}

/// Waits up to [`DEADLINE`]; on timeout kills the launch's whole process group.
fn wait(child: &mut std::process::Child) -> String {
    let start = Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return match (status.code(), status.signal()) {
                (Some(code), _) => format!("exit {code}"),
                (_, Some(sig)) => format!("signal {sig}"),
                _ => "unknown".into(),
            };
        }
        if start.elapsed() > DEADLINE {
            // SAFETY: kill(2) on the group we created with process_group(0).
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            return "timeout".into();
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// Compiles `probe.rs` with the toolchain running the tests (cached by source content).
fn build_probe(dest: &Path) {
    const SOURCE: &str = include_str!("probe.rs");
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    SOURCE.hash(&mut h);
    let cached =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("diff-probe-{:x}", h.finish()));
    if !cached.exists() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential/probe.rs");
        // rustc names its object files after the output's stem, so concurrent test binaries
        // building the probe each need a directory of their own.
        let build_dir = cached.with_extension(format!("build{}", std::process::id()));
        std::fs::create_dir_all(&build_dir).unwrap();
        let partial = build_dir.join("probe");
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let status = Command::new(rustc)
            .args(["--edition", "2021", "-O", "-o"])
            .arg(&partial)
            .arg(&src)
            .status()
            .expect("run rustc to build the probe");
        assert!(status.success(), "building {} failed", src.display());
        std::fs::rename(&partial, &cached).unwrap();
        let _ = std::fs::remove_dir_all(&build_dir);
    }
    std::fs::copy(&cached, dest).unwrap();
}

/// `toml: line N…` with everything after the line number dropped: TOML parser texts may
/// differ between the two decoders after that point (issue 11); nothing else may.
pub fn without_toml_detail(bytes: &[u8]) -> Vec<u8> {
    let marker = b"toml: line ";
    let mut out = Vec::with_capacity(bytes.len());
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        match line.windows(marker.len()).position(|w| w == marker) {
            Some(at) => {
                let digits = line[at + marker.len()..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                out.extend_from_slice(&line[..at + marker.len() + digits]);
                if line.ends_with(b"\n") {
                    out.push(b'\n');
                }
            }
            None => out.extend_from_slice(line),
        }
    }
    out
}

/// How two outcomes compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    Exact,
    /// Equal once TOML parser texts are cut after `line N`.
    TomlTextOnly,
    Differ,
}

pub fn compare(ours: &Outcome, reference: &Outcome) -> Agreement {
    if ours == reference {
        return Agreement::Exact;
    }
    let cut = |o: &Outcome| {
        (
            o.status.clone(),
            without_toml_detail(&o.stdout.0),
            without_toml_detail(&o.stderr.0),
            o.seen.clone(),
        )
    };
    if cut(ours) == cut(reference) {
        Agreement::TomlTextOnly
    } else {
        Agreement::Differ
    }
}

/// A readable account of where two outcomes differ.
pub fn describe(ours: &Outcome, reference: &Outcome) -> String {
    let mut s = String::new();
    let mut field = |name: &str, a: &[u8], b: &[u8]| {
        if a != b {
            s.push_str(&format!(
                "--- {name}\n  ours:      {:?}\n  reference: {:?}\n",
                String::from_utf8_lossy(a),
                String::from_utf8_lossy(b)
            ));
        }
    };
    field(
        "status",
        ours.status.as_bytes(),
        reference.status.as_bytes(),
    );
    field("stdout", &ours.stdout.0, &reference.stdout.0);
    field("stderr", &ours.stderr.0, &reference.stderr.0);
    field("seen by the child", &ours.seen.0, &reference.seen.0);
    s
}
