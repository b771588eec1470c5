//! Hostile registries: credentials stay with the registry's own host:port, every wait has
//! a deadline, size caps are final (testkit proxy extensions, real registries).

#[path = "registry_support/mod.rs"]
mod registry_support;

use registry_support::*;
use relaunch_oci::{Error, ManifestRef, Transport};
use relaunch_testkit::{Auth, FaultPlan, FaultProxy, ForeignHost, ProxyOptions, Registry};

fn proxy_with(registry: &Registry, options: ProxyOptions) -> FaultProxy {
    FaultProxy::start_with(&registry.host(), FaultPlan::default(), options)
}

/// An upload `Location` naming another host:port gets no `Authorization` (basic or
/// bearer), and that host's 401 does not replace the registry's own challenge: no token is
/// asked of the realm it names, and the registry is still reachable with its credentials.
#[test]
fn credentials_never_follow_an_upload_location_to_another_host() {
    for auth in [Auth::Basic, Auth::Token] {
        let registry = Registry::start(auth);
        let proxy = proxy_with(
            &registry,
            ProxyOptions {
                foreign_uploads: Some(ForeignHost::Challenge),
                ..ProxyOptions::default()
            },
        );
        let host = proxy.host();
        let client = client(&registry, &host, Some(64 << 10));
        let target = repo(&client, &host, "app");
        let image = sample_image(1, &[100 << 10, 10 << 10]);
        let err = relaunch_oci::write_image(
            &image,
            target.as_ref(),
            &["v1".into()],
            &relaunch_oci::NoProgress,
        )
        .expect_err("the foreign host refuses every upload");
        assert!(matches!(err, Error::Unauthorized { .. }), "{auth:?}: {err}");

        let seen = proxy.foreign_requests();
        assert!(
            !seen.is_empty(),
            "{auth:?}: uploads went to the foreign host"
        );
        for request in &seen {
            assert_eq!(
                request.header("authorization"),
                None,
                "{auth:?}: credentials sent to another host: {}",
                request.start_line
            );
            assert!(
                !request.start_line.contains("/token"),
                "{auth:?}: a token was asked of the foreign realm: {}",
                request.start_line
            );
        }
        // The registry's own challenge still stands: authenticated reads work.
        let challenges = client.counters().auth_challenges;
        let absent = target
            .head_manifest(&ManifestRef::Tag("v1".into()))
            .expect("HEAD with the registry's credentials");
        assert_eq!(absent, None, "{auth:?}: nothing was published");
        assert_eq!(client.counters().auth_challenges, challenges, "{auth:?}");
    }
}

/// Storage on another host that accepts uploads without credentials (as pre-signed URLs
/// do) still gets the blobs; only the registry's own host sees `Authorization`.
#[test]
fn uploads_to_another_host_work_without_credentials() {
    let registry = Registry::start(Auth::Anonymous);
    let proxy = proxy_with(
        &registry,
        ProxyOptions {
            foreign_uploads: Some(ForeignHost::Forward),
            ..ProxyOptions::default()
        },
    );
    let host = proxy.host();
    let target = repo(&client(&registry, &host, Some(64 << 10)), &host, "app");
    let image = sample_image(2, &[100 << 10, 10 << 10]);
    push(&image, &target, "v1");
    assert!(!proxy.foreign_requests().is_empty());
    assert_skopeo_sees(&registry, "app", "v1", &image);
}

/// A manifest over the 8 MiB cap fails at once, naming the cap: asking again would only
/// fetch the same oversized body.
#[test]
fn an_oversized_manifest_is_fetched_once() {
    let registry = Registry::start(Auth::Anonymous);
    let proxy = proxy_with(
        &registry,
        ProxyOptions {
            oversized_manifest: Some(100 << 20),
            ..ProxyOptions::default()
        },
    );
    let host = proxy.host();
    let source = repo(&client(&registry, &host, None), &host, "app");
    let err = source
        .get_manifest(&ManifestRef::Tag("v1".into()))
        .expect_err("the manifest is too large");
    assert!(err.to_string().contains("8 MiB limit"), "{err}");
    assert_eq!(proxy.requests_seen(), 1, "{err}");
}
