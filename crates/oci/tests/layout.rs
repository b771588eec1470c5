//! Layout transport: round trips, interop with skopeo and umoci, and integrity failures
//! that publish nothing.

mod common;

use std::fs;
use std::io::Read;

use common::*;
use relaunch_oci::v1::Flavor;
use relaunch_oci::{
    write_image, Digest, Error, ImageRef, Layout, ManifestRef, NoProgress, Repo, Transport,
    TransportOptions,
};
use relaunch_testkit::umoci_unpack;

/// Opens a reference for reading with default options.
fn open_ref(reference: &str) -> relaunch_oci::Result<Repo> {
    Repo::open(&ImageRef::parse(reference)?, &TransportOptions::default())
}

#[test]
fn round_trip_keeps_bytes_and_passes_skopeo_and_umoci() {
    for flavor in [Flavor::Oci, Flavor::Docker] {
        let tmp = tempfile::tempdir().unwrap();
        let img = base_image(flavor, "base", 3);
        let dir = tmp.path().join("layout");
        let digest = write_layout(&img, &dir, "v1");

        let back = read_layout(&dir, "v1");
        assert!(back.is_unmodified());
        assert_eq!(back.digest(), digest);
        assert_eq!(back.config_bytes(), img.config_bytes());
        assert_eq!(back.diff_ids(), img.diff_ids());
        assert_eq!(back.history().len(), 4);

        let inspected = skopeo_inspect(&dir, "v1");
        assert_eq!(inspected["Digest"], digest.to_string());
        assert_eq!(inspected["Layers"].as_array().unwrap().len(), 3);

        // skopeo copies to another layout without changing a byte.
        let dir2 = tmp.path().join("copy");
        skopeo_copy(
            &format!("oci:{}:v1", dir.display()),
            &format!("oci:{}:v2", dir2.display()),
        );
        assert_eq!(read_layout(&dir2, "v2").digest(), digest);

        let bundle = tmp.path().join("bundle");
        umoci_unpack(&dir, "v1", &bundle);
        assert_eq!(
            fs::read_to_string(bundle.join("rootfs/base/layer2")).unwrap(),
            "base 2"
        );
    }
}

#[test]
fn tags_are_replaced_and_untagged_read_needs_a_single_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let a = base_image(Flavor::Oci, "a", 1);
    let b = base_image(Flavor::Oci, "b", 1);
    write_layout(&a, &dir, "t");
    let only = open_ref(&format!("oci:{}", dir.display()))
        .unwrap()
        .load_image(None)
        .unwrap();
    assert_eq!(only.digest(), a.digest());
    write_layout(&b, &dir, "t");
    write_layout(&a, &dir, "other");
    let layout = Layout::open(&dir).unwrap();
    assert_eq!(layout.tags().unwrap(), ["t", "other"]);
    assert_eq!(read_layout(&dir, "t").digest(), b.digest());
    let err = open_ref(&format!("oci:{}", dir.display())).err().unwrap();
    assert!(err.to_string().contains("lists 2 manifests"), "{err}");
    let missing = layout
        .get_manifest(&ManifestRef::Tag("nope".into()))
        .unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
}

#[test]
fn second_write_skips_present_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let img = base_image(Flavor::Oci, "x", 2);
    let layout = Layout::create(tmp.path().join("l")).unwrap();
    let first = write_image(&img, &layout, &["a".into()], &NoProgress).unwrap();
    assert_eq!((first.uploaded, first.skipped), (2, 0));
    let second = write_image(&img, &layout, &["b".into()], &NoProgress).unwrap();
    assert_eq!((second.uploaded, second.skipped), (0, 2));
}

/// Writing a layout's image back into the same layout (e.g. `decouple` in place) reads no
/// layer: a blob that is its own source is reused by size (copying it could only copy the
/// same bytes). Blobs from elsewhere are verified first (layout_hostile.rs).
#[test]
fn rewriting_into_the_same_layout_reads_no_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    write_layout(&base_image(Flavor::Oci, "x", 2), &dir, "a");
    let img = read_layout(&dir, "a");
    let layout = Layout::open(&dir).unwrap();
    for l in img.layers() {
        let path = layout.blob_path(&l.descriptor.digest);
        let len = fs::metadata(&path).unwrap().len();
        fs::write(&path, vec![0u8; len as usize]).unwrap(); // would fail any read
    }
    let report = write_image(&img, &layout, &["b".into()], &NoProgress).unwrap();
    assert_eq!((report.uploaded, report.skipped), (0, 2));
}

/// Layout → layout copies use `mount_blob` (a verified local copy), not the source reader.
#[test]
fn copy_between_layouts_mounts() {
    let tmp = tempfile::tempdir().unwrap();
    let src_dir = tmp.path().join("src");
    write_layout(&base_image(Flavor::Oci, "m", 2), &src_dir, "t");
    let img = read_layout(&src_dir, "t");
    let dst = Layout::create(tmp.path().join("dst")).unwrap();
    let report = write_image(&img, &dst, &["t".into()], &NoProgress).unwrap();
    assert_eq!((report.mounted, report.uploaded), (2, 0));
    assert_eq!(
        read_layout(&tmp.path().join("dst"), "t").digest(),
        img.digest()
    );
}

