//! End to end with the reference tools: the busybox fixture becomes an image (umoci), goes
//! through a token registry behind the proxy and back (skopeo), is unpacked (umoci) and run
//! (runc). Needs root.
use std::path::Path;
use std::process::Command;

use relaunch_testkit::{
    busybox_rootfs, require_root, runc_run, skopeo_copy, skopeo_inspect, umoci_unpack, Auth,
    FaultPlan, FaultProxy, Registry,
};

fn umoci(args: &[&str], dir: &Path) {
    let out = Command::new("umoci")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "umoci {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn busybox_image_round_trips_through_a_token_registry_and_runs() {
    require_root();
    let work = tempfile::tempdir().unwrap();
    busybox_rootfs(&work.path().join("rootfs"));
    umoci(&["init", "--layout", "src"], work.path());
    umoci(&["new", "--image", "src:1"], work.path());
    umoci(&["insert", "--image", "src:1", "rootfs", "/"], work.path());

    let registry = Registry::start(Auth::Token);
    let proxy = FaultProxy::start(&registry.host(), FaultPlan::default());
    let authfile = registry
        .docker_config_dir_for(&proxy.host())
        .join("config.json");
    let authfile = authfile.to_str().unwrap();
    let src = format!("oci:{}:1", work.path().join("src").display());
    let remote = format!("docker://{}/app:1", proxy.host());
    skopeo_copy(&src, &remote, &["--dest-authfile", authfile]);

    let pushed = skopeo_inspect(&remote, &["--authfile", authfile]);
    assert_eq!(pushed["Layers"].as_array().unwrap().len(), 1);
    let requests = registry.token_requests();
    assert!(
        requests
            .iter()
            .any(|r| r.granted && r.scopes.iter().any(|s| s == "repository:app:pull,push")),
        "skopeo asked for push access: {requests:?}"
    );

    let dst = work.path().join("dst");
    skopeo_copy(
        &remote,
        &format!("oci:{}:1", dst.display()),
        &["--src-authfile", authfile],
    );
    let local = skopeo_inspect(&format!("oci:{}:1", dst.display()), &[]);
    assert_eq!(local["Digest"], pushed["Digest"]);

    let bundle = work.path().join("bundle");
    umoci_unpack(&dst, "1", &bundle);
    let out = runc_run(
        &bundle,
        Some(&["/bin/sh", "-c", "echo \"$GREETING from $(id -un)\""]),
        &[("GREETING", "hello")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from root\n");

    let out = runc_run(
        &bundle,
        Some(&["/bin/bash", "-c", "echo ${BASH_VERSINFO[0]}; exit 3"]),
        &[],
    );
    assert_eq!(out.status.code(), Some(3));
    let major: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(major >= 4);
}
