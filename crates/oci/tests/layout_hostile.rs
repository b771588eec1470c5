//! Layouts as a hostile party would prepare them, with real files: symlinked `blobs/`,
//! FIFOs and devices in place of files, sparse 2 GiB files, corrupt blobs already in the
//! target, malformed `oci-layout`/index.json, duplicate tags.

mod common;

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use relaunch_oci::v1::Flavor;
use relaunch_oci::{
    write_image, Error, ImageRef, Layout, ManifestRef, NoProgress, Repo, Transport,
    TransportOptions,
};

fn load(reference: &str) -> relaunch_oci::Result<relaunch_oci::Image> {
    Repo::open(&ImageRef::parse(reference)?, &TransportOptions::default())?.load_image(None)
}

/// Runs `f` on a thread and fails the test if it has not returned within 20 s (a read
/// blocked on a FIFO would never return).
fn within_deadline<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("blocked: still waiting after 20 s")
}

fn mkfifo(path: &Path) {
    let _ = fs::remove_file(path);
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

/// `truncate -s 2G`: a sparse file of 2 GiB that costs no disk.
fn sparse_2g(path: &Path) {
    let _ = fs::remove_file(path);
    let status = Command::new("truncate")
        .args(["-s", "2G"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn symlinked_blob_dirs_are_refused_and_nothing_is_written_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let img = base_image(Flavor::Oci, "s", 2);
    for link in ["blobs", "blobs/sha256"] {
        let outside = tmp
            .path()
            .join(format!("outside-{}", link.replace('/', "-")));
        fs::create_dir_all(&outside).unwrap();
        let dir = tmp
            .path()
            .join(format!("layout-{}", link.replace('/', "-")));
        let layout = Layout::create(&dir).unwrap();
        fs::remove_dir_all(dir.join("blobs")).unwrap();
        if link == "blobs/sha256" {
            fs::create_dir(dir.join("blobs")).unwrap();
        }
        std::os::unix::fs::symlink(&outside, dir.join(link)).unwrap();
        let err = write_image(&img, &layout, &["x".into()], &NoProgress).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("{} is a symlink", dir.join(link).display()))
                && text.contains("refusing to write blobs outside the layout"),
            "{text}"
        );
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "{link}");
        assert!(layout.tags().unwrap().is_empty());
    }
}

#[test]
fn fifo_and_device_in_place_of_layout_files_fail_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let digest = write_layout(&base_image(Flavor::Oci, "f", 1), &dir, "t");
    let layout = Layout::open(&dir).unwrap();
    let img = read_layout(&dir, "t");
    let layer = img.layers()[0].descriptor.digest.clone();
    let reference = format!("oci:{}:t", dir.display());

    // A layer blob that is a FIFO: opening it neither blocks nor reads.
    mkfifo(&layout.blob_path(&layer));
    let copy = {
        let img = img.clone();
        let to = tmp.path().join("copy");
        within_deadline(move || {
            let target = Layout::create(to).unwrap();
            write_image(&img, &target, &["t".into()], &NoProgress).map(|_| ())
        })
    };
    let text = copy.unwrap_err().to_string();
    assert!(text.contains("a FIFO, not a regular file"), "{text}");

    // The manifest, index.json and oci-layout as a FIFO, then as /dev/zero.
    for victim in [
        layout.blob_path(&digest),
        dir.join("index.json"),
        dir.join("oci-layout"),
    ] {
        let saved = fs::read(&victim).unwrap();
        mkfifo(&victim);
        let r = reference.clone();
        let text = within_deadline(move || load(&r).unwrap_err().to_string());
        assert!(
            text.contains("a FIFO, not a regular file"),
            "{}: {text}",
            victim.display()
        );
        fs::remove_file(&victim).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &victim).unwrap();
        let r = reference.clone();
        let text = within_deadline(move || load(&r).unwrap_err().to_string());
        assert!(
            text.contains("character device"),
            "{}: {text}",
            victim.display()
        );
        fs::remove_file(&victim).unwrap();
        fs::write(&victim, saved).unwrap();
    }
    load(&reference).unwrap();
}

/// Before: a 559-byte descriptor pointing at a 2 GiB manifest file read all 2 GiB.
#[test]
fn sparse_2g_files_are_refused_by_size_before_reading() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let digest = write_layout(&base_image(Flavor::Oci, "g", 1), &dir, "t");
    let layout = Layout::open(&dir).unwrap();

    sparse_2g(&layout.blob_path(&digest));
    let err = layout
        .get_manifest(&ManifestRef::Tag("t".into()))
        .unwrap_err();
    assert!(
        matches!(err, Error::SizeMismatch { actual, .. } if actual == 2 << 30),
        "{err}"
    );
    // By digest, no descriptor gives the size: the manifest cap applies.
    let err = layout
        .get_manifest(&ManifestRef::Digest(digest.clone()))
        .unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { limit, .. } if limit == relaunch_oci::layout::MAX_MANIFEST_SIZE),
        "{err}"
    );

    for file in ["index.json", "oci-layout"] {
        let saved = fs::read(dir.join(file)).unwrap();
        sparse_2g(&dir.join(file));
        let err = load(&format!("oci:{}:t", dir.display())).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{file}: {err}");
        fs::write(dir.join(file), saved).unwrap();
    }
}

