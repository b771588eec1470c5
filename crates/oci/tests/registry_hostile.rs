//! Hostile registries: credentials stay with the registry's own host:port, every wait has
//! a deadline, size caps are final (testkit proxy extensions, real registries).

#[path = "registry_support/mod.rs"]
mod registry_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use registry_support::*;
use relaunch_oci::remote::{ClientConfig, CredentialSource, RegistryClient, RetryPolicy};
use relaunch_oci::{Error, ManifestRef, Transport};
use relaunch_testkit::{
    sleeping_credential_helper, Auth, FaultPlan, FaultProxy, ForeignHost, ProxyOptions, Registry,
    SilentServer, UnreachablePort,
};

fn proxy_with(registry: &Registry, options: ProxyOptions) -> FaultProxy {
    FaultProxy::start_with(&registry.host(), FaultPlan::default(), options)
}

/// An upload `Location` naming another host:port gets no `Authorization` (basic or
/// bearer), and that host's 401 does not replace the registry's own challenge: no token is
/// asked of the realm it names, and the registry is still reachable with its credentials.
#[test]
fn credentials_never_follow_an_upload_location_to_another_host() {
    for auth in [Auth::Basic, Auth::Token] {
        let registry = Registry::start(auth);
        let proxy = proxy_with(
            &registry,
            ProxyOptions {
                foreign_uploads: Some(ForeignHost::Challenge),
                ..ProxyOptions::default()
            },
        );
        let host = proxy.host();
        let client = client(&registry, &host, Some(64 << 10));
        let target = repo(&client, &host, "app");
        let image = sample_image(1, &[100 << 10, 10 << 10]);
        let err = relaunch_oci::write_image(
            &image,
            target.as_ref(),
            &["v1".into()],
            &relaunch_oci::NoProgress,
        )
        .expect_err("the foreign host refuses every upload");
        assert!(matches!(err, Error::Unauthorized { .. }), "{auth:?}: {err}");

        let seen = proxy.foreign_requests();
        assert!(
            !seen.is_empty(),
            "{auth:?}: uploads went to the foreign host"
        );
        for request in &seen {
            assert_eq!(
                request.header("authorization"),
                None,
                "{auth:?}: credentials sent to another host: {}",
                request.start_line
            );
            assert!(
                !request.start_line.contains("/token"),
                "{auth:?}: a token was asked of the foreign realm: {}",
                request.start_line
            );
        }
        // The registry's own challenge still stands: authenticated reads work.
        let challenges = client.counters().auth_challenges;
        let absent = target
            .head_manifest(&ManifestRef::Tag("v1".into()))
            .expect("HEAD with the registry's credentials");
        assert_eq!(absent, None, "{auth:?}: nothing was published");
        assert_eq!(client.counters().auth_challenges, challenges, "{auth:?}");
    }
}

/// Storage on another host that accepts uploads without credentials (as pre-signed URLs
/// do) still gets the blobs; only the registry's own host sees `Authorization`.
#[test]
fn uploads_to_another_host_work_without_credentials() {
    let registry = Registry::start(Auth::Anonymous);
    let proxy = proxy_with(
        &registry,
        ProxyOptions {
            foreign_uploads: Some(ForeignHost::Forward),
            ..ProxyOptions::default()
        },
    );
    let host = proxy.host();
    let target = repo(&client(&registry, &host, Some(64 << 10)), &host, "app");
    let image = sample_image(2, &[100 << 10, 10 << 10]);
    push(&image, &target, "v1");
    assert!(!proxy.foreign_requests().is_empty());
    assert_skopeo_sees(&registry, "app", "v1", &image);
}

/// A manifest over the 8 MiB cap fails at once, naming the cap: asking again would only
/// fetch the same oversized body.
#[test]
fn an_oversized_manifest_is_fetched_once() {
    let registry = Registry::start(Auth::Anonymous);
    let proxy = proxy_with(
        &registry,
        ProxyOptions {
            oversized_manifest: Some(100 << 20),
            ..ProxyOptions::default()
        },
    );
    let host = proxy.host();
    let source = repo(&client(&registry, &host, None), &host, "app");
    let err = source
        .get_manifest(&ManifestRef::Tag("v1".into()))
        .expect_err("the manifest is too large");
    assert!(err.to_string().contains("8 MiB limit"), "{err}");
    assert_eq!(proxy.requests_seen(), 1, "{err}");
}

/// A client whose deadlines are short enough for tests.
fn impatient(config: ClientConfig) -> Arc<RegistryClient> {
    Arc::new(RegistryClient::new(ClientConfig {
        connect_timeout: Duration::from_secs(2),
        io_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(1),
        min_throughput: 1024,
        retry: RetryPolicy {
            max_attempts: 2,
            ..fast_retry()
        },
        ..config
    }))
}

/// Runs `f` on a thread and fails the test if it takes longer than `limit` (so a hang
/// before the fix is a failure, not a stuck test run).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("still waiting after {limit:?}"))
}

/// Fetches `app:v1` from `host`, which must fail, under `within(limit)`; returns the error
/// and when the fetch started.
fn manifest_failure(
    client: &Arc<RegistryClient>,
    host: &str,
    limit: Duration,
    expect: &'static str,
) -> (Error, Instant) {
    let source = repo(client, host, "app");
    let started = Instant::now();
    let err = within(limit, move || {
        source
            .get_manifest(&ManifestRef::Tag("v1".into()))
            .expect_err(expect)
    });
    (err, started)
}