fn corrupt(path: &std::path::Path) {
    let mut bytes = fs::read(path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

#[test]
fn corrupt_layer_blob_fails_copy_and_publishes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let src_dir = tmp.path().join("src");
    write_layout(&base_image(Flavor::Oci, "c", 2), &src_dir, "t");
    let img = read_layout(&src_dir, "t");
    let layout = Layout::open(&src_dir).unwrap();
    corrupt(&layout.blob_path(&img.layers()[1].descriptor.digest));

    // Streaming read fails at EOF.
    let mut sink = Vec::new();
    let err = img.layers()[1]
        .open()
        .unwrap()
        .read_to_end(&mut sink)
        .unwrap_err();
    assert!(matches!(Error::io("x", err), Error::DigestMismatch { .. }));

    // A copy to another layout refuses to store the bad blob and writes no tag.
    let dst_dir = tmp.path().join("dst");
    let dst = Layout::create(&dst_dir).unwrap();
    let err = write_image(&img, &dst, &["t".into()], &NoProgress).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(dst.tags().unwrap().is_empty());
    assert!(dst
        .blob_size(&img.layers()[1].descriptor.digest)
        .unwrap()
        .is_none());
}

#[test]
fn corrupt_manifest_and_config_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let digest = write_layout(&base_image(Flavor::Oci, "d", 1), &dir, "t");
    let layout = Layout::open(&dir).unwrap();
    let img = read_layout(&dir, "t");

    corrupt(&layout.blob_path(&img.manifest().config.digest));
    let err = open_ref(&format!("oci:{}:t", dir.display()))
        .unwrap()
        .load()
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(err
        .to_string()
        .contains(img.manifest().config.digest.as_str()));

    corrupt(&layout.blob_path(&digest));
    let err = layout
        .get_manifest(&ManifestRef::Tag("t".into()))
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
}

#[test]
fn non_json_manifest_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let layout = Layout::create(&dir).unwrap();
    let raw = relaunch_oci::RawManifest {
        media_type: relaunch_oci::media_type::OCI_MANIFEST.into(),
        bytes: b"{\"schemaVersion\":2,\"config\":42}".to_vec(),
    };
    layout
        .put_manifest(&ManifestRef::Tag("bad".into()), &raw)
        .unwrap();
    let err = open_ref(&format!("oci:{}:bad", dir.display()))
        .unwrap()
        .load()
        .unwrap_err();
    assert!(matches!(err, Error::Json { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("manifest {}", raw.digest()))
            && message.contains("expected struct Descriptor"),
        "{message}"
    );
}

#[test]
fn layout_images_are_read_by_digest_and_not_written_by_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let a = base_image(Flavor::Oci, "a", 1);
    let b = base_image(Flavor::Oci, "b", 1);
    write_layout(&a, &dir, "a");
    let digest_b = write_layout(&b, &dir, "b");
    let by_digest = format!("oci:{}@{digest_b}", dir.display());
    let loaded = open_ref(&by_digest).unwrap().load_image(None).unwrap();
    assert_eq!(loaded.digest(), digest_b);
    let create = Repo::create(
        &ImageRef::parse(&by_digest).unwrap(),
        &TransportOptions::default(),
    );
    let err = create.err().unwrap();
    assert!(err.to_string().contains("written by tag"), "{err}");
    let missing = format!("oci:{}@{}", dir.display(), Digest::of(b"x"));
    let err = open_ref(&missing).unwrap().load().unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

/// Environment variable that turns `tag_writer_process` into a worker for the test below.
const TAG_WORKER: &str = "RELAUNCH_TEST_TAG_WORKER";
const TAGS_PER_WORKER: usize = 25;

/// Worker body: tags one manifest many times into the layout named by `TAG_WORKER`
/// (`<dir>|<prefix>`). Runs only when the test below starts this binary with it set.
#[test]
#[ignore = "worker process for concurrent_processes_keep_every_tag"]
fn tag_writer_process() {
    let Ok(spec) = std::env::var(TAG_WORKER) else {
        return;
    };
    let (dir, prefix) = spec.split_once('|').unwrap();
    let layout = Layout::open(dir).unwrap();
    let raw = layout
        .get_manifest(&ManifestRef::Tag("seed".into()))
        .unwrap();
    for i in 0..TAGS_PER_WORKER {
        let tag = ManifestRef::Tag(format!("{prefix}-{i}"));
        layout.put_manifest(&tag, &raw).unwrap();
    }
}

/// index.json is read, modified and replaced by each tagging; processes that tag the same
/// layout at once must not lose each other's tags (advisory lock on the directory).
#[test]
fn concurrent_processes_keep_every_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    write_layout(&base_image(Flavor::Oci, "s", 1), &dir, "seed");
    let workers: Vec<_> = (0..4)
        .map(|w| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "tag_writer_process", "--ignored", "--quiet"])
                .env(TAG_WORKER, format!("{}|w{w}", dir.display()))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut worker in workers {
        assert!(worker.wait().unwrap().success());
    }
    let mut tags = Layout::open(&dir).unwrap().tags().unwrap();
    tags.sort();
    let mut expected: Vec<String> = (0..4)
        .flat_map(|w| (0..TAGS_PER_WORKER).map(move |i| format!("w{w}-{i}")))
        .chain(["seed".to_string()])
        .collect();
    expected.sort();
    assert_eq!(tags, expected);
}
