//! Shared helpers for the registry transport tests and benchmark: clients against a
//! testkit registry, deterministic sample images, and a completeness check that reads
//! every blob a tag references straight from the registry.
#![allow(dead_code)] // each test crate uses a different subset

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use relaunch_oci::layer::{Entry, LayerBuilder};
use relaunch_oci::read::{self, Artifact};
use relaunch_oci::remote::{
    ClientConfig, CredentialSource, RegistryClient, RegistryTransport, RetryPolicy,
};
use relaunch_oci::v1::Flavor;
use relaunch_oci::{
    mutate, write_image, Image, Layer, ManifestRef, NoProgress, Transport, WriteReport,
};
use relaunch_testkit::{Auth, Registry};
use serde_json::json;

/// Retries quick enough for tests, as many attempts as in production.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(300),
        max_retry_after: Duration::from_secs(1),
    }
}

/// A client for `host` (the registry or a proxy in front of it) with the registry's
/// credentials filed under that host.
pub fn client(registry: &Registry, host: &str, chunk_size: Option<u64>) -> Arc<RegistryClient> {
    let defaults = ClientConfig::default();
    Arc::new(RegistryClient::new(ClientConfig {
        insecure_registries: vec![host.to_string()],
        credentials: CredentialSource::DockerConfigDir(registry.docker_config_dir_for(host)),
        retry: fast_retry(),
        chunk_size: chunk_size.or(defaults.chunk_size),
        connect_timeout: Duration::from_secs(5),
        io_timeout: Duration::from_secs(20),
        ..defaults
    }))
}

pub fn repo(client: &Arc<RegistryClient>, host: &str, repository: &str) -> Arc<RegistryTransport> {
    Arc::new(RegistryTransport::new(client.clone(), host, repository))
}

/// Incompressible bytes from a seed (so gzip keeps layer blobs about this size).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A layer holding one file of `len` pseudo-random bytes.
pub fn layer(seed: u64, len: usize) -> Layer {
    LayerBuilder::new()
        .entry(Entry::dir("/data", 0o755))
        .entry(Entry::file(
            format!("/data/file-{seed}"),
            0o644,
            noise(seed, len),
        ))
        .build()
        .expect("build layer")
}

/// An OCI image with one layer per entry of `sizes`.
pub fn sample_image(seed: u64, sizes: &[usize]) -> Image {
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": []
    });
    let mut image = Image::new(Flavor::Oci, config).expect("new image");
    let layers = sizes
        .iter()
        .enumerate()
        .map(|(i, len)| (layer(seed * 100 + i as u64, *len), None))
        .collect();
    mutate::append_layers(&mut image, layers).expect("append layers");
    image
}

pub fn push(image: &Image, target: &Arc<RegistryTransport>, tag: &str) -> WriteReport {
    write_image(image, target.as_ref(), &[tag.to_string()], &NoProgress).expect("push image")
}

/// A fresh registry in `auth` mode, its host, and `sample_image(seed, sizes)` pushed to it
/// as `app:v1`.
pub fn registry_with_app(auth: Auth, seed: u64, sizes: &[usize]) -> (Registry, String, Image) {
    let registry = Registry::start(auth);
    let host = registry.host();
    let image = sample_image(seed, sizes);
    push(
        &image,
        &repo(&client(&registry, &host, None), &host, "app"),
        "v1",
    );
    (registry, host, image)
}

/// Loads `tag` and reads every layer blob, verified against its descriptor.
pub fn pull(source: &Arc<RegistryTransport>, tag: &str) -> relaunch_oci::Result<Image> {
    let transport: Arc<dyn Transport> = source.clone();
    let Artifact::Image(image) = read::load(&transport, &ManifestRef::Tag(tag.into()))? else {
        panic!("{tag} is not an image");
    };
    for layer in image.layers() {
        let mut sink = Vec::new();
        layer
            .open()?
            .read_to_end(&mut sink)
            .map_err(|e| relaunch_oci::Error::io("reading layer", e))?;
    }
    Ok(image)
}

/// If `tag` exists in the registry, every blob its manifest references must be there in
/// full: read them all with a fresh, fault-free client. Returns whether the tag exists.
pub fn assert_tag_complete(registry: &Registry, repository: &str, tag: &str) -> bool {
    let host = registry.host();
    let direct = repo(&client(registry, &host, None), &host, repository);
    match direct.head_manifest(&ManifestRef::Tag(tag.into())) {
        Ok(None) => return false,
        Ok(Some(_)) => {}
        Err(e) => panic!("HEAD of {repository}:{tag} failed: {e}"),
    }
    let image = pull(&direct, tag)
        .unwrap_or_else(|e| panic!("{repository}:{tag} is published but not complete: {e}"));
    let config = image.config_descriptor();
    direct
        .read_blob_verified(&config.digest, config.size)
        .unwrap_or_else(|e| panic!("config of {repository}:{tag} unreadable: {e}"));
    true
}

/// `--creds user:pass` for skopeo when the registry wants credentials.
pub fn skopeo_creds(registry: &Registry) -> Vec<String> {
    match registry.credentials() {
        Some((user, password)) => vec![format!("--creds={user}:{password}")],
        None => Vec::new(),
    }
}

pub fn skopeo_inspect(registry: &Registry, repository: &str, tag: &str) -> serde_json::Value {
    let creds = skopeo_creds(registry);
    let args: Vec<&str> = creds.iter().map(String::as_str).collect();
    relaunch_testkit::skopeo_inspect(
        &format!("docker://{}/{repository}:{tag}", registry.host()),
        &args,
    )
}

/// skopeo, an independent client, reads `repository:tag` as `image`.
pub fn assert_skopeo_sees(registry: &Registry, repository: &str, tag: &str, image: &Image) {
    assert_eq!(
        skopeo_inspect(registry, repository, tag)["Digest"],
        image.digest().to_string(),
        "skopeo inspect {repository}:{tag}"
    );
}
