//! Raw registry HTTP helpers for the testkit's own tests (deliberately independent of the
//! engine under test, so the harness is verified against the registry itself).
#![allow(dead_code)] // each test binary uses a different subset

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ureq::http::Response;
use ureq::Body;

/// Agent that reports HTTP errors as responses and follows no redirects.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

pub fn digest(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

pub fn get(url: &str, auth: Option<&str>) -> Response<Body> {
    let mut req = agent().get(url);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    req.call().unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// Fetches a token from `realm` with `GET ?service=..&scope=..` (scope repeated).
pub fn fetch_token(
    realm: &str,
    service: &str,
    scopes: &[&str],
    creds: Option<(&str, &str)>,
) -> (u16, Option<String>) {
    let mut url = format!("{realm}?service={service}");
    for s in scopes {
        url.push_str(&format!("&scope={s}"));
    }
    let auth = creds.map(|(u, p)| basic(u, p));
    let mut resp = get(&url, auth.as_deref());
    let status = resp.status().as_u16();
    let body: serde_json::Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    (status, body["token"].as_str().map(str::to_string))
}

/// Status and `WWW-Authenticate` challenge of the step that ended a push.
#[derive(Debug)]
pub struct Outcome {
    pub status: u16,
    pub challenge: String,
}

fn outcome(resp: &Response<Body>) -> Outcome {
    Outcome {
        status: resp.status().as_u16(),
        challenge: resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default(),
    }
}

/// Monolithic blob upload: `POST uploads/` then `PUT <location>?digest=`. Returns the
/// outcome of the first failing step, or of the final PUT (201 on success).
pub fn push_blob(base: &str, repo: &str, auth: Option<&str>, data: &[u8]) -> Outcome {
    let a = agent();
    let mut post = a.post(format!("{base}/v2/{repo}/blobs/uploads/"));
    if let Some(h) = auth {
        post = post.header("Authorization", h);
    }
    let resp = post.send_empty().expect("POST blob upload");
    if resp.status() != 202 {
        return outcome(&resp);
    }
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let location = if location.starts_with('/') {
        format!("{base}{location}")
    } else {
        location
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let mut put = a
        .put(format!("{location}{sep}digest={}", digest(data)))
        .header("Content-Type", "application/octet-stream");
    if let Some(h) = auth {
        put = put.header("Authorization", h);
    }
    outcome(&put.send(data).expect("PUT blob"))
}
