//! The registry transport over HTTPS: a testkit registry serving TLS with a certificate from
//! a private CA, trusted through `TransportOptions::extra_root_certs` and refused without it.

mod registry_support;

use std::path::PathBuf;
use std::sync::Arc;

use registry_support::*;
use relaunch_oci::remote::{ClientConfig, CredentialSource, RegistryClient};
use relaunch_oci::{write_image, Error, NoProgress, TransportOptions};
use relaunch_testkit::{Auth, Registry};

/// A client for `registry` (HTTPS, its credentials) trusting the CA bundles `cas`.
fn https_client(registry: &Registry, cas: &[PathBuf]) -> Arc<RegistryClient> {
    let options = TransportOptions {
        extra_root_certs: cas.to_vec(),
        ..TransportOptions::default()
    };
    let config = ClientConfig::from_options(&options).expect("load CA bundles");
    Arc::new(RegistryClient::new(ClientConfig {
        credentials: CredentialSource::DockerConfigDir(registry.docker_config_dir()),
        retry: fast_retry(),
        ..config
    }))
}

fn ca(registry: &Registry) -> PathBuf {
    registry.ca_cert_path().expect("a TLS registry has a CA")
}

/// skopeo verifying TLS with the registry's CA (`--cert-dir` holding it as `ca.crt`).
fn skopeo_inspect_verified(registry: &Registry, tag_ref: &str) -> serde_json::Value {
    let cert_dir = tempfile::tempdir().unwrap();
    std::fs::copy(ca(registry), cert_dir.path().join("ca.crt")).unwrap();
    let mut args = vec![
        "--tls-verify=true".to_string(),
        format!("--cert-dir={}", cert_dir.path().display()),
    ];
    args.extend(skopeo_creds(registry));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    relaunch_testkit::skopeo_inspect(&format!("docker://{}/{tag_ref}", registry.host()), &args)
}

fn https_round_trip(auth: Auth) {
    let registry = Registry::start_tls(auth);
    let host = registry.host();
    let image = sample_image(7, &[2000, 40_000]);

    let pusher = https_client(&registry, &[ca(&registry)]);
    let report = push(&image, &repo(&pusher, &host, "secure/app"), "v1");
    assert_eq!(report.uploaded, 2);
    assert_eq!(report.digest, Some(image.digest()));

    // skopeo, verifying the chain itself, reads what we pushed.
    let inspected = skopeo_inspect_verified(&registry, "secure/app:v1");
    assert_eq!(inspected["Digest"], image.digest().to_string());
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 2);

    // A fresh client pulls it back over HTTPS, verified.
    let puller = https_client(&registry, &[ca(&registry)]);
    let pulled = pull(&repo(&puller, &host, "secure/app"), "v1").expect("pull over https");
    assert_eq!(pulled.digest(), image.digest());
    assert_eq!(pulled.diff_ids(), image.diff_ids());
}

#[test]
fn https_round_trip_anonymous() {
    https_round_trip(Auth::Anonymous);
}

#[test]
fn https_round_trip_basic() {
    https_round_trip(Auth::Basic);
}

#[test]
fn https_round_trip_token() {
    https_round_trip(Auth::Token);
}

/// Without the registry's CA — no extra CA, or another one — the handshake is refused with
/// a certificate error, at once (not retried), and nothing is written.
#[test]
fn https_without_the_registry_ca_fails_with_a_certificate_error() {
    let registry = Registry::start_tls(Auth::Anonymous);
    let other = Registry::start_tls(Auth::Anonymous);
    let host = registry.host();
    let image = sample_image(8, &[1000]);

    for cas in [vec![], vec![ca(&other)]] {
        let client = https_client(&registry, &cas);
        let target = repo(&client, &host, "secure/app");
        let err = write_image(&image, target.as_ref(), &["v1".into()], &NoProgress)
            .expect_err("an unknown CA must be refused");
        let text = err.to_string();
        assert!(matches!(err, Error::Registry { .. }), "{err:?}");
        assert!(text.contains(&host), "{text}");
        assert!(text.contains("TLS handshake failed"), "{text}");
        assert!(text.contains("invalid peer certificate"), "{text}");
        assert!(text.contains("--registry-ca"), "{text}");
        assert_eq!(client.counters().retries, 0, "a TLS refusal is not retried");
    }

    // The registry got nothing: the verified reader finds no tag.
    let reader = https_client(&registry, &[ca(&registry)]);
    let err = pull(&repo(&reader, &host, "secure/app"), "v1").unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

/// `--insecure-registry` as the lifecycle means it: HTTPS without certificate verification
/// (the registry's private CA is not trusted here), so no plain HTTP is spoken to it.
#[test]
fn the_insecure_flag_means_https_without_verification() {
    let registry = Registry::start_tls(Auth::Basic);
    let host = registry.host();
    let image = sample_image(9, &[1000]);
    for flag in [host.clone(), host.split(':').next().unwrap().to_string()] {
        let options = TransportOptions {
            insecure_registries: vec![flag.clone()],
            ..TransportOptions::default()
        };
        let client = Arc::new(RegistryClient::new(ClientConfig {
            credentials: CredentialSource::DockerConfigDir(registry.docker_config_dir()),
            retry: fast_retry(),
            ..ClientConfig::from_options(&options).unwrap()
        }));
        push(&image, &repo(&client, &host, "insecure/app"), "v1");
        assert_eq!(client.counters().scheme_probes, 1, "{flag}");
    }
    let inspected = skopeo_inspect_verified(&registry, "insecure/app:v1");
    assert_eq!(inspected["Digest"], image.digest().to_string());
}

/// Plain HTTP: with the flag, for any name; without it, only for go-containerregistry's
/// local names (`127.0.0.1:PORT` here), after HTTPS failed to connect.
#[test]
fn plain_http_is_a_fallback_for_flagged_and_local_registries() {
    let registry = Registry::start(Auth::Anonymous);
    let host = registry.host();
    let image = sample_image(10, &[1000]);
    for flags in [vec![], vec![host.clone()]] {
        let options = TransportOptions {
            insecure_registries: flags.clone(),
            ..TransportOptions::default()
        };
        let client = Arc::new(RegistryClient::new(ClientConfig {
            retry: fast_retry(),
            ..ClientConfig::from_options(&options).unwrap()
        }));
        push(&image, &repo(&client, &host, "plain/app"), "v1");
        assert_eq!(client.counters().scheme_probes, 1, "{flags:?}");
    }
    assert_skopeo_sees(&registry, "plain/app", "v1", &image);
}
