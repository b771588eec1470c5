//! Fixtures shared by the integration tests: small images built with the engine itself.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use relaunch_oci::layer::{Entry, LayerBuilder};
use relaunch_oci::mutate::{self, History};
use relaunch_oci::v1::Flavor;
use relaunch_oci::{
    write_image, Image, ImageRef, Layer, Layout, NoProgress, Repo, TransportOptions,
};
use serde_json::json;

pub fn file_layer(path: &str, content: &str) -> Layer {
    let mut b = LayerBuilder::new();
    let mut dir = String::new();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    for p in &parts[..parts.len() - 1] {
        dir = format!("{dir}/{p}");
        b = b.entry(Entry::dir(dir.clone(), 0o755));
    }
    b.entry(Entry::file(path, 0o644, content)).build().unwrap()
}

/// An image whose config has unknown fields and an `empty_layer` history entry.
pub fn base_image(flavor: Flavor, name: &str, n_layers: usize) -> Image {
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "x-unknown-top": {"kept": true},
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Labels": {"z.first": "1", "a.second": "2"}},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": []
    });
    let mut img = Image::new(flavor, config).unwrap();
    let layers = (0..n_layers)
        .map(|i| {
            (
                file_layer(&format!("/{name}/layer{i}"), &format!("{name} {i}")),
                Some(History::created_by(
                    format!("{name} layer {i}"),
                    "2024-01-01T00:00:00Z",
                )),
            )
        })
        .collect();
    mutate::append_layers(&mut img, layers).unwrap();
    // A metadata-only step between layers, as Dockerfile ENV/LABEL produce.
    img.edit_config(|c| {
        let h = c.get_mut("history").unwrap().as_array_mut().unwrap();
        h.insert(1, json!({"created_by": "ENV X=1", "empty_layer": true}));
        Ok(())
    })
    .unwrap();
    img
}

pub fn write_layout(img: &Image, dir: &Path, tag: &str) -> relaunch_oci::Digest {
    let layout = Layout::create(dir).unwrap();
    let report = write_image(img, &layout, &[tag.to_string()], &NoProgress).unwrap();
    report.digest.unwrap()
}

pub fn read_layout(dir: &Path, tag: &str) -> Image {
    let r = ImageRef::parse(&format!("oci:{}:{tag}", dir.display())).unwrap();
    Repo::open(&r, &TransportOptions::default())
        .unwrap()
        .load_image(None)
        .unwrap()
}

pub fn layout_transport(dir: &Path) -> Arc<Layout> {
    Arc::new(Layout::open(dir).unwrap())
}

/// `skopeo inspect oci:DIR:TAG` must accept the image; returns its JSON.
pub fn skopeo_inspect(dir: &Path, tag: &str) -> serde_json::Value {
    relaunch_testkit::skopeo_inspect(&format!("oci:{}:{tag}", dir.display()), &[])
}

pub fn skopeo_copy(src: &str, dst: &str) {
    relaunch_testkit::skopeo_copy(src, dst, &[]);
}
