//! Set-up shared by the registry benchmarks (not an example itself).

use relaunch_lifecycle::launcher::ResolvedLauncher;
use relaunch_lifecycle::rebase::STACK_ID_LABEL;
use relaunch_lifecycle::stamp::stamp_run_image;
use relaunch_oci::layer::{Entry, LayerBuilder, NORMALIZED_TIME};
use relaunch_oci::mutate::{self, History};
use relaunch_oci::v1::Flavor;
use relaunch_oci::Image;

/// A two-layer run image (OS layer + launcher stamp) with a stack id.
pub fn run_image(os: &str, launcher: &ResolvedLauncher) -> Image {
    let mut run = Image::new(
        Flavor::Oci,
        serde_json::json!({"os": "linux", "architecture": "amd64", "config": {"Env": ["PATH=/bin"]}}),
    )
    .unwrap();
    let layer = LayerBuilder::new()
        .entry(Entry::file("/etc/os", 0o644, os.repeat(4096)))
        .build()
        .unwrap();
    let h = History::created_by("os", NORMALIZED_TIME);
    mutate::append_layers(&mut run, vec![(layer, Some(h))]).unwrap();
    mutate::set_labels(
        &mut run,
        [(STACK_ID_LABEL, Some("io.buildpacks.stacks.bench"))],
    )
    .unwrap();
    stamp_run_image(run, launcher, "/usr/local/bin/launcher")
        .unwrap()
        .image
}
