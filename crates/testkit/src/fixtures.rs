//! Filesystem fixtures for run images, built from Debian's statically linked busybox and
//! bash so the result runs in a container without any shared libraries.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

/// Source of busybox (Debian package busybox-static).
pub const BUSYBOX: &str = "/bin/busybox";
/// Source of bash (Debian package bash-static); installed as `/bin/bash` in the rootfs.
pub const BASH_STATIC: &str = "/bin/bash-static";

/// Applets linked to `/bin/busybox`: enough for shell scripts in tests and for
/// `/cnb/process` style symlink checks.
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "true", "false", "env", "cat", "echo", "ls", "printf", "pwd", "id", "sleep", "test", "[",
    "mkdir", "rm", "cp", "mv", "ln", "chmod", "touch", "grep", "sed", "head", "tail", "wc",
    "whoami", "uname", "date", "which", "readlink", "basename", "dirname", "sort", "stat",
];

/// Contents of the fixture's `/etc/passwd`.
pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
/// Contents of the fixture's `/etc/group`.
pub const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// Fills `dir` (created if missing) with a minimal root filesystem: `/bin/busybox` plus
/// relative symlinks for [`BUSYBOX_APPLETS`], `/usr/bin/env`, `/bin/bash` (bash-static),
/// `/etc/passwd`, `/etc/group`, `/root` and a world-writable sticky `/tmp`.
/// Panics with a clear message when a source binary is missing or `dir` is not writable.
pub fn busybox_rootfs(dir: &Path) {
    for d in ["bin", "etc", "root", "tmp", "usr/bin"] {
        create_dir(&dir.join(d));
    }
    set_mode(&dir.join("tmp"), 0o1777);
    set_mode(&dir.join("root"), 0o700);

    copy_binary(BUSYBOX, &dir.join("bin/busybox"), "busybox-static");
    copy_binary(BASH_STATIC, &dir.join("bin/bash"), "bash-static");
    for applet in BUSYBOX_APPLETS {
        link(Path::new("busybox"), &dir.join("bin").join(applet));
    }
    link(Path::new("../../bin/busybox"), &dir.join("usr/bin/env"));

    write(&dir.join("etc/passwd"), PASSWD);
    write(&dir.join("etc/group"), GROUP);
}

fn create_dir(path: &Path) {
    std::fs::create_dir_all(path)
        .unwrap_or_else(|e| panic!("testkit: cannot create {}: {e}", path.display()));
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("testkit: cannot chmod {}: {e}", path.display()));
}

fn copy_binary(src: &str, dst: &Path, package: &str) {
    assert!(
        Path::new(src).is_file(),
        "testkit: {src} not found; install the Debian package {package} (scripts/deps.sh)"
    );
    std::fs::copy(src, dst)
        .unwrap_or_else(|e| panic!("testkit: cannot copy {src} to {}: {e}", dst.display()));
    set_mode(dst, 0o755);
}

fn link(target: &Path, at: &Path) {
    // Re-running on the same dir is allowed: replace an existing link.
    let _ = std::fs::remove_file(at);
    symlink(target, at).unwrap_or_else(|e| {
        panic!(
            "testkit: cannot link {} -> {}: {e}",
            at.display(),
            target.display()
        )
    });
}

fn write(path: &Path, contents: &str) {
    std::fs::write(path, contents)
        .unwrap_or_else(|e| panic!("testkit: cannot write {}: {e}", path.display()));
}
