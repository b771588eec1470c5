//! Registry benchmark: what two common operations cost on the wire, measured with the
//! client's own counters against a real registry (testkit) in anonymous and token mode.
//!
//! 1. Replace one mid-stack layer of an image in a registry when the replacement blob is
//!    already in the target repository. Budget: ≤ 6 registry requests, 0 layer bytes.
//! 2. Copy a multi-layer image between two repositories of one registry.
//!    Budget: every layer mounted, 0 layer bytes through the client, and one request per
//!    blob: mounts are tried before any HEAD, the config is mounted too (layers + 4:
//!    GET manifest, GET config, a mount per layer and the config, PUT manifest).
//!
//! Run: `scripts/bench-registry.sh` (exits non-zero when a budget is exceeded).

#[path = "../tests/registry_support/mod.rs"]
mod registry_support;

use std::sync::Arc;
use std::time::Instant;

use registry_support::*;
use relaunch_oci::mutate::{self, LayerSel};
use relaunch_oci::read::{self, Artifact};
use relaunch_oci::remote::{Counters, RegistryTransport};
use relaunch_oci::{Digest, Image, ManifestRef, Transport};
use relaunch_testkit::{Auth, Registry};

const LAYER_SIZES: [usize; 5] = [4 << 20, 2 << 20, 1 << 20, 512 << 10, 256 << 10];
const REPLACED: usize = 2;
const REQUEST_BUDGET: u64 = 6;

fn main() {
    let mut ok = true;
    for auth in [Auth::Anonymous, Auth::Token] {
        let registry = Registry::start(auth);
        ok &= replace_layer(&registry, auth);
        ok &= copy_between_repositories(&registry, auth);
    }
    if !ok {
        eprintln!("registry benchmark: a budget was exceeded");
        std::process::exit(1);
    }
}

fn load(source: &Arc<RegistryTransport>, tag: &str) -> Image {
    let transport: Arc<dyn Transport> = source.clone();
    match read::load(&transport, &ManifestRef::Tag(tag.into())).expect("load image") {
        Artifact::Image(image) => image,
        Artifact::Index(_) => panic!("{tag} is an index"),
    }
}

fn replace_layer(registry: &Registry, auth: Auth) -> bool {
    let host = registry.host();
    let base = sample_image(1, &LAYER_SIZES);
    let replacement = layer(99, LAYER_SIZES[REPLACED]);
    // Setup (not measured): the image, and the replacement blob already in the repository
    // (e.g. pushed with an earlier build).
    let setup = repo(&client(registry, &host, None), &host, "bench/app");
    push(&base, &setup, "v1");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut replacement.open().expect("open layer"), &mut bytes)
        .expect("read layer");
    setup
        .put_blob(
            &replacement.descriptor.digest,
            replacement.descriptor.size,
            &mut &bytes[..],
        )
        .expect("seed replacement blob");

    // Measured: a fresh client loads, edits and writes back.
    let measured = client(registry, &host, None);
    let target = repo(&measured, &host, "bench/app");
    let started = Instant::now();
    let mut image = load(&target, "v1");
    let rebuilt = layer(99, LAYER_SIZES[REPLACED]);
    mutate::replace_layer(&mut image, &LayerSel::Index(REPLACED), rebuilt, None).expect("replace");
    let report = push(&image, &target, "v2");
    let elapsed = started.elapsed();

    let inspected = skopeo_inspect(registry, "bench/app", "v2");
    assert_eq!(inspected["Digest"], image.digest().to_string());
    assert_eq!(
        inspected["Layers"][REPLACED],
        replacement.descriptor.digest.to_string()
    );
    assert!(assert_tag_complete(registry, "bench/app", "v2"));

    let counters = measured.counters();
    let layers: Vec<&Digest> = base
        .layers()
        .iter()
        .chain(image.layers())
        .map(|l| &l.descriptor.digest)
        .collect();
    let layer_bytes = counters.bytes_for(layers.iter().copied());
    // The 401 by which a new client learns the registry's auth scheme is not the
    // operation's cost (any client pays it once, on whatever it sends first).
    let cost = counters.total_requests() - counters.auth_challenges;
    let within = cost <= REQUEST_BUDGET && layer_bytes == 0;
    println!(
        "[{auth:?}] replace layer {} of {} ({} MiB image, replacement already in the repository): {} in {elapsed:.2?}",
        REPLACED + 1,
        LAYER_SIZES.len(),
        LAYER_SIZES.iter().sum::<usize>() >> 20,
        verdict(within),
    );
    print_counters(&counters, layer_bytes);
    println!(
        "    cost: {cost} registry requests (budget <= {REQUEST_BUDGET}), {layer_bytes} layer bytes (budget 0); blobs skipped {} mounted {} uploaded {}",
        report.skipped, report.mounted, report.uploaded
    );
    within
}

fn copy_between_repositories(registry: &Registry, auth: Auth) -> bool {
    let host = registry.host();
    let image = sample_image(2, &LAYER_SIZES);
    push(
        &image,
        &repo(&client(registry, &host, None), &host, "bench/source"),
        "v1",
    );

    let measured = client(registry, &host, None);
    let source = repo(&measured, &host, "bench/source");
    let target = repo(&measured, &host, "bench/copy");
    let started = Instant::now();
    let loaded = load(&source, "v1");
    let report = push(&loaded, &target, "v1");
    let elapsed = started.elapsed();
    assert!(assert_tag_complete(registry, "bench/copy", "v1"));

    let counters = measured.counters();
    let layer_bytes = counters.bytes_for(image.layers().iter().map(|l| &l.descriptor.digest));
    let cost = counters.total_requests() - counters.auth_challenges;
    let request_budget = LAYER_SIZES.len() as u64 + 4;
    let within = report.mounted == LAYER_SIZES.len() && layer_bytes == 0 && cost <= request_budget;
    println!(
        "[{auth:?}] copy a {}-layer image ({} MiB) to another repository of the registry: {} in {elapsed:.2?}",
        LAYER_SIZES.len(),
        LAYER_SIZES.iter().sum::<usize>() >> 20,
        verdict(within),
    );
    print_counters(&counters, layer_bytes);
    println!(
        "    cost: {cost} registry requests (budget <= {request_budget}), {layer_bytes} layer bytes (budget 0); layers mounted {} of {}",
        report.mounted,
        LAYER_SIZES.len()
    );
    within
}

fn verdict(within: bool) -> &'static str {
    if within {
        "within budget"
    } else {
        "OVER BUDGET"
    }
}

fn print_counters(counters: &Counters, layer_bytes: u64) {
    let by_method: Vec<String> = counters
        .requests
        .iter()
        .map(|(method, n)| format!("{method} {n}"))
        .collect();
    println!(
        "    registry requests: {} ({}), of which auth challenges (401): {}; token requests: {}; retries: {}",
        counters.total_requests(),
        by_method.join(", "),
        counters.auth_challenges,
        counters.token_requests,
        counters.retries
    );
    println!(
        "    layer bytes through the client: {layer_bytes}; all blob bytes down {} / up {}; mounts: {}",
        counters.bytes_downloaded(),
        counters.bytes_uploaded(),
        counters.mounts
    );
}
