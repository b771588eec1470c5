//! Throughput of the engine's hot paths, printed as figures:
//! `cargo bench -p relaunch-oci --bench engine` (size via RELAUNCH_BENCH_MB, default 64).

use std::fs;
use std::time::Instant;

use relaunch_oci::layer::read::list_files;
use relaunch_oci::layer::{Entry, LayerBuilder};
use relaunch_oci::mutate;
use relaunch_oci::v1::Flavor;
use relaunch_oci::{
    write_image, Image, ImageRef, Layer, Layout, NoProgress, Repo, Transport, TransportOptions,
};
use relaunch_testkit::{Auth, Registry};

/// Half pseudo-random bytes, half text, so gzip does real work on both kinds.
fn fill(dir: &std::path::Path, total: usize) {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let file_size = 4 << 20;
    for i in 0..total.div_ceil(file_size) {
        let mut data = Vec::with_capacity(file_size);
        while data.len() < file_size / 2 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            data.extend_from_slice(&state.to_le_bytes());
        }
        while data.len() < file_size {
            data.extend_from_slice(format!("line {} of file {i}\n", data.len()).as_bytes());
        }
        fs::write(dir.join(format!("file{i:03}")), &data).unwrap();
    }
}

fn image_with(layer: Layer) -> Image {
    let mut img = Image::new(
        Flavor::Oci,
        serde_json::json!({"os": "linux", "architecture": "amd64"}),
    )
    .unwrap();
    mutate::append_layers(&mut img, vec![(layer, None)]).unwrap();
    img
}

fn rate(mb: f64, start: Instant) -> String {
    let s = start.elapsed().as_secs_f64();
    format!("{:8.1} MB/s  ({s:.2} s)", mb / s)
}

fn main() {
    let mb: usize = std::env::var("RELAUNCH_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("tree");
    fs::create_dir(&src).unwrap();
    fill(&src, mb << 20);
    let mbf = mb as f64;
    println!("relaunch-oci engine benchmark, {mb} MiB of layer content");

    let start = Instant::now();
    let layer = LayerBuilder::new()
        .dir_tree(&src, "/data")
        .unwrap()
        .build()
        .unwrap();
    println!("build layer (tar+gzip+2×sha256): {}", rate(mbf, start));
    let compressed_mb = layer.descriptor.size as f64 / (1 << 20) as f64;

    let img = image_with(layer);
    let layout_dir = tmp.path().join("layout");
    let layout = Layout::create(&layout_dir).unwrap();
    let start = Instant::now();
    write_image(&img, &layout, &["bench".into()], &NoProgress).unwrap();
    println!(
        "write to OCI layout (verified):  {}",
        rate(compressed_mb, start)
    );

    let stored = Repo::open(
        &ImageRef::parse(&format!("oci:{}:bench", layout_dir.display())).unwrap(),
        &TransportOptions::default(),
    )
    .unwrap()
    .load_image(None)
    .unwrap();
    let start = Instant::now();
    let n = list_files(&stored).unwrap().len();
    println!(
        "list files ({n} entries, gunzip+verify): {}",
        rate(mbf, start)
    );

    // Many small entries: merging a layer into the tree must not rescan it per entry.
    let many = 20_000;
    let mut builder = LayerBuilder::new().entry(Entry::dir("/many", 0o755));
    for i in 0..many {
        builder = builder.entry(Entry::file(format!("/many/f{i:05}"), 0o644, "x"));
    }
    let wide = image_with(builder.build().unwrap());
    let start = Instant::now();
    let n = list_files(&wide).unwrap().len();
    println!(
        "list files ({n} entries of 1 byte):      {:.3} s",
        start.elapsed().as_secs_f64()
    );

    let registry = Registry::start(Auth::Anonymous);
    let host = registry.host();
    let opts = TransportOptions {
        insecure_registries: vec![host.clone()],
        ..Default::default()
    };
    let push = Repo::create(
        &ImageRef::parse(&format!("{host}/bench/a:1")).unwrap(),
        &opts,
    )
    .unwrap();
    let start = Instant::now();
    write_image(&stored, push.transport.as_ref(), &["1".into()], &NoProgress).unwrap();
    println!(
        "push layout → registry:          {}",
        rate(compressed_mb, start)
    );

    let pushed = push.load_image(None).unwrap();
    let other = Repo::create(
        &ImageRef::parse(&format!("{host}/bench/b:1")).unwrap(),
        &opts,
    )
    .unwrap();
    let start = Instant::now();
    let report = write_image(
        &pushed,
        other.transport.as_ref(),
        &["1".into()],
        &NoProgress,
    )
    .unwrap();
    assert_eq!(report.mounted, 1);
    println!(
        "copy registry → registry (mount): {:.3} s",
        start.elapsed().as_secs_f64()
    );

    let back = Layout::create(tmp.path().join("back")).unwrap();
    let start = Instant::now();
    write_image(&pushed, &back, &["1".into()], &NoProgress).unwrap();
    println!(
        "pull registry → layout:          {}",
        rate(compressed_mb, start)
    );
    assert!(back
        .blob_size(&pushed.layers()[0].descriptor.digest)
        .unwrap()
        .is_some());
}
