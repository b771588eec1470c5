//! The registry transport against a real CNCF distribution registry (testkit), in each
//! auth mode: round trips, mounts, check-before-upload, chunked uploads, verification.

mod registry_support;

use std::io::Read;

use registry_support::*;
use relaunch_oci::remote::{ClientConfig, CredentialSource, RegistryClient, RegistryTransport};
use relaunch_oci::{Digest, Error, Location, ManifestRef, Mount, RawManifest, Transport};
use relaunch_testkit::{Auth, Registry};

fn round_trip(auth: Auth) {
    let registry = Registry::start(auth);
    let host = registry.host();
    let image = sample_image(1, &[3000, 70_000, 500]);

    let pusher = client(&registry, &host, None);
    let target = repo(&pusher, &host, "team/app");
    let report = push(&image, &target, "v1");
    assert_eq!(report.uploaded, 3);
    assert_eq!(report.digest, Some(image.digest()));
    let layer_bytes: u64 = image.layers().iter().map(|l| l.descriptor.size).sum();
    let pushed = pusher.counters();
    assert_eq!(
        pushed.bytes_for(image.layers().iter().map(|l| &l.descriptor.digest)),
        layer_bytes
    );

    let push_tokens = registry.token_requests();
    // skopeo (the reference client) sees the same image.
    let inspected = skopeo_inspect(&registry, "team/app", "v1");
    assert_eq!(inspected["Digest"], image.digest().to_string());
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 3);

    // A fresh client pulls it back, verified, with every layer byte counted.
    let puller = client(&registry, &host, None);
    let pulled = pull(&repo(&puller, &host, "team/app"), "v1").expect("pull");
    assert_eq!(pulled.digest(), image.digest());
    assert_eq!(pulled.diff_ids(), image.diff_ids());
    let counters = puller.counters();
    assert_eq!(
        counters.bytes_for(image.layers().iter().map(|l| &l.descriptor.digest)),
        layer_bytes
    );
    assert_eq!(counters.bytes_uploaded(), 0);

    if auth == Auth::Token {
        assert_eq!(pushed.token_requests, push_tokens.len() as u64);
        assert!(push_tokens
            .iter()
            .all(|t| t.granted && t.user.as_deref() == Some("relaunch")));
        assert!(push_tokens
            .iter()
            .any(|t| t.scopes == ["repository:team/app:pull,push"]));
        assert_eq!(
            counters.token_requests, 1,
            "one pull token serves the whole pull"
        );
    } else {
        assert!(registry.token_requests().is_empty());
        assert_eq!(pushed.token_requests + counters.token_requests, 0);
    }
}

#[test]
fn round_trip_anonymous() {
    round_trip(Auth::Anonymous);
}

#[test]
fn round_trip_basic() {
    round_trip(Auth::Basic);
}

#[test]
fn round_trip_token() {
    round_trip(Auth::Token);
}

#[test]
fn cross_repository_mount_moves_no_layer_bytes() {
    let registry = Registry::start(Auth::Token);
    let host = registry.host();
    let image = sample_image(2, &[40_000, 20_000, 10_000]);
    push(
        &image,
        &repo(&client(&registry, &host, None), &host, "src/app"),
        "v1",
    );

    let copier = client(&registry, &host, None);
    let source = repo(&copier, &host, "src/app");
    let target = repo(&copier, &host, "dst/app");
    let before = registry.token_requests().len();
    let loaded = pull_manifest_only(&source);
    let pulled = copier.counters();
    let report = push(&loaded, &target, "copied");
    assert_eq!(report.mounted, 3, "{report:?}");
    assert_eq!(report.uploaded, 0);

    let counters = copier.counters();
    // One request per blob: mounts are tried before any HEAD, the unedited config is
    // mounted too; then the manifest is put by tag.
    let sent = |m: &str| counters.requests_of(m) - pulled.requests_of(m);
    let challenges = counters.auth_challenges - pulled.auth_challenges;
    assert_eq!(
        (
            sent("HEAD"),
            sent("POST") - challenges,
            sent("PUT"),
            sent("PATCH")
        ),
        (0, 4, 1, 0),
        "{counters:?}"
    );
    assert_eq!(counters.mounts, 4);
    assert_eq!(
        counters.bytes_for(image.layers().iter().map(|l| &l.descriptor.digest)),
        0,
        "{counters:?}"
    );
    // The token that allowed the mounts named the source for pull and the target for push.
    let tokens = registry.token_requests()[before..].to_vec();
    let mount_token = tokens
        .iter()
        .find(|t| {
            t.scopes
                .contains(&"repository:dst/app:pull,push".to_string())
        })
        .unwrap_or_else(|| panic!("no push token for dst/app in {tokens:?}"));
    assert!(mount_token.granted);
    assert!(
        mount_token
            .scopes
            .contains(&"repository:src/app:pull".to_string()),
        "{mount_token:?}"
    );

    assert_skopeo_sees(&registry, "dst/app", "copied", &image);
    assert!(assert_tag_complete(&registry, "dst/app", "copied"));
}

