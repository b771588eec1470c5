//! Wrappers around the reference tools (skopeo, umoci, runc) that panic with the tool's
//! stderr on failure, so a failing test shows what the tool complained about.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};

use relaunch_sandbox as sandbox;
use serde_json::Value;

/// Panics with a clear message unless the process runs as root.
pub fn require_root() {
    assert!(
        sandbox::is_root(),
        "testkit: this test needs root (umoci unpack / runc run)"
    );
}

/// Runs `skopeo inspect EXTRA_ARGS REF` and returns its JSON output; panics with stderr on failure.
/// `docker://` references get `--tls-verify=false` unless `extra_args` sets `--tls-verify`.
pub fn skopeo_inspect(transport_ref: &str, extra_args: &[&str]) -> Value {
    let mut cmd = Command::new("skopeo");
    cmd.arg("inspect").args(extra_args);
    if is_docker(transport_ref) && !has_flag(extra_args, "--tls-verify") {
        cmd.arg("--tls-verify=false");
    }
    cmd.arg(transport_ref);
    let out = run(cmd, &format!("skopeo inspect {transport_ref}"));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "testkit: skopeo inspect {transport_ref} printed invalid JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs `skopeo --insecure-policy copy EXTRA_ARGS SRC DST`; panics with stderr on failure.
/// `docker://` sides get `--src-tls-verify=false` / `--dest-tls-verify=false` unless set.
pub fn skopeo_copy(src: &str, dst: &str, extra_args: &[&str]) {
    let mut cmd = Command::new("skopeo");
    cmd.args(["--insecure-policy", "copy"]).args(extra_args);
    if is_docker(src) && !has_flag(extra_args, "--src-tls-verify") {
        cmd.arg("--src-tls-verify=false");
    }
    if is_docker(dst) && !has_flag(extra_args, "--dest-tls-verify") {
        cmd.arg("--dest-tls-verify=false");
    }
    cmd.args([src, dst]);
    run(cmd, &format!("skopeo copy {src} {dst}"));
}

/// Runs `umoci unpack --image LAYOUT:TAG BUNDLE` (requires root); panics with stderr on failure.
pub fn umoci_unpack(layout_dir: &Path, tag: &str, bundle: &Path) {
    require_root();
    sandbox::umoci_unpack(layout_dir, tag, bundle).unwrap_or_else(|e| panic!("testkit: {e}"));
}

/// Runs the bundle with `runc run` under a unique id and returns its captured output
/// (any exit status; the caller asserts on it).
///
/// Edits `BUNDLE/config.json` first: drops `linux.resources` and `linux.cgroupsPath` (no
/// cgroup limits needed in tests), sets `process.terminal=false` (output is captured),
/// replaces `process.args` when `args` is given and sets each `env` pair (replacing an
/// existing value of the same name). The container is force-deleted afterwards.
pub fn runc_run(bundle: &Path, args: Option<&[&str]>, env: &[(&str, &str)]) -> Output {
    require_root();
    let options = sandbox::RunOptions { args, env };
    sandbox::run_bundle(bundle, &unique_container_id(), options)
        .unwrap_or_else(|e| panic!("testkit: {e}"))
}

/// Unique across parallel test processes (pid) and within one (counter).
fn unique_container_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "relaunch-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

fn is_docker(transport_ref: &str) -> bool {
    transport_ref.starts_with("docker://")
}

fn has_flag(args: &[&str], flag: &str) -> bool {
    args.iter()
        .any(|a| *a == flag || a.starts_with(&format!("{flag}=")))
}

fn run(cmd: Command, what: &str) -> Output {
    sandbox::run_tool(cmd, what).unwrap_or_else(|e| panic!("testkit: {e}"))
}
