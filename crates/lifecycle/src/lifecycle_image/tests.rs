//! Derivation on upstream-shaped lifecycle images built in memory.

use std::collections::BTreeMap;

use object::Architecture;
use relaunch_oci::layer::read::{layer_entries, list_files, read_file, FsEntry, FsKind};
use relaunch_oci::layer::{Entry, LayerBuilder};

use super::*;
use crate::fixtures::{upstream_lifecycle_image, LifecycleFiles, PHASES};
use crate::testing::elf_for;

const SBOM: &[u8] = br#"{"bomFormat":"CycloneDX","specVersion":"1.5"}"#;
const P_ALL: [&str; 9] = [
    "0.7", "0.8", "0.9", "0.10", "0.11", "0.12", "0.13", "0.14", "0.15",
];
const B_ALL: [&str; 6] = ["0.7", "0.8", "0.9", "0.10", "0.11", "0.12"];

fn ours(arch: Architecture, version: &str, platform_apis: &str) -> Replacement {
    let json = format!(
        r#"{{"name":"relaunch-launcher","version":"{version}","platform-apis":[{platform_apis}],"buildpack-apis":["0.7","0.8","0.9","0.10","0.11","0.12"]}}"#
    );
    let bytes = elf_for(arch, Some(json.as_bytes()));
    let binary = LauncherBinary::from_bytes("ours".into(), bytes, 0o755).unwrap();
    Replacement::new(binary, Some(("ours.cdx.json".into(), SBOM.to_vec()))).unwrap()
}

fn full(arch: Architecture) -> Replacement {
    let all = P_ALL.map(|v| format!("\"{v}\"")).join(",");
    ours(arch, "1.0.0", &all)
}

fn upstream(arch: &str) -> Image {
    upstream_lifecycle_image(&LifecycleFiles {
        version: "0.21.17".into(),
        platform_apis: P_ALL.map(String::from).to_vec(),
        buildpack_apis: B_ALL.map(String::from).to_vec(),
        architecture: arch.into(),
        lifecycle: relaunch_oci::layer::Content::Bytes(b"go lifecycle".to_vec()),
        launcher: relaunch_oci::layer::Content::Bytes(b"go launcher".to_vec()),
    })
    .unwrap()
}

fn tree(image: &Image) -> BTreeMap<String, FsEntry> {
    list_files(image)
        .unwrap()
        .into_iter()
        .map(|e| (e.path.clone(), e))
        .collect()
}

#[test]
fn one_layer_swaps_the_launcher_and_its_sboms_keeping_everything_else() {
    let mut src = upstream("amd64");
    // An unusual mode and owner, to see both kept.
    let odd = LayerBuilder::new()
        .entry(Entry::file(APP_LAUNCHER_PATH, 0o750, b"go launcher".to_vec()).owned_by(7, 8))
        .build()
        .unwrap();
    mutate::append_layers(&mut src, vec![(odd, None)]).unwrap();
    let launcher = full(Architecture::X86_64);
    let d = derive(src.clone(), "src", &launcher).unwrap();
    assert_eq!(d.image.layers().len(), src.layers().len() + 1);
    assert_eq!(d.image.diff_ids()[..src.layers().len()], src.diff_ids()[..]);

    let (entry, bytes) = read_file(&d.image, APP_LAUNCHER_PATH, 1 << 20).unwrap();
    assert_eq!(bytes, launcher.binary.bytes);
    assert_eq!((entry.mode & 0o7777, entry.uid, entry.gid), (0o750, 7, 8));
    let (_, sbom) = read_file(&d.image, SBOM_FILES[0], 1 << 20).unwrap();
    assert_eq!(sbom, SBOM);

    let (before, after) = (tree(&src), tree(&d.image));
    for path in &SBOM_FILES[1..] {
        assert!(
            before.contains_key(*path) && !after.contains_key(*path),
            "{path}"
        );
    }
    for (path, e) in &before {
        if path != APP_LAUNCHER_PATH && !SBOM_FILES.contains(&path.as_str()) {
            assert_eq!(after.get(path), Some(e), "{path} unchanged");
        }
    }
    assert_eq!(
        after["/cnb/lifecycle/exporter"].kind,
        FsKind::Symlink("lifecycle".into())
    );

    let record: LauncherRecord =
        serde_json::from_str(&d.image.label(LAUNCHER_LABEL).unwrap()).unwrap();
    assert_eq!(record, d.record);
    assert_eq!(record.source, src.digest());
    assert_eq!(record.digest, Digest::of(&launcher.binary.bytes));
    assert_eq!(record.removed, SBOM_FILES[1..].to_vec());
    assert_eq!(
        d.image.label(LIFECYCLE_APIS_LABEL),
        src.label(LIFECYCLE_APIS_LABEL)
    );
}

