//! `--registry-ca` and `SSL_CERT_FILE`: copying to and from a registry serving HTTPS with a
//! certificate from a private CA.

use std::path::Path;
use std::process::{Command, Output};

use relaunch_oci::layer::{Entry, LayerBuilder};
use relaunch_oci::v1::Flavor;
use relaunch_oci::{write_image, Image, Layout, NoProgress};
use relaunch_testkit::{skopeo_inspect, Auth, Registry};
use serde_json::json;

fn relaunch(registry: &Registry, args: &[&str], ssl_cert_file: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_relaunch"));
    cmd.args(args)
        .env_remove("CNB_INSECURE_REGISTRIES")
        .env_remove("SSL_CERT_FILE")
        .env("DOCKER_CONFIG", registry.docker_config_dir());
    if let Some(file) = ssl_cert_file {
        cmd.env("SSL_CERT_FILE", file);
    }
    cmd.output().unwrap()
}

fn stdout_of_success(out: Output) -> String {
    assert!(
        out.status.success(),
        "relaunch failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn stderr_of_failure(out: Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected failure: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// A one-layer image stored as `app` in a new layout at `dir`; returns its digest.
fn layout_with_image(dir: &Path) -> String {
    let mut image = Image::new(Flavor::Oci, json!({"architecture": "amd64", "os": "linux"}))
        .expect("new image");
    let layer = LayerBuilder::new()
        .entry(Entry::dir("/srv", 0o755))
        .entry(Entry::file("/srv/hello", 0o644, "over https"))
        .build()
        .unwrap();
    relaunch_oci::mutate::append_layers(&mut image, vec![(layer, None)]).unwrap();
    let layout = Layout::create(dir).unwrap();
    let report = write_image(&image, &layout, &["app".into()], &NoProgress).unwrap();
    report.digest.unwrap().to_string()
}

#[test]
fn copy_to_and_from_a_private_ca_registry() {
    let registry = Registry::start_tls(Auth::Basic);
    let ca = registry.ca_cert_path().unwrap();
    let ca_arg = ca.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let digest = layout_with_image(&tmp.path().join("src"));
    let src = format!("oci:{}:app", tmp.path().join("src").display());
    let remote = format!("{}/secure/app:v1", registry.host());

    // Without the CA the registry's certificate is refused, with a hint.
    let err = stderr_of_failure(relaunch(&registry, &["copy", &src, &remote], None));
    assert!(err.contains("TLS handshake failed"), "{err}");
    assert!(err.contains("invalid peer certificate"), "{err}");
    assert!(err.contains("--registry-ca"), "{err}");

    // --registry-ca trusts it: push over HTTPS.
    let pushed = stdout_of_success(relaunch(
        &registry,
        &["copy", &src, &remote, "--registry-ca", ca_arg],
        None,
    ));
    assert_eq!(pushed, digest);

    // SSL_CERT_FILE does the same: pull it back; skopeo reads the copy.
    let back = tmp.path().join("back");
    let dst = format!("oci:{}:back", back.display());
    let pulled = stdout_of_success(relaunch(&registry, &["copy", &remote, &dst], Some(&ca)));
    assert_eq!(pulled, digest);
    assert_eq!(skopeo_inspect(&dst, &[])["Digest"], digest);
}

#[test]
fn unusable_registry_ca_files_are_named() {
    let registry = Registry::start_tls(Auth::Anonymous);
    let tmp = tempfile::tempdir().unwrap();
    let not_pem = tmp.path().join("not-a-cert.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let missing = tmp.path().join("missing.pem");
    let remote = format!("{}/secure/app:v1", registry.host());

    for (file, why) in [(&missing, "No such file"), (&not_pem, "no PEM certificate")] {
        let file_arg = file.to_str().unwrap();
        let err = stderr_of_failure(relaunch(
            &registry,
            &["inspect", &remote, "--registry-ca", file_arg],
            None,
        ));
        assert!(err.contains(file_arg), "{err}");
        assert!(err.contains(why), "{err}");
    }
}
