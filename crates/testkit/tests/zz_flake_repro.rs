// THROWAWAY (lifecycle-audit): reproduce the token-auth skopeo pull flake.
use relaunch_testkit::{busybox_rootfs, Auth, Registry};
use std::path::Path;
use std::process::Command;

fn umoci(args: &[&str], dir: &Path) {
    let out = Command::new("umoci")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn repro() {
    let n: usize = std::env::var("REPRO_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let work = tempfile::tempdir().unwrap();
    busybox_rootfs(&work.path().join("rootfs"));
    umoci(&["init", "--layout", "src"], work.path());
    umoci(&["new", "--image", "src:1"], work.path());
    umoci(&["insert", "--image", "src:1", "rootfs", "/"], work.path());
    let registry = Registry::start(Auth::Token);
    let src = format!("oci:{}:1", work.path().join("src").display());
    let remote = format!("docker://{}/app:1", registry.host());
    let authfile = registry.docker_config_dir().join("config.json");
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--dest-tls-verify=false",
            "--dest-authfile",
        ])
        .arg(&authfile)
        .args([&src, &remote])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for content in ["", "{", "{\"auths\":{}}"] {
        let d = work.path().join("emptycfg");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("config.json"), content).unwrap();
        let out = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--authfile"])
            .arg(d.join("config.json"))
            .arg(&remote)
            .output()
            .unwrap();
        eprintln!(
            "=== authfile {content:?}: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut failures = 0;
    for i in 0..n {
        let authfile = registry.docker_config_dir().join("config.json");
        let dst = format!("oci:{}:1", work.path().join(format!("dst{i}")).display());
        let before = registry.token_requests().len();
        let out = Command::new("skopeo")
            .args([
                "--debug",
                "--insecure-policy",
                "copy",
                "--src-tls-verify=false",
                "--src-authfile",
            ])
            .arg(&authfile)
            .args([&remote, &dst])
            .output()
            .unwrap();
        if !out.status.success() {
            failures += 1;
            let reqs = registry.token_requests();
            eprintln!(
                "=== FAILURE {i}: token requests {:?}\n{}",
                &reqs[before..],
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    assert_eq!(failures, 0, "{failures} of {n} failed");
}
