//! Safe reading of image filesystems: whiteouts, traversal, escaping links, size limits.

mod common;

use common::*;
use relaunch_oci::layer::read::{list_files, read_file, FsKind};
use relaunch_oci::layer::{Entry, LayerBuilder};
use relaunch_oci::mutate;
use relaunch_oci::v1::Flavor;
use relaunch_oci::{Error, Image, Layer};

fn image_of(layers: Vec<Layer>) -> Image {
    let mut img = Image::new(
        Flavor::Oci,
        serde_json::json!({"os": "linux", "architecture": "amd64"}),
    )
    .unwrap();
    mutate::append_layers(&mut img, layers.into_iter().map(|l| (l, None)).collect()).unwrap();
    img
}

fn build(entries: Vec<Entry>) -> Layer {
    entries
        .into_iter()
        .fold(LayerBuilder::new(), LayerBuilder::entry)
        .build()
        .unwrap()
}

#[test]
fn whiteouts_and_opaque_dirs_hide_lower_layers() {
    let lower = build(vec![
        Entry::dir("a", 0o755),
        Entry::file("a/x", 0o644, "x"),
        Entry::file("./a/y", 0o644, "y"),
        Entry::dir("/b/", 0o755),
        Entry::file("/b/z", 0o644, "z"),
        Entry::dir("/b/sub", 0o755),
        Entry::file("/b/sub/deep", 0o644, "d"),
        Entry::file("/c", 0o644, "file that becomes a dir"),
    ]);
    let upper = build(vec![
        Entry::file("/a/.wh.x", 0o644, ""),
        Entry::file("/b/new", 0o644, "new"),
        Entry::file("/b/.wh..wh..opq", 0o644, ""),
        Entry::file("/b/z", 0o600, "z again"),
        Entry::dir("/c", 0o700),
    ]);
    let img = image_of(vec![lower, upper]);
    let files = list_files(&img).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(names, ["/a", "/a/y", "/b", "/b/new", "/b/z", "/c"]);
    let z = files.iter().find(|f| f.path == "/b/z").unwrap();
    assert_eq!((z.layer, z.mode), (1, 0o600));
    assert_eq!(
        files.iter().find(|f| f.path == "/c").unwrap().kind,
        FsKind::Dir
    );
    assert_eq!(read_file(&img, "/b/z", 100).unwrap().1, b"z again");
    assert!(read_file(&img, "/a/x", 100).unwrap_err().is_not_found());
}

#[test]
fn launcher_is_read_through_symlinks_inside_the_image() {
    let run = build(vec![
        Entry::dir("/usr", 0o755),
        Entry::dir("/usr/local", 0o755),
        Entry::dir("/usr/local/bin", 0o755),
        Entry::file("/usr/local/bin/launcher", 0o755, "run-image launcher"),
    ]);
    let launcher_layer = build(vec![
        Entry::dir("/cnb", 0o755),
        Entry::dir("/cnb/lifecycle", 0o755),
        Entry::symlink("/cnb/lifecycle/launcher", "/usr/local/bin/launcher"),
    ]);
    let process = build(vec![
        Entry::dir("/cnb", 0o755),
        Entry::dir("/cnb/process", 0o755),
        Entry::symlink("/cnb/process/web", "../lifecycle/launcher"),
    ]);
    let img = image_of(vec![run, launcher_layer, process]);
    let (entry, data) = read_file(&img, "/cnb/process/web", 1 << 20).unwrap();
    assert_eq!(data, b"run-image launcher");
    assert_eq!(
        (entry.path.as_str(), entry.mode, entry.layer),
        ("/usr/local/bin/launcher", 0o755, 0)
    );
}

#[test]
fn traversal_names_are_refused() {
    for bad in ["../evil", "/a/../../evil", "a/b/../../../c"] {
        let img = image_of(vec![build(vec![Entry::file(bad, 0o644, "x")])]);
        let err = list_files(&img).unwrap_err();
        assert!(matches!(err, Error::UnsafeEntry { .. }), "{bad}: {err}");
        assert!(err.to_string().contains("path traversal"), "{err}");
    }
}