/// A registry that trickles its answers at 1 byte/s never resets a whole-request deadline:
/// small answers get `request_timeout`, blobs that plus their size at `min_throughput`.
#[test]
fn a_trickling_registry_hits_the_request_deadline() {
    let registry = Registry::start(Auth::Anonymous);
    let direct = registry.host();
    push(
        &sample_image(3, &[2000]),
        &repo(&client(&registry, &direct, None), &direct, "app"),
        "v1",
    );
    let proxy = proxy_with(
        &registry,
        ProxyOptions {
            trickle_bodies: true,
            ..ProxyOptions::default()
        },
    );
    let host = proxy.host();
    let slow = impatient(ClientConfig {
        insecure_registries: vec![host.clone()],
        ..ClientConfig::default()
    });
    let (err, started) = manifest_failure(
        &slow,
        &host,
        Duration::from_secs(30),
        "a manifest at 1 byte/s cannot arrive in time",
    );
    assert!(err.to_string().contains("timeout"), "{err}");
    // Two attempts of about a second each, plus one short backoff.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

/// A blob trickled at 1 byte/s is cut off by the throughput rule (~2 KiB at 1 KiB/s
/// plus one second), not after its whole length.
#[test]
fn a_trickled_blob_is_cut_off_by_the_throughput_rule() {
    let registry = Registry::start(Auth::Anonymous);
    let direct = registry.host();
    let image = sample_image(4, &[2000]);
    push(
        &image,
        &repo(&client(&registry, &direct, None), &direct, "app"),
        "v1",
    );
    let proxy = proxy_with(
        &registry,
        ProxyOptions {
            trickle_bodies: true,
            ..ProxyOptions::default()
        },
    );
    let host = proxy.host();
    let slow = impatient(ClientConfig {
        insecure_registries: vec![host.clone()],
        ..ClientConfig::default()
    });
    let source = repo(&slow, &host, "app");
    let layer = image.layers()[0].descriptor.clone();
    let started = Instant::now();
    let err = within(Duration::from_secs(60), move || {
        let mut blob = source.open_blob_verified(&layer.digest, layer.size)?;
        std::io::copy(&mut blob, &mut std::io::sink())
            .map_err(|e| relaunch_oci::Error::io("reading the blob", e))
    })
    .expect_err("a blob at 1 byte/s cannot arrive in time");
    let budget = 1.0 + layer.size as f64 / 1024.0;
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        elapsed < 2.0 * budget + 3.0,
        "{elapsed}s for a budget of {budget}s: {err}"
    );
    assert!(elapsed < layer.size as f64 / 2.0, "{elapsed}s: {err}");
}

/// A server that accepts and never answers costs the response timeout per attempt.
#[test]
fn a_server_that_never_answers_times_out() {
    let silent = SilentServer::start();
    let host = silent.host();
    let mute = impatient(ClientConfig {
        insecure_registries: vec![host.clone()],
        ..ClientConfig::default()
    });
    let (err, started) = manifest_failure(&mute, &host, Duration::from_secs(30), "no answer");
    assert!(err.to_string().contains("timeout"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

/// The command's deadline (`--timeout`) ends retries, waits and requests alike, however
/// generous the per-request limits.
#[test]
fn the_command_deadline_ends_everything() {
    let silent = SilentServer::start();
    let host = silent.host();
    let client = Arc::new(RegistryClient::new(ClientConfig {
        insecure_registries: vec![host.clone()],
        deadline: Some(Instant::now() + Duration::from_secs(2)),
        ..ClientConfig::default()
    }));
    let (err, started) = manifest_failure(&client, &host, Duration::from_secs(30), "no answer");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}: {err}",
        started.elapsed()
    );
}

/// A credential helper that never answers is killed at the helper timeout; the request
/// fails with an error naming it instead of hanging.
#[test]
fn a_credential_helper_that_never_answers_is_cut_off() {
    let registry = Registry::start(Auth::Basic);
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"credsStore":"relaunch-sleepy"}"#,
    )
    .unwrap();
    let bin = sleeping_credential_helper(&dir.path().join("bin"), "relaunch-sleepy", 600);
    // Each nextest test runs in its own process: changing PATH here is contained.
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::env::set_var("PATH", path);
    let client = Arc::new(RegistryClient::new(ClientConfig {
        insecure_registries: vec![host.clone()],
        credentials: CredentialSource::DockerConfigDir(dir.path().into()),
        credential_helper_timeout: Duration::from_secs(1),
        retry: fast_retry(),
        ..ClientConfig::default()
    }));
    let target = repo(&client, &host, "app");
    let started = Instant::now();
    let err = within(Duration::from_secs(30), move || {
        target
            .head_manifest(&ManifestRef::Tag("v1".into()))
            .expect_err("no credentials in time")
    });
    assert!(
        err.to_string()
            .contains("docker-credential-relaunch-sleepy did not answer within 1s"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// A registry whose port never completes the TCP handshake costs the connect timeout per
/// attempt, not the kernel's minutes of SYN retries.
#[test]
fn a_connection_that_never_completes_hits_the_connect_timeout() {
    let port = UnreachablePort::start();
    let host = port.host();
    let client = Arc::new(RegistryClient::new(ClientConfig {
        insecure_registries: vec![host.clone()],
        connect_timeout: Duration::from_secs(1),
        retry: RetryPolicy {
            max_attempts: 2,
            ..fast_retry()
        },
        ..ClientConfig::default()
    }));
    let (err, started) = manifest_failure(&client, &host, Duration::from_secs(60), "no connection");
    assert!(err.to_string().contains("timeout"), "{err}");
    // The scheme probe and two attempts, about a second each.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}: {err}",
        started.elapsed()
    );
}
