//! Builders shared by the unit tests: a launcher ELF with a self-description, a small
//! one-layer run image, and an app exported onto it once stamped.

use object::write::{Object as WriteObject, StandardSegment};
use object::{Architecture, BinaryFormat, Endianness, SectionKind};
use relaunch_oci::layer::{Entry, LayerBuilder, NORMALIZED_TIME};
use relaunch_oci::mutate::{self, History};
use relaunch_oci::v1::Flavor;
use relaunch_oci::Image;

use crate::apis::Api;
use crate::descriptor::{LauncherBinary, SECTION};
use crate::fixtures::{export_app, sample_app, RunImageRef};
use crate::launcher::{resolve, Overrides, ResolvedLauncher};
use crate::stamp::stamp_run_image;

/// A relocatable ELF with an optional `.cnb_launcher` section (enough for section lookup).
pub fn elf_with(section: Option<&[u8]>) -> Vec<u8> {
    elf_for(Architecture::X86_64, section)
}

/// As [`elf_with`], for the machine `arch`.
pub fn elf_for(arch: Architecture, section: Option<&[u8]>) -> Vec<u8> {
    let mut obj = WriteObject::new(BinaryFormat::Elf, arch, Endianness::Little);
    let text = obj.add_section(vec![], b".text".to_vec(), SectionKind::Text);
    obj.append_section_data(text, &[0xc3], 1);
    if let Some(data) = section {
        let id = obj.add_section(
            obj.segment_name(StandardSegment::Data).to_vec(),
            SECTION.as_bytes().to_vec(),
            SectionKind::ReadOnlyData,
        );
        obj.append_section_data(id, data, 1);
    }
    obj.write().unwrap()
}

/// A launcher whose self-description is `description` (compact JSON), resolved with `overrides`.
pub fn launcher_described_as(description: &[u8], overrides: &Overrides) -> ResolvedLauncher {
    let binary =
        LauncherBinary::from_bytes("test".into(), elf_with(Some(description)), 0o755).unwrap();
    resolve(binary, None, overrides).unwrap()
}

/// A run image with one small layer (history `run`) and `PATH=/bin`.
pub fn tiny_run_image() -> Image {
    let layer = LayerBuilder::new()
        .entry(Entry::file("/etc/os-release", 0o644, "ID=test\n"))
        .build()
        .unwrap();
    let mut run = Image::new(
        Flavor::Oci,
        serde_json::json!({"os": "linux", "architecture": "amd64", "config": {"Env": ["PATH=/bin"]}}),
    )
    .unwrap();
    mutate::append_layers(
        &mut run,
        vec![(layer, Some(History::created_by("run", NORMALIZED_TIME)))],
    )
    .unwrap();
    run
}

/// (`tiny_run_image` stamped with `launcher` at /usr/local/bin/launcher, the sample app at
/// Platform API 0.10 exported onto it with `runImage.reference` = `<repo>@<digest>`).
pub fn stamped_run_and_app(launcher: &ResolvedLauncher, repo: &str) -> (Image, Image) {
    let run = stamp_run_image(tiny_run_image(), launcher, "/usr/local/bin/launcher")
        .unwrap()
        .image;
    let run_ref = RunImageRef {
        image: repo.into(),
        reference: format!("{repo}@{}", run.digest()),
    };
    let app = export_app(
        &run,
        &run_ref,
        &sample_app(Api::new(0, 10)),
        &launcher.binary.bytes,
        &launcher.version,
    )
    .unwrap();
    (run, app)
}
