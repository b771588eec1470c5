//! Each auth mode is checked with raw HTTP against the real docker-registry.
mod support;

use relaunch_testkit::{Auth, Registry};
use support::{basic, bearer, digest, fetch_token, get, push_blob, Outcome};

/// The registry accepted the token (signature, issuer, audience) but not its access list.
fn assert_insufficient_scope(refused: Outcome) {
    assert_eq!(refused.status, 401);
    assert!(
        refused.challenge.contains("error=\"insufficient_scope\""),
        "{refused:?}"
    );
}

fn challenge(registry: &Registry) -> (u16, String) {
    let resp = get(&format!("http://{}/v2/", registry.host()), None);
    let www = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (resp.status().as_u16(), www)
}

#[test]
fn anonymous_registry_accepts_pushes_without_credentials() {
    let registry = Registry::start(Auth::Anonymous);
    assert_eq!(challenge(&registry).0, 200);
    assert_eq!(registry.credentials(), None);
    let base = format!("http://{}", registry.host());
    assert_eq!(push_blob(&base, "app", None, b"anonymous blob").status, 201);
    let mut blob = get(
        &format!("{base}/v2/app/blobs/{}", digest(b"anonymous blob")),
        None,
    );
    assert_eq!(blob.body_mut().read_to_vec().unwrap(), b"anonymous blob");
    let config = std::fs::read_to_string(registry.docker_config_dir().join("config.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&config).unwrap(),
        serde_json::json!({"auths": {}})
    );
}

#[test]
fn basic_registry_requires_the_htpasswd_credentials() {
    let registry = Registry::start(Auth::Basic);
    let (status, www) = challenge(&registry);
    assert_eq!(status, 401);
    assert!(www.starts_with("Basic "), "challenge: {www}");

    let (user, password) = registry.credentials().expect("basic mode has credentials");
    let base = format!("http://{}", registry.host());
    let good = basic(&user, &password);
    assert_eq!(get(&format!("{base}/v2/"), Some(&good)).status(), 200);
    assert_eq!(
        push_blob(&base, "app", Some(&good), b"basic blob").status,
        201
    );

    let bad = basic(&user, "wrong-password");
    assert_eq!(get(&format!("{base}/v2/"), Some(&bad)).status(), 401);
    assert_eq!(
        push_blob(&base, "app", Some(&bad), b"other blob").status,
        401
    );
}

#[test]
fn docker_config_carries_the_registry_credentials() {
    let registry = Registry::start(Auth::Basic);
    let text = std::fs::read_to_string(registry.docker_config_dir().join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&text).unwrap();
    let auth = config["auths"][registry.host()]["auth"].as_str().unwrap();
    let (user, password) = registry.credentials().unwrap();
    assert_eq!(format!("Basic {auth}"), basic(&user, &password));
}

#[test]
fn token_registry_pushes_with_a_granted_token() {
    let registry = Registry::start(Auth::Token);
    let (status, www) = challenge(&registry);
    assert_eq!(status, 401);
    let realm = registry.token_realm().unwrap();
    assert!(
        www.starts_with("Bearer ") && www.contains(&format!("realm=\"{realm}\"")),
        "challenge: {www}"
    );
    assert!(www.contains(&format!("service=\"{}\"", registry.token_service())));

    let (user, password) = registry.credentials().unwrap();
    let (status, token) = fetch_token(
        &realm,
        registry.token_service(),
        &["repository:app:pull,push"],
        Some((&user, &password)),
    );
    assert_eq!(status, 200);
    let auth = bearer(&token.unwrap());
    let base = format!("http://{}", registry.host());
    assert_eq!(
        push_blob(&base, "app", Some(&auth), b"token blob").status,
        201
    );
    let blob = format!("{base}/v2/app/blobs/{}", digest(b"token blob"));
    assert_eq!(get(&blob, Some(&auth)).status(), 200);
    // The token names repository `app` only.
    assert_insufficient_scope(push_blob(&base, "other", Some(&auth), b"token blob"));

    let (status, catalog_token) = fetch_token(
        &realm,
        registry.token_service(),
        &["registry:catalog:*"],
        Some((&user, &password)),
    );
    assert_eq!(status, 200);
    let mut catalog = get(
        &format!("{base}/v2/_catalog"),
        Some(&bearer(&catalog_token.unwrap())),
    );
    assert_eq!(catalog.status(), 200);
    let body: serde_json::Value =
        serde_json::from_str(&catalog.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["repositories"], serde_json::json!(["app"]));
}

#[test]
fn token_registry_rejects_insufficient_scope() {
    let registry = Registry::start(Auth::Token);
    let realm = registry.token_realm().unwrap();
    let service = registry.token_service();
    let base = format!("http://{}", registry.host());
    let (user, password) = registry.credentials().unwrap();

    // Pull-only token asked for by the full user.
    let (_, pull_only) = fetch_token(
        &realm,
        service,
        &["repository:app:pull"],
        Some((&user, &password)),
    );
    assert_insufficient_scope(push_blob(
        &base,
        "app",
        Some(&bearer(&pull_only.unwrap())),
        b"x",
    ));

    // The read-only account asks for push but is granted pull only.
    let (reader, reader_pw) = registry.read_only_credentials().unwrap();
    let (status, reader_token) = fetch_token(
        &realm,
        service,
        &["repository:app:pull,push"],
        Some((&reader, &reader_pw)),
    );
    assert_eq!(status, 200);
    assert_insufficient_scope(push_blob(
        &base,
        "app",
        Some(&bearer(&reader_token.unwrap())),
        b"x",
    ));

    // Anonymous callers get a token that grants nothing.
    let (status, anonymous) = fetch_token(&realm, service, &["repository:app:pull,push"], None);
    assert_eq!(status, 200);
    assert_insufficient_scope(push_blob(
        &base,
        "app",
        Some(&bearer(&anonymous.unwrap())),
        b"x",
    ));
}

#[test]
fn token_server_rejects_a_bad_password_and_records_requests() {
    let registry = Registry::start(Auth::Token);
    let realm = registry.token_realm().unwrap();
    let (user, _) = registry.credentials().unwrap();
    let (status, token) = fetch_token(
        &realm,
        registry.token_service(),
        &["repository:app:pull"],
        Some((&user, "wrong-password")),
    );
    assert_eq!((status, token), (401, None));
    let requests = registry.token_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].user.as_deref(), Some(user.as_str()));
    assert!(!requests[0].granted);
    assert_eq!(requests[0].scopes, ["repository:app:pull"]);
    assert_eq!(
        requests[0].service.as_deref(),
        Some(registry.token_service())
    );
}

