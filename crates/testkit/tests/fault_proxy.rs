//! The fault proxy in front of a real registry: transparent forwarding, each fault kind,
//! and determinism per seed.
mod support;

use std::io::Read;

use relaunch_testkit::{Auth, FaultPlan, FaultProxy, Registry};
use support::{agent, digest, get, push_blob};

#[test]
fn forwards_chunked_uploads_and_keeps_the_client_on_the_proxy() {
    let registry = Registry::start(Auth::Anonymous);
    let proxy = FaultProxy::start(&registry.host(), FaultPlan::default());
    let base = format!("http://{}", proxy.host());
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();

    let a = agent();
    let started = a
        .post(format!("{base}/v2/app/blobs/uploads/"))
        .send_empty()
        .unwrap();
    assert_eq!(started.status(), 202);
    let location = started.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&base) || location.starts_with('/'),
        "upload location leaves the proxy: {location}"
    );
    let location = if location.starts_with('/') {
        format!("{base}{location}")
    } else {
        location
    };
    // A reader body of unknown size goes out chunked.
    let mut reader = &data[..];
    let patched = a
        .patch(&location)
        .header("Content-Type", "application/octet-stream")
        .send(ureq::SendBody::from_reader(&mut reader))
        .unwrap();
    assert_eq!(patched.status(), 202);
    let next = patched.headers()["location"].to_str().unwrap().to_string();
    let next = if next.starts_with('/') {
        format!("{base}{next}")
    } else {
        next
    };
    let sep = if next.contains('?') { '&' } else { '?' };
    let done = a
        .put(format!("{next}{sep}digest={}", digest(&data)))
        .send_empty()
        .unwrap();
    assert_eq!(done.status(), 201);

    let blob_url = format!("{base}/v2/app/blobs/{}", digest(&data));
    let head = a.head(&blob_url).call().unwrap();
    assert_eq!(
        head.headers()["content-length"],
        data.len().to_string().as_str()
    );
    let mut got = Vec::new();
    get(&blob_url, None)
        .body_mut()
        .as_reader()
        .read_to_end(&mut got)
        .unwrap();
    assert!(got == data, "blob round-trips through the proxy");
    assert_eq!(proxy.faults_injected(), 0);
    assert_eq!(proxy.requests_seen(), 5);
}

#[test]
fn answers_status_faults_without_forwarding() {
    let registry = Registry::start(Auth::Anonymous);
    for (code, plan) in [
        (
            500,
            FaultPlan {
                status_500: 1.0,
                ..FaultPlan::default()
            },
        ),
        (
            429,
            FaultPlan {
                status_429: 1.0,
                ..FaultPlan::default()
            },
        ),
        (
            502,
            FaultPlan {
                status_502: 1.0,
                ..FaultPlan::default()
            },
        ),
    ] {
        let proxy = FaultProxy::start(&registry.host(), plan);
        let base = format!("http://{}", proxy.host());
        let refused = push_blob(&base, "app", None, b"never stored");
        assert_eq!(refused.status, code);
        let resp = get(&format!("{base}/v2/"), None);
        assert_eq!(resp.status(), code);
        if code == 429 {
            assert_eq!(resp.headers()["retry-after"], "0");
        }
        assert_eq!(proxy.faults_injected(), 2);
    }
    // Nothing was forwarded, so nothing was stored.
    let blob = format!(
        "http://{}/v2/app/blobs/{}",
        registry.host(),
        digest(b"never stored")
    );
    assert_eq!(get(&blob, None).status(), 404);
}

#[test]
fn drops_connections_without_answering() {
    let registry = Registry::start(Auth::Anonymous);
    let plan = FaultPlan {
        drop_connection: 1.0,
        ..FaultPlan::default()
    };
    let proxy = FaultProxy::start(&registry.host(), plan);
    let result = agent().get(format!("http://{}/v2/", proxy.host())).call();
    assert!(
        result.is_err(),
        "expected a transport error, got {result:?}"
    );
    assert_eq!(proxy.faults_injected(), 1);
}

#[test]
fn truncates_bodies_but_not_bodiless_responses() {
    let registry = Registry::start(Auth::Anonymous);
    let data = vec![7u8; 10_000];
    let direct = format!("http://{}", registry.host());
    assert_eq!(push_blob(&direct, "app", None, &data).status, 201);

    let plan = FaultPlan {
        truncate_body: 1.0,
        ..FaultPlan::default()
    };
    let proxy = FaultProxy::start(&registry.host(), plan);
    let blob_url = format!("http://{}/v2/app/blobs/{}", proxy.host(), digest(&data));

    let head = agent().head(&blob_url).call().unwrap();
    assert_eq!(head.headers()["content-length"], "10000");
    assert_eq!(proxy.faults_injected(), 0, "a HEAD has no body to truncate");

    let mut resp = get(&blob_url, None);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-length"], "10000");
    let mut got = Vec::new();
    let read = resp.body_mut().as_reader().read_to_end(&mut got);
    assert!(
        read.is_err(),
        "short body must be an error, read {} bytes",
        got.len()
    );
    assert!(got.len() < data.len());
    assert_eq!(proxy.faults_injected(), 1);
}

/// Status sequence of `n` sequential requests through a proxy with `seed`.
fn statuses(registry: &Registry, seed: u64, n: usize) -> (Vec<u16>, u64) {
    let plan = FaultPlan {
        seed,
        status_500: 0.2,
        status_429: 0.2,
        status_502: 0.2,
        ..FaultPlan::default()
    };
    let proxy = FaultProxy::start(&registry.host(), plan);
    let url = format!("http://{}/v2/", proxy.host());
    let seen = (0..n).map(|_| get(&url, None).status().as_u16()).collect();
    (seen, proxy.faults_injected())
}

#[test]
fn faults_are_a_function_of_the_seed() {
    let registry = Registry::start(Auth::Anonymous);
    let (first, faults) = statuses(&registry, 42, 60);
    let (again, _) = statuses(&registry, 42, 60);
    let (other, _) = statuses(&registry, 43, 60);
    assert_eq!(first, again);
    assert_ne!(first, other);
    assert_eq!(faults, first.iter().filter(|s| **s != 200).count() as u64);
    for code in [200, 500, 429, 502] {
        assert!(first.contains(&code), "{code} missing from {first:?}");
    }
}

#[test]
fn token_challenges_through_the_proxy_still_name_the_token_server() {
    let registry = Registry::start(Auth::Token);
    let proxy = FaultProxy::start(&registry.host(), FaultPlan::default());
    let resp = get(&format!("http://{}/v2/", proxy.host()), None);
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(&registry.token_realm().unwrap()),
        "{challenge}"
    );

    let (user, password) = registry.credentials().unwrap();
    let (_, token) = support::fetch_token(
        &registry.token_realm().unwrap(),
        registry.token_service(),
        &["repository:app:pull,push"],
        Some((&user, &password)),
    );
    let base = format!("http://{}", proxy.host());
    let auth = support::bearer(&token.unwrap());
    assert_eq!(
        push_blob(&base, "app", Some(&auth), b"via proxy").status,
        201
    );
}

#[test]
#[should_panic(expected = "sum to at most 1")]
fn rejects_probabilities_above_one() {
    let plan = FaultPlan {
        status_500: 0.7,
        status_502: 0.7,
        ..FaultPlan::default()
    };
    FaultProxy::start("127.0.0.1:9", plan);
}
