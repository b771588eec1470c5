//! The registry transport through the testkit's fault-injecting proxy (dropped
//! connections, 500/429/502 answers, truncated bodies): operations succeed through retries
//! or fail with a clear error, and a tag never points at a missing or partial blob.
//! Fault decisions are a pure function of the plan's seed and the request sequence, so
//! each case is deterministic.

mod registry_support;

use registry_support::*;
use relaunch_oci::write::copy_layer;
use relaunch_oci::{write_image, Image, ManifestRef, NoProgress, Transport};
use relaunch_testkit::{Auth, FaultPlan, FaultProxy, Registry};

/// Chunk size small enough that the big layer goes up in several PATCHes.
/// Layers are pushed in parallel by `write_image`, so only tests that accept either
/// outcome use it; the others push in sequence and are deterministic per seed.
const CHUNK: u64 = 32 * 1024;

fn sizes() -> [usize; 3] {
    [150_000, 8_000, 300]
}

/// What `write_image` does (layers, config, tag), one request at a time, so the proxy sees
/// the same request sequence, and injects the same faults, on every run.
fn push_in_sequence(image: &Image, target: &dyn Transport, tag: &str) -> relaunch_oci::Result<()> {
    for layer in image.layers() {
        copy_layer(layer, target, &NoProgress)?;
    }
    let config = image.config_bytes();
    let descriptor = image.config_descriptor();
    target.put_blob(&descriptor.digest, descriptor.size, &mut &config[..])?;
    target.put_manifest(&ManifestRef::Tag(tag.into()), &image.raw_manifest())
}

#[test]
fn moderate_faults_are_ridden_out_by_retries() {
    for seed in 1..=3 {
        let registry = Registry::start(Auth::Basic);
        let proxy = FaultProxy::start(
            &registry.host(),
            FaultPlan {
                seed,
                drop_connection: 0.04,
                status_500: 0.03,
                status_429: 0.03,
                status_502: 0.03,
                truncate_body: 0.04,
            },
        );
        let host = proxy.host();
        let image = sample_image(seed, &sizes());
        let pusher = client(&registry, &host, Some(CHUNK));
        push_in_sequence(&image, repo(&pusher, &host, "app").as_ref(), "v1")
            .unwrap_or_else(|e| panic!("seed {seed}: push failed despite retries: {e}"));
        assert!(assert_tag_complete(&registry, "app", "v1"));

        let puller = client(&registry, &host, None);
        let pulled = pull(&repo(&puller, &host, "app"), "v1")
            .unwrap_or_else(|e| panic!("seed {seed}: pull failed despite retries: {e}"));
        assert_eq!(pulled.digest(), image.digest());

        let retries = pusher.counters().retries + puller.counters().retries;
        assert!(
            proxy.faults_injected() > 0,
            "seed {seed}: no fault was injected"
        );
        assert!(
            retries > 0,
            "seed {seed}: faults injected but nothing retried"
        );
    }
}

#[test]
fn heavy_faults_fail_clearly_and_never_publish_a_partial_image() {
    let mut failures = 0;
    for seed in 1..=5 {
        let registry = Registry::start(Auth::Anonymous);
        let proxy = FaultProxy::start(
            &registry.host(),
            FaultPlan {
                seed,
                drop_connection: 0.15,
                status_500: 0.15,
                status_429: 0.0,
                status_502: 0.15,
                truncate_body: 0.15,
            },
        );
        let host = proxy.host();
        let image = sample_image(seed, &sizes());
        let outcome = write_image(
            &image,
            repo(&client(&registry, &host, Some(CHUNK)), &host, "app").as_ref(),
            &["v1".into()],
            &NoProgress,
        );
        match outcome {
            Ok(report) => {
                assert_eq!(report.digest, Some(image.digest()));
                assert!(assert_tag_complete(&registry, "app", "v1"), "seed {seed}");
            }
            Err(e) => {
                failures += 1;
                let message = e.to_string();
                assert!(
                    message.contains("gave up") || message.contains("HTTP 5"),
                    "seed {seed}: unclear error: {message}"
                );
                // Whatever happened, the tag is absent or complete (checked inside).
                assert_tag_complete(&registry, "app", "v1");
            }
        }
    }
    // With 60% of requests failing some attempts must run out of retries.
    assert!(failures > 0, "no push failed under 60% faults");
}

#[test]
fn throttling_is_retried() {
    let registry = Registry::start(Auth::Anonymous);
    let proxy = FaultProxy::start(
        &registry.host(),
        FaultPlan {
            seed: 42,
            status_429: 0.3,
            ..FaultPlan::default()
        },
    );
    let host = proxy.host();
    let image = sample_image(11, &[5000, 6000, 7000]);
    let pusher = client(&registry, &host, None);
    push_in_sequence(&image, repo(&pusher, &host, "app").as_ref(), "v1").expect("push");
    assert!(proxy.faults_injected() > 0);
    assert!(pusher.counters().retries > 0);
    assert!(assert_tag_complete(&registry, "app", "v1"));
}

#[test]
fn truncated_downloads_resume_and_verify() {
    let (registry, host, image) = registry_with_app(Auth::Anonymous, 12, &[200_000, 100_000]);

    let proxy = FaultProxy::start(
        &host,
        FaultPlan {
            seed: 3,
            truncate_body: 0.4,
            ..FaultPlan::default()
        },
    );
    let puller = client(&registry, &proxy.host(), None);
    let pulled = pull(&repo(&puller, &proxy.host(), "app"), "v1").expect("pull through truncation");
    assert_eq!(pulled.digest(), image.digest());
    let counters = puller.counters();
    assert!(proxy.faults_injected() > 0);
    assert!(counters.retries > 0, "{counters:?}");
    // Manifest, config and two layers: anything beyond four GETs re-requested a broken body.
    assert!(counters.requests_of("GET") > 4, "{counters:?}");
    // Every layer byte arrived at least once; resumed ranges re-send nothing twice.
    let layer_bytes: u64 = image.layers().iter().map(|l| l.descriptor.size).sum();
    let got = counters.bytes_for(image.layers().iter().map(|l| &l.descriptor.digest));
    assert!(got >= layer_bytes, "{got} < {layer_bytes}");
}