/// Loads the image model without reading layer blobs.
fn pull_manifest_only(source: &std::sync::Arc<RegistryTransport>) -> relaunch_oci::Image {
    let transport: std::sync::Arc<dyn Transport> = source.clone();
    match relaunch_oci::read::load(&transport, &ManifestRef::Tag("v1".into())).unwrap() {
        relaunch_oci::Artifact::Image(image) => image,
        _ => panic!("not an image"),
    }
}

#[test]
fn declined_mount_continues_in_the_returned_session() {
    let registry = Registry::start(Auth::Anonymous);
    let host = registry.host();
    let pusher = client(&registry, &host, None);
    let target = repo(&pusher, &host, "dst/app");
    let blob = noise(7, 5000);
    let digest = Digest::of(&blob);
    let nowhere = Location::Registry {
        registry: host.clone(),
        repository: "nowhere/app".into(),
    };
    assert_eq!(
        target.mount_blob(&digest, 5000, &nowhere).unwrap(),
        Mount::Absent
    );
    target.put_blob(&digest, 5000, &mut &blob[..]).unwrap();
    let counters = pusher.counters();
    assert_eq!(counters.mount_fallbacks, 1);
    // One POST (the mount attempt) opened the session the upload finished in; one HEAD
    // established that the blob was not there yet.
    assert_eq!(counters.requests_of("POST"), 1, "{counters:?}");
    assert_eq!(counters.requests_of("HEAD"), 1, "{counters:?}");
    assert_eq!(counters.requests_of("PUT"), 1);
    let fresh = repo(&client(&registry, &host, None), &host, "dst/app");
    assert_eq!(fresh.blob_size(&digest).unwrap(), Some(5000));

    // Declined again, but now the blob is in the target: nothing to upload.
    let again = client(&registry, &host, None);
    let target = repo(&again, &host, "dst/app");
    assert_eq!(
        target.mount_blob(&digest, 5000, &nowhere).unwrap(),
        Mount::Present
    );
    let counters = again.counters();
    assert_eq!(
        (counters.requests_of("POST"), counters.requests_of("HEAD")),
        (1, 1),
        "{counters:?}"
    );
}

#[test]
fn present_blobs_are_not_uploaded_again() {
    let (registry, host, image) = registry_with_app(Auth::Basic, 3, &[30_000, 30_000]);

    let again = client(&registry, &host, None);
    let report = push(&image, &repo(&again, &host, "app"), "v2");
    assert_eq!(report.skipped, 2, "{report:?}");
    assert_eq!(report.uploaded, 0);
    let counters = again.counters();
    let layers = image.layers().iter().map(|l| &l.descriptor.digest);
    assert_eq!(counters.bytes_for(layers), 0, "{counters:?}");
    // One HEAD per layer found them (plus the 401s that asked for basic credentials, one
    // per layer copied in parallel before the first answer); only the newly built config
    // went up again.
    assert!(counters.auth_challenges >= 1, "{counters:?}");
    assert_eq!(
        counters.requests_of("HEAD") - counters.auth_challenges,
        2,
        "{counters:?}"
    );
    assert_eq!(counters.requests_of("POST"), 1);
    assert_eq!(counters.requests_of("PATCH"), 0);
    assert_skopeo_sees(&registry, "app", "v2", &image);
}

#[test]
fn large_blobs_are_uploaded_in_chunks() {
    let registry = Registry::start(Auth::Token);
    let host = registry.host();
    let chunk = 64 * 1024;
    let image = sample_image(4, &[300_000, 1000]);
    let big = image.layers()[0].descriptor.size;
    assert!(big > 4 * chunk);

    let pusher = client(&registry, &host, Some(chunk));
    push(&image, &repo(&pusher, &host, "chunky"), "v1");
    let counters = pusher.counters();
    assert_eq!(
        counters.requests_of("PATCH"),
        big.div_ceil(chunk),
        "{counters:?}"
    );
    assert!(assert_tag_complete(&registry, "chunky", "v1"));
    assert_skopeo_sees(&registry, "chunky", "v1", &image);
}

