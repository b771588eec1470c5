//! Bad input — malformed manifests, inconsistent images, hostile tar headers, absurd sizes —
//! is a clear error naming what is wrong, never a panic or a huge allocation, and a copy of
//! a bad image publishes nothing.

mod common;
mod registry_support;

use std::sync::Arc;

use common::*;
use relaunch_oci::layer::read::{list_files, read_file};
use relaunch_oci::v1::Flavor;
use relaunch_oci::{
    media_type, mutate, write_image, BlobSource, Descriptor, Digest, Error, Image, ImageRef, Layer,
    Layout, ManifestRef, NoProgress, RawManifest, Repo, Transport, TransportOptions,
};
use relaunch_testkit::{Auth, Registry};
use serde_json::{json, Value};

/// Tags `bytes` as an OCI manifest in a fresh layout holding `base`'s blobs, and loads it.
fn load_tagged(base: &Image, bytes: Vec<u8>) -> (RawManifest, relaunch_oci::Result<()>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    write_layout(base, &dir, "base");
    let raw = RawManifest {
        media_type: media_type::OCI_MANIFEST.into(),
        bytes,
    };
    Layout::open(&dir)
        .unwrap()
        .put_manifest(&ManifestRef::Tag("bad".into()), &raw)
        .unwrap();
    let r = ImageRef::parse(&format!("oci:{}:bad", dir.display())).unwrap();
    let loaded = Repo::open(&r, &TransportOptions::default())
        .unwrap()
        .load_image(None)
        .map(drop);
    (raw, loaded)
}

#[test]
fn malformed_manifests_are_errors_naming_the_manifest() {
    let base = base_image(Flavor::Oci, "m", 1);
    let good: Value = serde_json::from_slice(&base.raw_manifest().bytes).unwrap();
    let with = |pointer: &str, value: Value| {
        let mut m = good.clone();
        *m.pointer_mut(pointer).unwrap() = value;
        serde_json::to_vec(&m).unwrap()
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not JSON", b"\x00\xffnot json".to_vec(), "JSON"),
        ("truncated", good.to_string().as_bytes()[..40].to_vec(), "EOF"),
        ("an array", b"[1,2]".to_vec(), "expected struct Manifest"),
        ("no layers", br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2}}"#.to_vec(), "missing field `layers`"),
        ("a bad digest", with("/layers/0/digest", json!("sha256:xyz")), "invalid digest"),
        ("an md5 digest", with("/config/digest", json!("md5:00")), "digest algorithm \"md5\" of md5:00 is not supported"),
        ("a negative size", with("/layers/0/size", json!(-1)), "invalid value"),
        ("a fractional size", with("/config/size", json!(1.5)), "invalid type"),
        ("a huge config", with("/config/size", json!(u64::MAX)), "more than the limit"),
        ("a wrong config size", with("/config/size", json!(3)), "size mismatch"),
        ("a missing config", with("/config/digest", json!(Digest::of(b"gone"))), "not found"),
    ];
    for (what, bytes, expected) in cases {
        let (raw, loaded) = load_tagged(&base, bytes);
        let err = loaded.expect_err(what).to_string();
        assert!(err.contains(expected), "{what}: {err}");
        // Named: the manifest, or the config blob it points at.
        let config = serde_json::from_slice::<Value>(&raw.bytes)
            .ok()
            .and_then(|m| m.pointer("/config/digest")?.as_str().map(String::from));
        let names_it = err.contains(raw.digest().as_str())
            || config.is_some_and(|c| err.contains(&format!("blob {c}")));
        assert!(names_it, "{what}: {err}");
    }
}

#[test]
fn layer_count_must_match_diff_ids() {
    let base = base_image(Flavor::Oci, "n", 2);
    let mut manifest: Value = serde_json::from_slice(&base.raw_manifest().bytes).unwrap();
    manifest["layers"].as_array_mut().unwrap().pop();
    let (raw, loaded) = load_tagged(&base, serde_json::to_vec(&manifest).unwrap());
    let err = loaded.unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("image {}", raw.digest()))
            && err
                .to_string()
                .contains("manifest has 1 layers but config rootfs.diff_ids has 2"),
        "{err}"
    );
}