#[test]
fn escaping_symlinks_are_refused_when_followed() {
    let img = image_of(vec![build(vec![
        Entry::dir("/etc", 0o755),
        Entry::symlink("/etc/escape", "../../../../host/secret"),
    ])]);
    let err = read_file(&img, "/etc/escape", 100).unwrap_err();
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
    assert!(err.to_string().contains("escapes the image root"), "{err}");
}

#[test]
fn symlink_loops_end_with_an_error() {
    let img = image_of(vec![build(vec![
        Entry::symlink("/a", "/b"),
        Entry::symlink("/b", "/a"),
    ])]);
    let err = read_file(&img, "/a", 100).unwrap_err();
    assert!(err.to_string().contains("too many levels"), "{err}");
}

#[test]
fn oversized_files_are_refused_before_reading() {
    let big = vec![7u8; 300_000];
    let img = image_of(vec![build(vec![Entry::file("/big", 0o644, big.clone())])]);
    let err = read_file(&img, "/big", 1000).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                size: 300_000,
                limit: 1000,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(read_file(&img, "/big", 300_000).unwrap().1, big);
}

#[test]
fn directories_are_not_files() {
    let img = image_of(vec![file_layer("/d/f", "f")]);
    let err = read_file(&img, "/d", 10).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

#[test]
fn a_wrong_diff_id_fails_listing() {
    let mut layer = file_layer("/f", "f");
    layer.diff_id = relaunch_oci::Digest::of(b"something else");
    let img = image_of(vec![layer]);
    let err = list_files(&img).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains("diffID"), "{err}");
}

#[test]
fn a_corrupt_blob_fails_reading_even_when_gzip_stops_early() {
    let good = file_layer("/f", "content");
    let relaunch_oci::BlobSource::Memory(bytes) = &good.source else {
        panic!("small layers live in memory")
    };
    // Trailing garbage after the gzip stream: gzip readers ignore it, the digest does not.
    let mut tampered = bytes.to_vec();
    tampered.extend_from_slice(b"junk");
    let mut layer = good.clone();
    layer.source = relaunch_oci::BlobSource::Memory(std::sync::Arc::new(tampered));
    layer.descriptor.size += 4;
    let err = read_file(&image_of(vec![layer]), "/f", 100).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
}

/// zstd layers (several frames plus a skippable frame, as zstd:chunked writes) read like
/// gzip ones; the zstd CLI makes the frames.
#[test]
fn zstd_layers_with_several_frames_are_read() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let gz = build(vec![
        Entry::dir("/z", 0o755),
        Entry::file("/z/one", 0o644, "first file"),
        Entry::file("/z/two", 0o644, vec![b'x'; 5000]),
    ]);
    let mut tar = Vec::new();
    gz.open_tar().unwrap().read_to_end(&mut tar).unwrap();
    let zstd = |part: &[u8]| {
        let mut child = Command::new("zstd")
            .args(["-q", "-c"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(part).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        out.stdout
    };
    let mut blob = zstd(&tar[..1024]);
    blob.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
    blob.extend_from_slice(&3u32.to_le_bytes());
    blob.extend_from_slice(b"skp");
    blob.extend_from_slice(&zstd(&tar[1024..]));
    let layer = Layer {
        descriptor: relaunch_oci::Descriptor::new(
            relaunch_oci::media_type::OCI_LAYER_ZSTD,
            relaunch_oci::Digest::of(&blob),
            blob.len() as u64,
        ),
        diff_id: gz.diff_id.clone(),
        source: relaunch_oci::BlobSource::Memory(std::sync::Arc::new(blob)),
    };
    let img = image_of(vec![layer]);
    let names: Vec<String> = list_files(&img)
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(names, ["/z", "/z/one", "/z/two"]);
    assert_eq!(read_file(&img, "/z/one", 100).unwrap().1, b"first file");

    let tmp = tempfile::tempdir().unwrap();
    write_layout(&img, tmp.path(), "zstd");
    let inspected = skopeo_inspect(tmp.path(), "zstd");
    assert_eq!(
        inspected["Layers"][0],
        img.layers()[0].descriptor.digest.as_str()
    );
}