#[test]
fn token_with_mount_scopes_allows_cross_repository_mount() {
    let registry = Registry::start(Auth::Token);
    let realm = registry.token_realm().unwrap();
    let service = registry.token_service();
    let base = format!("http://{}", registry.host());
    let (user, password) = registry.credentials().unwrap();
    let creds = Some((user.as_str(), password.as_str()));

    let (_, src_token) = fetch_token(&realm, service, &["repository:src:pull,push"], creds);
    assert_eq!(
        push_blob(&base, "src", Some(&bearer(&src_token.unwrap())), b"shared").status,
        201
    );

    let (_, mount_token) = fetch_token(
        &realm,
        service,
        &["repository:dst:pull,push", "repository:src:pull"],
        creds,
    );
    let mount = support::agent()
        .post(format!(
            "{base}/v2/dst/blobs/uploads/?mount={}&from=src",
            digest(b"shared")
        ))
        .header("Authorization", &bearer(&mount_token.unwrap()))
        .send_empty()
        .unwrap();
    assert_eq!(mount.status(), 201, "mounted, not a fallback upload");
    let last = registry.token_requests().pop().unwrap();
    assert_eq!(
        last.scopes,
        ["repository:dst:pull,push", "repository:src:pull"]
    );
    assert!(last.granted);
}

#[test]
fn token_signed_for_another_registry_is_rejected() {
    let ours = Registry::start(Auth::Token);
    let theirs = Registry::start(Auth::Token);
    let (user, password) = theirs.credentials().unwrap();
    let (_, foreign) = fetch_token(
        &theirs.token_realm().unwrap(),
        theirs.token_service(),
        &["repository:app:pull,push"],
        Some((&user, &password)),
    );
    let base = format!("http://{}", ours.host());
    let refused = push_blob(&base, "app", Some(&bearer(&foreign.unwrap())), b"x");
    assert_eq!(refused.status, 401);
    assert!(
        refused.challenge.contains("error=\"invalid_token\""),
        "{refused:?}"
    );
}

#[test]
fn tls_registry_serves_https_trusted_through_its_ca_only() {
    let registry = Registry::start_tls(Auth::Basic);
    let ca = registry
        .ca_cert_path()
        .expect("a TLS registry names its CA");
    let pem = std::fs::read(&ca).unwrap();
    let cert = ureq::tls::Certificate::from_pem(&pem).unwrap();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
        .build();
    let trusting: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .build()
        .into();
    let url = format!("https://{}/v2/", registry.host());
    let answer = trusting.get(&url).call().expect("HTTPS with the CA");
    assert_eq!(answer.status(), 401, "htpasswd still applies over TLS");
    let refused = support::agent().get(&url).call().unwrap_err();
    assert!(
        refused.to_string().contains("UnknownIssuer"),
        "only the CA makes the certificate trusted: {refused}"
    );
    assert_eq!(Registry::start(Auth::Anonymous).ca_cert_path(), None);
}
