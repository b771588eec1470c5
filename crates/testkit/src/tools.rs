//! Wrappers around the reference tools (skopeo, umoci, runc) that panic with the tool's
//! stderr on failure, so a failing test shows what the tool complained about.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

/// Panics with a clear message unless the process runs as root.
pub fn require_root() {
    // /proc/self is owned by the effective uid of the reading process.
    let euid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .expect("testkit: cannot stat /proc/self");
    assert!(
        euid == 0,
        "testkit: this test needs root (umoci unpack / runc run); it runs as uid {euid}"
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
    let image = format!("{}:{tag}", layout_dir.display());
    let mut cmd = Command::new("umoci");
    cmd.args(["unpack", "--image", &image]).arg(bundle);
    run(cmd, &format!("umoci unpack {image}"));
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
    edit_runtime_config(bundle, args, env);
    let id = unique_container_id();
    let out = Command::new("runc")
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("testkit: cannot run runc (Debian package runc): {e}"));
    // `runc run` normally removes the container itself; this covers abnormal exits.
    let _ = Command::new("runc")
        .args(["delete", "-f", &id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    out
}

fn edit_runtime_config(bundle: &Path, args: Option<&[&str]>, env: &[(&str, &str)]) {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("testkit: cannot read {}: {e}", path.display()));
    let mut config: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("testkit: {} is not JSON: {e}", path.display()));
    if let Some(linux) = config.get_mut("linux").and_then(Value::as_object_mut) {
        linux.remove("resources");
        linux.remove("cgroupsPath");
    }
    let process = config
        .get_mut("process")
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("testkit: {} has no process object", path.display()));
    process.insert("terminal".into(), Value::Bool(false));
    if let Some(args) = args {
        process.insert(
            "args".into(),
            args.iter().map(|a| Value::from(*a)).collect(),
        );
    }
    let mut vars: Vec<String> = process
        .get("env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    for (name, value) in env {
        let prefix = format!("{name}=");
        vars.retain(|v| !v.starts_with(&prefix));
        vars.push(format!("{name}={value}"));
    }
    process.insert("env".into(), vars.into_iter().map(Value::from).collect());
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&config).expect("serialize JSON"),
    )
    .unwrap_or_else(|e| panic!("testkit: cannot write {}: {e}", path.display()));
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

fn run(mut cmd: Command, what: &str) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("testkit: cannot run `{what}`: {e}"));
    assert!(
        out.status.success(),
        "testkit: `{what}` failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
