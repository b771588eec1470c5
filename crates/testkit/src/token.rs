//! Token server for [`Auth::Token`](crate::Auth::Token) registries (docker token auth spec).
//!
//! The registry trusts a self-signed P-256 certificate (its `rootcertbundle`); tokens are
//! ES256 JWTs carrying that certificate in the `x5c` header, which distribution verifies
//! against the bundle.

use std::io::BufReader;
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

use crate::certs::KeyPair;
use crate::http::{self, Head, Server};
use crate::TokenRequest;

pub(crate) const SERVICE: &str = "relaunch-testkit-registry";
pub(crate) const ISSUER: &str = "relaunch-testkit-token-server";

/// A user the token server accepts and the actions it may be granted.
pub(crate) struct Account {
    pub user: String,
    pub password: String,
    /// `None`: every requested action; `Some(list)`: only these actions.
    pub allowed_actions: Option<Vec<String>>,
}

struct Signer {
    key: EcdsaKeyPair,
    cert_der_b64: String,
    rng: SystemRandom,
}

struct State {
    signer: Signer,
    accounts: Vec<Account>,
    requests: Mutex<Vec<TokenRequest>>,
}

pub(crate) struct TokenServer {
    state: Arc<State>,
    server: Server,
}

impl TokenServer {
    /// Generates a key and certificate in `dir` (the cert lands at [`cert_path`],
    /// to be used as the registry's rootcertbundle) and starts serving `GET|POST /token`.
    pub fn start(dir: &Path, accounts: Vec<Account>) -> TokenServer {
        let signer = Signer::generate(dir);
        let state = Arc::new(State {
            signer,
            accounts,
            requests: Mutex::new(Vec::new()),
        });
        let handler_state = Arc::clone(&state);
        let server = Server::spawn(
            "token-server",
            Arc::new(move |conn| {
                // A failing client connection only affects that client.
                let _ = serve(&handler_state, conn);
            }),
        );
        TokenServer { state, server }
    }

    pub fn realm(&self) -> String {
        format!("http://{}/token", self.server.addr())
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

const KEY_NAME: &str = "token";

pub(crate) fn cert_path(dir: &Path) -> std::path::PathBuf {
    KeyPair::at(dir, KEY_NAME).cert
}

impl Signer {
    fn generate(dir: &Path) -> Signer {
        let pair = KeyPair::generate(dir, KEY_NAME, "/CN=relaunch-testkit-token", None, &[]);
        let key_der = pem_body(&pair.key, "PRIVATE KEY");
        let cert_der = pem_body(&pair.cert, "CERTIFICATE");
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key_der, &rng)
            .unwrap_or_else(|e| panic!("testkit: openssl key is not PKCS#8 P-256: {e}"));
        Signer {
            key,
            cert_der_b64: STANDARD.encode(cert_der),
            rng,
        }
    }

    /// An ES256 JWT for `subject` granting `access` (list of resource-action objects).
    fn token(&self, subject: &str, access: serde_json::Value) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [self.cert_der_b64]});
        let claims = json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 1,
            "iat": now,
            "jti": format!("{now}-{}", unique_suffix()),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .expect("ECDSA signing cannot fail with a valid key");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn pem_body(path: &Path, label: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("testkit: cannot read {}: {e}", path.display()));
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body: String = text
        .split_once(&begin)
        .and_then(|(_, rest)| rest.split_once(&end))
        .map(|(b, _)| b.split_whitespace().collect())
        .unwrap_or_else(|| panic!("testkit: no {label} block in {}", path.display()));
    STANDARD
        .decode(body)
        .unwrap_or_else(|e| panic!("testkit: bad base64 in {}: {e}", path.display()))
}

/// Handles one token request: `GET /token?service=..&scope=..` with basic credentials, or
/// the OAuth2 form `POST /token` (`grant_type=password`, `username`, `password`, `scope`).
fn serve(state: &State, conn: TcpStream) -> std::io::Result<()> {
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let Some(head) = Head::read(&mut reader)? else {
        return Ok(());
    };
    let body = http::read_body(&mut reader, head.request_body())?;
    let mut writer = conn;
    let mut parts = head.start_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != "/token" {
        return http::respond(&mut writer, 404, "Not Found", &[], b"");
    }
    let mut params = http::form_decode(query);
    let mut creds = head.header("authorization").and_then(basic_credentials);
    if method == "POST" {
        let form = http::form_decode(&String::from_utf8_lossy(&body));
        let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if let (Some(u), Some(p)) = (field("username"), field("password")) {
            creds = Some((u, p));
        }
        params.extend(form);
    }
    let service = params
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.clone());
    // OAuth2 sends one space-separated scope value; the docker flow repeats `scope`.
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split_whitespace().map(str::to_string))
        .collect();

    let account = match &creds {
        None => None,
        Some((u, p)) => match state
            .accounts
            .iter()
            .find(|a| &a.user == u && &a.password == p)
        {
            Some(a) => Some(a),
            None => {
                record(state, service, scopes, Some(u.clone()), false);
                let body = json!({"errors": [{"code": "UNAUTHORIZED", "message": "invalid username or password"}]});
                return http::respond(
                    &mut writer,
                    401,
                    "Unauthorized",
                    &[
                        ("Content-Type", "application/json"),
                        ("WWW-Authenticate", "Basic realm=\"relaunch-testkit\""),
                    ],
                    body.to_string().as_bytes(),
                );
            }
        },
    };
    // Like public registries, anonymous callers get a token, but one granting nothing.
    let access: Vec<serde_json::Value> = match account {
        None => Vec::new(),
        Some(a) => scopes.iter().filter_map(|s| grant(s, a)).collect(),
    };
    let subject = account.map_or("anonymous", |a| a.user.as_str());
    let token = state
        .signer
        .token(subject, serde_json::Value::Array(access));
    record(state, service, scopes, creds.map(|(u, _)| u), true);
    let body = json!({"token": token, "access_token": token, "expires_in": 300});
    http::respond(
        &mut writer,
        200,
        "OK",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

fn record(
    state: &State,
    service: Option<String>,
    scopes: Vec<String>,
    user: Option<String>,
    granted: bool,
) {
    state
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(TokenRequest {
            service,
            scopes,
            user,
            granted,
        });
}

/// Parses `type:name:actions` (the name may contain `:` e.g. with a port) and keeps the
/// actions the account may have.
fn grant(scope: &str, account: &Account) -> Option<serde_json::Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let actions: Vec<&str> = actions
        .split(',')
        .filter(|a| {
            account
                .allowed_actions
                .as_ref()
                .is_none_or(|allowed| allowed.iter().any(|x| x == a))
        })
        .collect();
    Some(json!({"type": kind, "name": name, "actions": actions}))
}

fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(value.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}
