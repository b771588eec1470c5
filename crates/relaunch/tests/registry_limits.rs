//! The CLI's registry guarantees end to end: `--timeout` bounds all registry traffic, and
//! credentials are found where the lifecycle and podman users keep them.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use relaunch_oci::layer::{Entry, LayerBuilder};
use relaunch_oci::v1::Flavor;
use relaunch_oci::{mutate, write_image, Image, NoProgress};
use relaunch_testkit::{Auth, Registry, SilentServer};
use serde_json::json;

/// `relaunch ARGS` with no credentials from the test user's environment but `envs`.
fn relaunch(args: &[&str], envs: &[(&str, String)]) -> Output {
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_relaunch"));
    cmd.args(args)
        .env_remove("CNB_INSECURE_REGISTRIES")
        .env_remove("CNB_REGISTRY_AUTH")
        .env_remove("REGISTRY_AUTH_FILE")
        .env("DOCKER_CONFIG", empty.path())
        .env("XDG_RUNTIME_DIR", empty.path());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn timeout_bounds_a_registry_that_never_answers() {
    let silent = SilentServer::start();
    let image = format!("{}/app:v1", silent.host());
    let started = Instant::now();
    let out = relaunch(&["inspect", &image, "--timeout", "2s"], &[]);
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--timeout"), "{}", stderr(&out));
    assert!(elapsed < Duration::from_secs(6), "{elapsed:?}");
    let bad = relaunch(&["inspect", &image, "--timeout", "soon"], &[]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
}

fn pushed(registry: &Registry) -> String {
    let host = registry.host();
    let config = json!({"architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": []}});
    let mut image = Image::new(Flavor::Oci, config).unwrap();
    let layer = LayerBuilder::new()
        .entry(Entry::file("/hello", 0o644, "hi"))
        .build()
        .unwrap();
    mutate::append_layers(&mut image, vec![(layer, None)]).unwrap();
    let options = relaunch_oci::TransportOptions {
        credentials: [(host.clone(), basic(registry))].into(),
        ..Default::default()
    };
    let r = relaunch_oci::ImageRef::parse(&format!("{host}/app:v1")).unwrap();
    let target = relaunch_oci::Repo::create(&r, &options).unwrap();
    write_image(
        &image,
        target.transport.as_ref(),
        &["v1".into()],
        &NoProgress,
    )
    .unwrap();
    format!("{host}/app:v1")
}

fn basic(registry: &Registry) -> relaunch_oci::remote::Credential {
    let (username, password) = registry.credentials().unwrap();
    relaunch_oci::remote::Credential::Basic { username, password }
}

/// `CNB_REGISTRY_AUTH` (the platform spec's variable) and containers' auth files
/// (`REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`) are credential sources;
/// without any, the registry refuses.
#[test]
fn credentials_from_cnb_registry_auth_and_containers_auth_files() {
    let registry = Registry::start(Auth::Basic);
    let image = pushed(&registry);
    let host = registry.host();
    // The testkit's Docker config holds `{"auths":{HOST:{"auth":BASE64}}}`: the same
    // format as containers' auth.json.
    let auth_json =
        std::fs::read_to_string(registry.docker_config_dir().join("config.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&auth_json).unwrap();
    let encoded = parsed["auths"][&host]["auth"].as_str().unwrap().to_string();

    let anonymous = relaunch(&["inspect", &image], &[]);
    assert_eq!(anonymous.status.code(), Some(1), "{}", stderr(&anonymous));

    let header = json!({ host.clone(): format!("Basic {encoded}") }).to_string();
    let out = relaunch(&["inspect", &image], &[("CNB_REGISTRY_AUTH", header)]);
    assert!(out.status.success(), "{}", stderr(&out));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("auth.json");
    std::fs::write(&file, &auth_json).unwrap();
    let out = relaunch(
        &["inspect", &image],
        &[("REGISTRY_AUTH_FILE", file.display().to_string())],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let runtime = tempfile::tempdir().unwrap();
    std::fs::create_dir(runtime.path().join("containers")).unwrap();
    std::fs::write(runtime.path().join("containers/auth.json"), &auth_json).unwrap();
    let out = relaunch(
        &["inspect", &image],
        &[("XDG_RUNTIME_DIR", runtime.path().display().to_string())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}
