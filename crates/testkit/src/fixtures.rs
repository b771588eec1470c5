//! Filesystem fixtures for run images: the busybox-static + bash-static root filesystem of
//! `relaunch_sandbox` (which the demo uses too), panicking on failure.

use std::path::Path;

pub use relaunch_sandbox::BUSYBOX_APPLETS;

/// Fills `dir` (created if missing) with a minimal root filesystem: `/bin/busybox` plus
/// relative symlinks for [`BUSYBOX_APPLETS`], `/usr/bin/env`, `/bin/bash` (bash-static),
/// `/etc/passwd`, `/etc/group`, `/root` and a world-writable sticky `/tmp`.
/// Panics with a clear message when a source binary is missing or `dir` is not writable.
pub fn busybox_rootfs(dir: &Path) {
    relaunch_sandbox::busybox_rootfs(dir)
        .unwrap_or_else(|e| panic!("testkit: cannot build the busybox root filesystem: {e}"));
}