#[test]
fn wrong_digests_are_refused_and_nothing_is_stored() {
    let registry = Registry::start(Auth::Anonymous);
    let host = registry.host();
    let target = repo(&client(&registry, &host, None), &host, "app");
    let blob = noise(9, 2000);
    let claimed = Digest::of(b"something else");
    let err = target.put_blob(&claimed, 2000, &mut &blob[..]).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    let err = target
        .put_blob(&Digest::of(&blob), 1999, &mut &blob[..])
        .unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
    assert_eq!(target.blob_size(&claimed).unwrap(), None);
    assert_eq!(target.blob_size(&Digest::of(&blob)).unwrap(), None);

    // A manifest asked for by digest must hash to it.
    let image = sample_image(5, &[100]);
    push(&image, &target, "v1");
    let wrong = ManifestRef::Digest(Digest::of(b"not the manifest"));
    let err = target.get_manifest(&wrong).unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = target
        .put_manifest(&wrong, &image.raw_manifest())
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
}

#[test]
fn corrupt_stored_blob_fails_verification() {
    let (registry, host, image) = registry_with_app(Auth::Anonymous, 6, &[4000]);
    let layer = &image.layers()[0].descriptor;
    let hex = layer.digest.hex();
    let data = registry.storage_dir().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();

    let reader = repo(&client(&registry, &host, None), &host, "app");
    let mut out = Vec::new();
    let err = reader
        .open_blob_verified(&layer.digest, layer.size)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap_err();
    let err = Error::io("reading", err);
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
}

#[test]
fn manifest_with_a_missing_blob_is_not_published() {
    let registry = Registry::start(Auth::Anonymous);
    let host = registry.host();
    let target = repo(&client(&registry, &host, None), &host, "app");
    let image = sample_image(8, &[1000]);
    // Config present, layer never uploaded.
    let config = image.config_descriptor();
    target
        .put_blob(&config.digest, config.size, &mut &image.config_bytes()[..])
        .unwrap();
    let raw: RawManifest = image.raw_manifest();
    let err = target
        .put_manifest(&ManifestRef::Tag("broken".into()), &raw)
        .unwrap_err();
    assert!(err.to_string().contains("BLOB_UNKNOWN"), "{err}");
    assert!(!assert_tag_complete(&registry, "app", "broken"));
}

#[test]
fn bad_or_insufficient_credentials_are_clear_errors() {
    let registry = Registry::start(Auth::Token);
    let host = registry.host();
    let image = sample_image(10, &[100]);

    let dir = tempfile::tempdir().unwrap();
    let (user, _) = registry.read_only_credentials().unwrap();
    let write_config = |user: &str, password: &str| {
        let auth = base64_encode(&format!("{user}:{password}"));
        std::fs::write(
            dir.path().join("config.json"),
            format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
    };
    let with_config = || {
        std::sync::Arc::new(RegistryClient::new(ClientConfig {
            insecure_registries: vec![host.clone()],
            credentials: CredentialSource::DockerConfigDir(dir.path().to_path_buf()),
            retry: fast_retry(),
            ..ClientConfig::default()
        }))
    };

    let push_as = |password: &str| {
        write_config(&user, password);
        relaunch_oci::write_image(
            &image,
            repo(&with_config(), &host, "app").as_ref(),
            &["v1".into()],
            &relaunch_oci::NoProgress,
        )
        .unwrap_err()
    };

    let err = push_as("wrong-password");
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("401"), "{err}");

    // Right password, but the read-only user may not push.
    let (_, password) = registry.read_only_credentials().unwrap();
    let err = push_as(&password);
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    assert!(!assert_tag_complete(&registry, "app", "v1"));
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A front that answers every request with `307` to the same path on the registry, the
/// way registries hand blob downloads to a storage service.
fn start_redirector(upstream: String) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                line.clear();
            }
            let path = request_line.split(' ').nth(1).unwrap_or("/");
            let answer = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{upstream}{path}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = (&stream).write_all(answer.as_bytes());
        }
    });
    host
}

#[test]
fn downloads_follow_redirects() {
    let (registry, host, image) = registry_with_app(Auth::Anonymous, 13, &[20_000, 3000]);

    let front = start_redirector(host);
    let reader = client(&registry, &front, None);
    let pulled = pull(&repo(&reader, &front, "app"), "v1").expect("pull through redirects");
    assert_eq!(pulled.digest(), image.digest());
    let layer_bytes: u64 = image.layers().iter().map(|l| l.descriptor.size).sum();
    let counters = reader.counters();
    assert_eq!(
        counters.bytes_for(image.layers().iter().map(|l| &l.descriptor.digest)),
        layer_bytes
    );
}