#[test]
fn the_new_top_layer_alone_is_a_complete_lifecycle_layer() {
    let launcher = full(Architecture::X86_64);
    let d = derive(upstream("amd64"), "src", &launcher).unwrap();
    let top = d.image.layers().len() - 1;
    let entries = layer_entries(&d.image.layers()[top], top).unwrap();
    // pack strips the first entry (`/cnb`) and the `/cnb/` prefix; kpack copies it as is.
    assert_eq!(entries[0].path, "/cnb");
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    for phase in PHASES
        .iter()
        .chain(&["lifecycle", "lifecycle.toml", "launcher"])
    {
        assert!(
            paths.contains(&format!("/cnb/lifecycle/{phase}").as_str()),
            "{phase}: {paths:?}"
        );
    }
    assert!(paths.contains(&SBOM_FILES[0]));
    for gone in &SBOM_FILES[1..] {
        assert!(!paths.contains(gone), "{gone}");
        let whiteout = gone.replace("/launcher.sbom", "/.wh.launcher.sbom");
        assert!(paths.contains(&whiteout.as_str()), "{whiteout}");
    }
}

#[test]
fn layers_below_the_launchers_are_never_read() {
    let mut src = upstream("amd64");
    let mut layers = src.layers().to_vec();
    // The base layer's blob is garbage: reading it would fail verification.
    layers[0].source = relaunch_oci::BlobSource::Memory(std::sync::Arc::new(b"garbage".to_vec()));
    src.set_layers(layers).unwrap();
    assert!(list_files(&src).is_err(), "reading every layer fails");
    derive(src, "src", &full(Architecture::X86_64)).unwrap();
}

#[test]
fn deriving_is_deterministic_and_re_deriving_replaces_in_place() {
    let src = upstream("amd64");
    let a = derive(src.clone(), "src", &full(Architecture::X86_64)).unwrap();
    let b = derive(src.clone(), "src", &full(Architecture::X86_64)).unwrap();
    assert_eq!(a.image.digest(), b.image.digest());

    let again = derive(a.image.clone(), "derived", &full(Architecture::X86_64)).unwrap();
    assert!(again.unchanged);
    assert_eq!(again.image.digest(), a.image.digest());

    let all = P_ALL.map(|v| format!("\"{v}\"")).join(",");
    let newer = ours(Architecture::X86_64, "2.0.0", &all);
    let c = derive(a.image.clone(), "derived", &newer).unwrap();
    assert_eq!(c.replaced.as_ref(), Some(&a.record.layer));
    assert_eq!(c.image.layers().len(), a.image.layers().len());
    assert_eq!(c.record.source, src.digest(), "still names the original");
    assert_eq!(
        c.record.removed, a.record.removed,
        "SBOMs below still whited out"
    );
    let (_, bytes) = read_file(&c.image, APP_LAUNCHER_PATH, 1 << 20).unwrap();
    assert_eq!(bytes, newer.binary.bytes);
}

#[test]
fn a_launcher_missing_an_advertised_api_is_refused_naming_it() {
    let narrow = ours(Architecture::X86_64, "1.0.0", r#""0.7","0.14""#);
    let e = derive(upstream("amd64"), "src", &narrow).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("does not support Platform API 0.8,0.9,0.10,0.11,0.12,0.13,0.15"),
        "{msg}"
    );
    assert!(!msg.contains("Buildpack"), "{msg}");
}

#[test]
fn bad_sources_are_named() {
    let launcher = full(Architecture::X86_64);
    let mut no_label = upstream("amd64");
    mutate::set_labels(&mut no_label, [(LIFECYCLE_APIS_LABEL, None)]).unwrap();
    let e = derive(no_label, "src", &launcher).unwrap_err();
    assert!(
        e.to_string()
            .contains("has no label io.buildpacks.lifecycle.apis"),
        "{e}"
    );

    let mut bad_label = upstream("amd64");
    mutate::set_labels(&mut bad_label, [(LIFECYCLE_APIS_LABEL, Some("[]"))]).unwrap();
    let e = derive(bad_label, "src", &launcher).unwrap_err();
    assert!(e.to_string().contains("is malformed"), "{e}");

    let mut no_launcher = upstream("amd64");
    let wh = LayerBuilder::new()
        .entry(Entry::file(
            "/cnb/lifecycle/.wh.launcher",
            0o644,
            Vec::new(),
        ))
        .build()
        .unwrap();
    mutate::append_layers(&mut no_launcher, vec![(wh, None)]).unwrap();
    let e = derive(no_launcher, "src", &launcher).unwrap_err();
    assert_eq!(
        e.to_string(),
        "src has no /cnb/lifecycle/launcher: is it a lifecycle image?"
    );
}

