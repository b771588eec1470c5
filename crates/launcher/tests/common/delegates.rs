//! The delegates the meta-launcher tests bundle: the stand-in (the launcher crate's
//! `standin_delegate` example, built static so it also runs in a busybox container) and the
//! reference Go launcher. Shared with crates/relaunch/tests (included there by path: a
//! dev-dependency would pull the test tooling into the launcher's musl example builds).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const TARGET: &str = "x86_64-unknown-linux-musl";

/// The static stand-in delegate: `RELAUNCH_STANDIN_DELEGATE`, else built once per process
/// with `cargo build --release --target x86_64-unknown-linux-musl --example standin_delegate`.
pub fn standin_delegate() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("RELAUNCH_STANDIN_DELEGATE") {
                return PathBuf::from(p);
            }
            // Both including crates sit at crates/<name>.
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .current_dir(&root)
                .args(["build", "--release", "--target", TARGET, "-p", "launcher"])
                .args(["--example", "standin_delegate"])
                .status()
                .expect("run cargo build --example standin_delegate");
            assert!(status.success(), "building standin_delegate failed");
            let target_dir = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target"));
            target_dir
                .join(TARGET)
                .join("release/examples/standin_delegate")
        })
        .clone()
}

/// The reference Go launcher: `CNB_REFERENCE_LAUNCHER` (as `.ci/run` sets it), else the
/// shared copy; `None` (and a note on stdout) when neither exists.
pub fn reference_launcher() -> Option<PathBuf> {
    let path = std::env::var_os("CNB_REFERENCE_LAUNCHER")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/work/shared/reference/lifecycle-v0.21.17-launcher".into());
    if path.is_file() {
        return Some(path);
    }
    println!(
        "no reference launcher at {}: its cases are skipped",
        path.display()
    );
    None
}
