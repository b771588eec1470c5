//! The layer builder reproduces the reference lifecycle's tars byte for byte and is
//! deterministic across runs and source trees.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};

use relaunch_oci::layer::{Entry, LayerBuilder};
use relaunch_oci::Digest;

fn tar_bytes(b: &LayerBuilder) -> Vec<u8> {
    let layer = b.build().unwrap();
    let mut out = Vec::new();
    layer.open_tar().unwrap().read_to_end(&mut out).unwrap();
    assert_eq!(Digest::of(&out), layer.diff_id);
    out
}

/// Digests from lifecycle-reference-behaviour §3.2 / §3.4 (Go archive/tar, same headers).
#[test]
fn launcher_layer_matches_go_lifecycle_bytes() {
    let b = LayerBuilder::new()
        .entry(Entry::dir("/cnb", 0o755))
        .entry(Entry::dir("/cnb/lifecycle", 0o755))
        .entry(Entry::file(
            "/cnb/lifecycle/launcher",
            0o755,
            "launcher-content",
        ));
    let tar = tar_bytes(&b);
    assert_eq!(tar.len(), 3072);
    assert_eq!(
        Digest::of(&tar).as_str(),
        "sha256:eb8cd01c7ae3cc4b516ccee89832066897b6728ba2b43044bf4c0fcb34826ba3"
    );
}

#[test]
fn process_types_layer_matches_go_lifecycle_bytes() {
    let b = LayerBuilder::new()
        .entry(Entry::dir("/cnb", 0o755))
        .entry(Entry::dir("/cnb/process", 0o755))
        .entry(Entry::symlink(
            "/cnb/process/some-type",
            "/cnb/lifecycle/launcher",
        ))
        .entry(Entry::symlink(
            "/cnb/process/other-type",
            "/cnb/lifecycle/launcher",
        ));
    assert_eq!(
        Digest::of(&tar_bytes(&b)).hex(),
        "ce5941007e8f485f14799f7fdc8134def17284a8d0ee71382532d15ac5aaf17e"
    );
}

/// A buildpack layer the reference exporter (lifecycle v0.21.17) wrote for a tree with a
/// 120-byte directory name and non-ASCII names: Go switches to PAX there, with a PAX header
/// block of mode 0 and mtime 0 and an ASCII-only main header name cut to 100 bytes.
#[test]
fn pax_headers_match_go_lifecycle_bytes() {
    let web = "/tmp/exp8/layers/example_bp/web";
    let long = format!("{web}/{}", "x".repeat(120));
    let b = LayerBuilder::new()
        .entry(Entry::dir("/tmp", 0o1777))
        .entry(Entry::dir("/tmp/exp8", 0o755))
        .entry(Entry::dir("/tmp/exp8/layers", 0o755))
        .entry(Entry::dir("/tmp/exp8/layers/example_bp", 0o755))
        .entry(Entry::dir(web, 0o755))
        .entry(Entry::dir(format!("{web}/bin"), 0o755))
        .entry(Entry::file(format!("{web}/bin/hello"), 0o755, "hi\n"))
        .entry(Entry::dir(long.clone(), 0o755))
        .entry(Entry::dir(format!("{long}/\u{e9}"), 0o755))
        .entry(Entry::file(
            format!("{long}/\u{e9}/na\u{ef}ve.txt"),
            0o644,
            "a\n",
        ));
    assert_eq!(
        Digest::of(&tar_bytes(&b)).hex(),
        "c32276d985fac04eca39c8e8035fe745240d71c3adcba4b8a9487a22ba7624c4"
    );
}

#[test]
fn same_input_same_digests_from_two_trees() {
    let mk = || {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("config");
        fs::create_dir_all(root.join("sub/deeper")).unwrap();
        fs::write(
            root.join("metadata.toml"),
            "[[processes]]\ntype = \"web\"\n",
        )
        .unwrap();
        fs::write(root.join("sub/exec"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(root.join("sub/exec"), fs::Permissions::from_mode(0o750)).unwrap();
        fs::write(root.join("sub/deeper/Z"), "z").unwrap();
        fs::write(root.join("sub/deeper/a"), "a").unwrap();
        symlink("../metadata.toml", root.join("sub/link")).unwrap();
        let long = "n".repeat(120);
        fs::write(root.join(&long), "long name").unwrap();
        dir
    };
    let (d1, d2) = (mk(), mk());
    let l1 = LayerBuilder::new()
        .dir_tree(&d1.path().join("config"), "/layers/config")
        .unwrap()
        .build()
        .unwrap();
    let l2 = LayerBuilder::new()
        .dir_tree(&d2.path().join("config"), "/layers/config")
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(l1.diff_id, l2.diff_id);
    assert_eq!(l1.descriptor, l2.descriptor);

    // Read back with an independent tar reader: names, order, modes, mtimes, owner.
    let mut tar_data = Vec::new();
    l1.open_tar().unwrap().read_to_end(&mut tar_data).unwrap();
    let mut archive = tar::Archive::new(&tar_data[..]);
    let got: Vec<(String, u32, u64, u64)> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                h.mode().unwrap(),
                h.mtime().unwrap(),
                h.uid().unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    let long = format!("/layers/config/{}", "n".repeat(120));
    assert_eq!(
        names,
        [
            "/layers/config",
            "/layers/config/metadata.toml",
            long.as_str(),
            "/layers/config/sub",
            "/layers/config/sub/deeper",
            "/layers/config/sub/deeper/Z",
            "/layers/config/sub/deeper/a",
            "/layers/config/sub/exec",
            "/layers/config/sub/link",
        ]
    );
    assert!(got.iter().all(|g| g.2 == 315_532_801 && g.3 == 0));
    assert_eq!(got[7].1, 0o750);
}

#[test]
fn very_long_names_use_pax_and_read_back() {
    let name = format!("/{}", "x".repeat(300));
    let target = format!("/{}", "t".repeat(150));
    let b = LayerBuilder::new()
        .entry(Entry::file(name.clone(), 0o644, "data"))
        .entry(Entry::symlink("/l", target.clone()));
    let tar_data = tar_bytes(&b);
    let mut archive = tar::Archive::new(&tar_data[..]);
    let mut entries = archive.entries().unwrap();
    let e = entries.next().unwrap().unwrap();
    assert_eq!(e.path().unwrap().to_str().unwrap(), name);
    let e = entries.next().unwrap().unwrap();
    assert_eq!(e.link_name().unwrap().unwrap().to_str().unwrap(), target);
}

/// Layers whose blob outgrows memory spill to a temporary file and read back the same.
#[test]
fn large_layers_spill_to_a_temp_file() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let data: Vec<u8> = (0..(9 << 20) / 8)
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect();
    let layer = LayerBuilder::new()
        .entry(Entry::file("/big", 0o644, data.clone()))
        .build()
        .unwrap();
    assert!(matches!(layer.source, relaunch_oci::BlobSource::File(_)));
    let mut tar_data = Vec::new();
    layer
        .open_tar()
        .unwrap()
        .read_to_end(&mut tar_data)
        .unwrap();
    let mut archive = tar::Archive::new(&tar_data[..]);
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let mut back = Vec::new();
    entry.read_to_end(&mut back).unwrap();
    assert!(back == data);
}