#[test]
fn launchers_must_be_static_self_described_elf_with_a_cyclonedx_sbom() {
    let described =
        br#"{"name":"x","version":"1","platform-apis":["0.7"],"buildpack-apis":["0.7"]}"#;
    let bin = |bytes| LauncherBinary::from_bytes("l".into(), bytes, 0o755).unwrap();
    let e = Replacement::new(bin(elf_for(Architecture::X86_64, None)), None).unwrap_err();
    assert!(
        e.to_string().contains("no .cnb_launcher self-description"),
        "{e}"
    );
    let sbom = Some((
        "l.cdx.json".to_string(),
        br#"{"spdxVersion":"SPDX-2.3"}"#.to_vec(),
    ));
    let e =
        Replacement::new(bin(elf_for(Architecture::X86_64, Some(described))), sbom).unwrap_err();
    assert!(
        e.to_string().contains("not a CycloneDX JSON document"),
        "{e}"
    );
    let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let e = Replacement::new(bin(me), None).unwrap_err();
    assert!(e.to_string().contains("dynamically linked"), "{e}");
}

#[test]
fn each_platform_gets_the_launcher_of_its_machine() {
    let launchers = [full(Architecture::Aarch64), full(Architecture::X86_64)];
    let children = vec![
        Child::Image(upstream("amd64")),
        Child::Image(upstream("arm64")),
    ];
    let derived = derive_children(children, "idx", &launchers).unwrap();
    for ((_, d), want) in derived.iter().zip([&launchers[1], &launchers[0]]) {
        let d = d.as_ref().unwrap();
        let (_, bytes) = read_file(&d.image, APP_LAUNCHER_PATH, 1 << 20).unwrap();
        assert_eq!(bytes, want.binary.bytes);
    }

    let only_amd = [full(Architecture::X86_64)];
    let children = vec![
        Child::Image(upstream("amd64")),
        Child::Image(upstream("arm64")),
    ];
    let e = derive_children(children, "idx", &only_amd).unwrap_err();
    assert_eq!(
        e.to_string(),
        "idx (linux/arm64) is linux/arm64 but no --launcher is for arm64 (given: amd64); add one, or pick platforms with --platform"
    );
    let twice = [full(Architecture::X86_64), full(Architecture::X86_64)];
    assert!(derive_children(vec![], "idx", &twice).is_err());
}

#[test]
fn a_docker_lifecycle_image_stays_docker() {
    let mut src = upstream("amd64");
    src.set_flavor(relaunch_oci::v1::Flavor::Docker);
    let d = derive(src, "src", &full(Architecture::X86_64)).unwrap();
    let manifest = d.image.manifest();
    for layer in &manifest.layers {
        assert!(
            layer.media_type.starts_with("application/vnd.docker."),
            "{}",
            layer.media_type
        );
    }
    assert!(d
        .image
        .raw_manifest()
        .media_type
        .starts_with("application/vnd.docker."));
}

#[test]
fn without_an_sbom_every_launcher_sbom_is_removed() {
    let mut launcher = full(Architecture::X86_64);
    launcher.sbom = None;
    let d = derive(upstream("amd64"), "src", &launcher).unwrap();
    assert!(d.record.sbom.is_empty());
    assert_eq!(d.record.removed, SBOM_FILES);
    let after = tree(&d.image);
    for path in SBOM_FILES {
        assert!(!after.contains_key(path), "{path}");
    }
    assert!(after.contains_key("/cnb/lifecycle/lifecycle.sbom.cdx.json"));
}

#[test]
fn a_launcher_that_is_not_a_regular_file_is_refused() {
    let mut src = upstream("amd64");
    let link = LayerBuilder::new()
        .entry(Entry::symlink(APP_LAUNCHER_PATH, "lifecycle"))
        .build()
        .unwrap();
    mutate::append_layers(&mut src, vec![(link, None)]).unwrap();
    let e = derive(src, "src", &full(Architecture::X86_64)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "src: /cnb/lifecycle/launcher is not a regular file (a symlink to lifecycle)"
    );
}
