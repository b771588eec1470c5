//! Running an OCI layout image as a container with umoci + runc (demo only; the tests use
//! the testkit's helpers).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use serde_json::Value;

/// Why containers cannot run here, or `None` when they can (root, umoci and runc present).
pub fn unavailable() -> Option<String> {
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if !root {
        return Some("not running as root (umoci unpack and runc run need root)".into());
    }
    for tool in ["umoci", "runc"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("{tool} is not installed (Debian package {tool})"));
        }
    }
    None
}

/// Unpacks `layout:tag` into `bundle` and runs its entrypoint; returns combined output.
pub fn run(layout: &Path, tag: &str, bundle: &Path, id: &str) -> anyhow::Result<String> {
    let _ = std::fs::remove_dir_all(bundle);
    let image = format!("{}:{tag}", layout.display());
    let out = Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(bundle)
        .output()
        .context("running umoci")?;
    if !out.status.success() {
        bail!(
            "umoci unpack {image}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let config_path = bundle.join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&config_path)?)?;
    // Output is captured (no terminal) and no cgroup limits are needed for a demo.
    config["process"]["terminal"] = Value::Bool(false);
    if let Some(linux) = config.get_mut("linux").and_then(Value::as_object_mut) {
        linux.remove("resources");
        linux.remove("cgroupsPath");
    }
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;
    let out = Command::new("runc")
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(id)
        .stdin(Stdio::null())
        .output()
        .context("running runc")?;
    let _ = Command::new("runc").args(["delete", "-f", id]).output();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("runc run exited with {}: {text}", out.status);
    }
    Ok(text)
}
