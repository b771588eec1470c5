//! The busybox fixture is a working root filesystem (its static binaries run on the host too).
use std::path::Path;
use std::process::Command;

use relaunch_testkit::busybox_rootfs;
use relaunch_testkit::fixtures::BUSYBOX_APPLETS;

#[test]
fn busybox_rootfs_has_working_shells_and_users() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    busybox_rootfs(&root);

    for applet in BUSYBOX_APPLETS {
        let link = root.join("bin").join(applet);
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("busybox"),
            "{applet}"
        );
    }
    let out = Command::new(root.join("bin/sh"))
        .args(["-c", "echo from busybox sh"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from busybox sh\n");
    let out = Command::new(root.join("usr/bin/env"))
        .args(["echo", "via env"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "via env\n");
    let out = Command::new(root.join("bin/bash"))
        .args(["-c", "echo $((6 * 7))"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");

    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.starts_with("root:x:0:0:"));
    let tmp_mode = std::fs::metadata(root.join("tmp")).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&tmp_mode) & 0o7777,
        0o1777
    );

    // Building twice into the same directory is allowed.
    busybox_rootfs(&root);
}