/// Docker manifest lists keep their exact bytes in a registry, select by platform, and are
/// stored as OCI indexes (with relabelled children) in a layout.
#[test]
fn docker_manifest_lists_round_trip_and_become_oci_in_a_layout() {
    use relaunch_oci::v1::{Flavor, Index};
    use relaunch_oci::{media_type, read, write_index, Artifact, IndexManifest, Platform};
    let registry = Registry::start(Auth::Anonymous);
    let host = registry.host();
    let children: Vec<relaunch_oci::Image> = ["amd64", "arm64"]
        .iter()
        .enumerate()
        .map(|(i, arch)| {
            let mut image = sample_image(20 + i as u64, &[1000, 2000]);
            image.set_flavor(Flavor::Docker);
            relaunch_oci::mutate::set_labels(&mut image, [("arch", Some(*arch))]).unwrap();
            image
                .edit_config(|c| {
                    c.insert("architecture".into(), (*arch).into());
                    Ok(())
                })
                .unwrap();
            image
        })
        .collect();
    let mut index = Index::empty_oci();
    index.media_type = Some(media_type::DOCKER_MANIFEST_LIST.into());
    index.manifests = children
        .iter()
        .map(IndexManifest::child_descriptor)
        .collect();
    let list = IndexManifest::new(index);
    assert_eq!(list.raw.media_type, media_type::DOCKER_MANIFEST_LIST);
    let kids: Vec<relaunch_oci::Child> = children.iter().cloned().map(Into::into).collect();

    let target = repo(&client(&registry, &host, None), &host, "multi");
    let report = write_index(
        &list,
        &kids,
        target.as_ref(),
        &["1".into()],
        &relaunch_oci::NoProgress,
    )
    .unwrap();
    assert_eq!(report.digest, Some(list.raw.digest()));
    let raw = skopeo_inspect_raw(&registry, "multi", "1");
    assert_eq!(raw["mediaType"], media_type::DOCKER_MANIFEST_LIST);

    let reader: std::sync::Arc<dyn Transport> =
        repo(&client(&registry, &host, None), &host, "multi");
    let Artifact::Index(loaded) = read::load(&reader, &ManifestRef::Tag("1".into())).unwrap()
    else {
        panic!("not an index")
    };
    assert_eq!(loaded.raw, list.raw);
    let arm = loaded
        .select(&Platform::parse("linux/arm64").unwrap(), "multi")
        .unwrap();
    let arm = read::load_image_by_descriptor(&reader, arm).unwrap();
    assert_eq!(
        (arm.flavor(), arm.digest()),
        (Flavor::Docker, children[1].digest())
    );

    let tmp = tempfile::tempdir().unwrap();
    let layout = relaunch_oci::Layout::create(tmp.path()).unwrap();
    let children = loaded.load_children(&reader).unwrap();
    let stored = write_index(
        &loaded,
        &children,
        &layout,
        &["1".into()],
        &relaunch_oci::NoProgress,
    )
    .unwrap();
    let index = layout.get_manifest(&ManifestRef::Tag("1".into())).unwrap();
    assert_eq!(index.media_type, media_type::OCI_INDEX);
    assert_eq!(stored.digest, Some(index.digest()));
    let arm = relaunch_testkit::skopeo_inspect(
        &format!("oci:{}:1", tmp.path().display()),
        &["--override-arch", "arm64"],
    );
    assert_eq!(arm["Labels"]["arch"], "arm64");
}

fn skopeo_inspect_raw(registry: &Registry, repository: &str, tag: &str) -> serde_json::Value {
    relaunch_testkit::skopeo_inspect(
        &format!("docker://{}/{repository}:{tag}", registry.host()),
        &["--raw"],
    )
}

/// Uploads stream: one POST and one PUT per blob whatever its size (no PATCH chunks, no
/// spooling), and a source whose bytes do not match fails before the registry completes
/// the blob, without restarts.
#[test]
fn blobs_stream_in_one_put_each_and_are_verified_on_the_way() {
    let registry = Registry::start(Auth::Token);
    let host = registry.host();
    let pusher = client(&registry, &host, None);
    let target = repo(&pusher, &host, "stream");
    let big = noise(5, 20 << 20);
    let digest = Digest::of(&big);
    target
        .put_blob_from(&digest, big.len() as u64, &|| Ok(Box::new(&big[..])))
        .expect("streamed upload");
    let counters = pusher.counters();
    let challenges = counters.auth_challenges;
    assert_eq!(
        (
            counters.requests_of("POST") - challenges,
            counters.requests_of("PUT"),
            counters.requests_of("PATCH")
        ),
        (1, 1, 0),
        "{counters:?}"
    );
    assert_eq!(target.blob_size(&digest).unwrap(), Some(big.len() as u64));

    let mut corrupt = noise(6, 1 << 20);
    let claimed = Digest::of(&corrupt);
    corrupt[1000] ^= 1;
    let err = target
        .put_blob_from(&claimed, corrupt.len() as u64, &|| {
            Ok(Box::new(&corrupt[..]))
        })
        .expect_err("content does not match its digest");
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    let fresh = repo(&client(&registry, &host, None), &host, "stream");
    assert_eq!(fresh.blob_size(&claimed).unwrap(), None);
    assert_eq!(pusher.counters().retries, 0);
}