/// The same inconsistency served by a real registry (it checks blobs, not diffIDs).
#[test]
fn inconsistent_image_served_by_a_registry_is_refused() {
    use registry_support::{client, push, repo};
    let registry = Registry::start(Auth::Anonymous);
    let host = registry.host();
    let pusher = client(&registry, &host, None);
    let source = repo(&pusher, &host, "bad/app");
    let image = base_image(Flavor::Oci, "r", 2);
    push(&image, &source, "good");
    let mut manifest: Value = serde_json::from_slice(&image.raw_manifest().bytes).unwrap();
    let first = manifest["layers"][0].clone();
    manifest["layers"].as_array_mut().unwrap().push(first);
    let raw = RawManifest {
        media_type: media_type::OCI_MANIFEST.into(),
        bytes: serde_json::to_vec(&manifest).unwrap(),
    };
    source
        .put_manifest(&ManifestRef::Tag("bad".into()), &raw)
        .unwrap();

    let opts = TransportOptions {
        insecure_registries: vec![host.clone()],
        ..Default::default()
    };
    let src = ImageRef::parse(&format!("{host}/bad/app:bad")).unwrap();
    let err = Repo::open(&src, &opts).unwrap().load().unwrap_err();
    assert!(
        err.to_string()
            .contains("manifest has 3 layers but config rootfs.diff_ids has 2"),
        "{err}"
    );
}

/// A tar header for `name` declaring `size` bytes of content (none of which follow).
fn header(name: &str, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// An uncompressed layer holding exactly `tar`.
fn raw_layer(tar: Vec<u8>) -> Layer {
    let digest = Digest::of(&tar);
    Layer {
        descriptor: Descriptor::new(media_type::OCI_LAYER, digest.clone(), tar.len() as u64),
        diff_id: digest,
        source: BlobSource::Memory(Arc::new(tar)),
    }
}

fn image_with(layer: Layer) -> Image {
    let mut img = Image::new(Flavor::Oci, json!({"os": "linux", "architecture": "amd64"})).unwrap();
    mutate::append_layers(&mut img, vec![(layer, None)]).unwrap();
    img
}

#[test]
fn huge_declared_tar_sizes_fail_without_allocating() {
    // USTAR's largest size (8 GiB - 1), 1 KiB of content, no end-of-archive blocks.
    let mut ustar = header("big", 0o77777777777);
    ustar.extend_from_slice(&[b'x'; 1024]);
    // A PAX header claiming u64::MAX bytes for the next entry.
    let record = format!("29 size={}\n", u64::MAX);
    assert_eq!(record.len(), 29);
    let mut pax = tar::Header::new_ustar();
    pax.set_path("PaxHeaders/huge").unwrap();
    pax.set_size(record.len() as u64);
    pax.set_entry_type(tar::EntryType::XHeader);
    pax.set_cksum();
    let mut pax_tar = pax.as_bytes().to_vec();
    pax_tar.extend_from_slice(record.as_bytes());
    pax_tar.resize(1024, 0);
    pax_tar.extend_from_slice(&header("huge", 10));
    pax_tar.extend_from_slice(&[b'y'; 512]);

    for tar in [ustar, pax_tar] {
        let img = image_with(raw_layer(tar));
        let diff_id = img.layers()[0].diff_id.to_string();
        let err = list_files(&img).unwrap_err().to_string();
        assert!(err.contains(&diff_id), "{err}");
        for limit in [1 << 20, u64::MAX] {
            let err = read_file(&img, "/big", limit).unwrap_err().to_string();
            assert!(err.contains(&diff_id), "{err}");
        }
    }
}

/// A complete tar whose entry really is larger than the caller allows: refused by size
/// before its content is read.
#[test]
fn entries_over_the_limit_are_refused() {
    let mut tar = header("f", 4096);
    tar.extend_from_slice(&[b'z'; 4096]);
    tar.extend_from_slice(&[0; 1024]);
    let img = image_with(raw_layer(tar));
    let err = read_file(&img, "/f", 4095).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                size: 4096,
                limit: 4095,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(read_file(&img, "/f", u64::MAX).unwrap().1.len(), 4096);
}

/// Layer descriptors with absurd sizes fail when streamed, and a copy publishes nothing.
#[test]
fn absurd_layer_sizes_fail_the_copy_and_publish_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut img = base_image(Flavor::Oci, "s", 1);
    let mut layer = img.layers()[0].clone();
    layer.descriptor.size = u64::MAX;
    img.set_layers(vec![layer]).unwrap();
    let layout = Layout::create(tmp.path().join("dst")).unwrap();
    let err = write_image(&img, &layout, &["t".into()], &NoProgress).unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
    assert!(layout.tags().unwrap().is_empty());
}