/// Before: a blob of the right size already in the target was trusted, and the new tag
/// pointed at corrupt bytes.
#[test]
fn corrupt_blob_in_the_target_is_rewritten_not_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let img = base_image(Flavor::Oci, "r", 2);
    let src = tmp.path().join("src");
    write_layout(&img, &src, "t");
    let dst = tmp.path().join("dst");
    write_layout(&img, &dst, "old");
    let target = Layout::open(&dst).unwrap();
    let layer = img.layers()[1].descriptor.digest.clone();
    let blob = target.blob_path(&layer);
    let mut bytes = fs::read(&blob).unwrap();
    bytes[0] ^= 0xff;
    fs::write(&blob, &bytes).unwrap();

    // From another layout (mount path) and from memory (upload path).
    let from_layout = read_layout(&src, "t");
    write_image(&from_layout, &target, &["new".into()], &NoProgress).unwrap();
    read_layout(&dst, "new").layers()[1]
        .open()
        .unwrap()
        .read_to_end(&mut Vec::new())
        .unwrap();
    fs::write(&blob, &bytes).unwrap();
    let report = write_image(&img, &target, &["new2".into()], &NoProgress).unwrap();
    assert_eq!(report.skipped, 1, "the intact layer is still reused");
    assert_eq!(fs::read(&blob).unwrap().len(), bytes.len());
    assert_ne!(fs::read(&blob).unwrap(), bytes);
}

#[test]
fn layout_format_is_validated() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let a = base_image(Flavor::Oci, "a", 1);
    write_layout(&a, &dir, "t");
    let reference = format!("oci:{}:t", dir.display());
    let err_of = || load(&reference).unwrap_err().to_string();

    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"2.0.0"}"#).unwrap();
    let text = err_of();
    assert!(
        text.contains(r#"imageLayoutVersion "2.0.0", not "1.0.0""#),
        "{text}"
    );
    fs::write(dir.join("oci-layout"), "not json").unwrap();
    let text = err_of();
    assert!(text.contains("oci-layout as JSON"), "{text}");
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();

    let index_path = dir.join("index.json");
    let index = fs::read_to_string(&index_path).unwrap();
    fs::write(
        &index_path,
        index.replace("\"schemaVersion\":2", "\"schemaVersion\":3"),
    )
    .unwrap();
    let text = err_of();
    assert!(text.contains("schemaVersion is 3, not 2"), "{text}");
    // Nor is it written back.
    let layout = Layout::open(&dir).unwrap();
    assert!(write_image(&a, &layout, &["u".into()], &NoProgress).is_err());
    assert!(fs::read_to_string(&index_path)
        .unwrap()
        .contains("\"schemaVersion\":3"));
}

#[test]
fn duplicate_ref_names_are_an_error_naming_both_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let a = write_layout(&base_image(Flavor::Oci, "a", 1), &dir, "t");
    let b = write_layout(&base_image(Flavor::Oci, "b", 1), &dir, "other");
    let index_path = dir.join("index.json");
    let index = fs::read_to_string(&index_path).unwrap();
    fs::write(&index_path, index.replace("\"other\"", "\"t\"")).unwrap();
    let text = load(&format!("oci:{}:t", dir.display()))
        .unwrap_err()
        .to_string();
    assert!(
        text.contains(&format!("two manifests \"t\": {a} and {b}")),
        "{text}"
    );
}

/// Before: a `sha512:` descriptor made the whole manifest unparsable ("invalid digest").
#[test]
fn other_digest_algorithms_parse_and_the_blob_is_unsupported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    write_layout(&base_image(Flavor::Oci, "h", 2), &dir, "t");
    let layout = Layout::open(&dir).unwrap();
    let raw = layout.get_manifest(&ManifestRef::Tag("t".into())).unwrap();
    let mut manifest: serde_json::Value = serde_json::from_slice(&raw.bytes).unwrap();
    let sha512 = format!("sha512:{}", "ab".repeat(64));
    manifest["layers"][1]["digest"] = sha512.clone().into();
    let raw = relaunch_oci::RawManifest {
        media_type: raw.media_type,
        bytes: serde_json::to_vec(&manifest).unwrap(),
    };
    layout
        .put_manifest(&ManifestRef::Tag("odd".into()), &raw)
        .unwrap();

    let img = load(&format!("oci:{}:odd", dir.display())).unwrap();
    assert_eq!(img.layers()[1].descriptor.digest.as_str(), sha512);
    let target = Layout::create(tmp.path().join("copy")).unwrap();
    let err = write_image(&img, &target, &["t".into()], &NoProgress).unwrap_err();
    assert!(matches!(err, Error::UnsupportedDigest { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("digest algorithm \"sha512\" of sha512:abab"),
        "{err}"
    );
    assert!(target.tags().unwrap().is_empty());
}
