//! The HTTP side of the registry transport: one `ureq` agent per client, URL building,
//! authentication on 401, retries with backoff, and the traffic counters.

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{header, HeaderMap, Response};
use ureq::tls::TlsConfig;
use ureq::{Body, SendBody};

use super::auth::{Authenticator, TokenRequest};
use super::counters::{CounterCell, Counters};
use super::credentials::CredentialSource;
use super::retry::{parse_retry_after, retryable_error, retryable_status, RetryPolicy};
use super::tls::{is_tls_failure, ExtraRoots};
use super::url::{encode_form, redact, with_query};
use crate::error::{Error, Result};
use crate::transport::TransportOptions;

/// The registry Docker Hub names (`docker.io`, `index.docker.io`) are served from.
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";
/// Idle connections kept per client (per host and in total): a fleet run keeps up to
/// `--jobs` requests in flight per registry.
const MAX_IDLE_CONNECTIONS: usize = 64;
/// Largest manifest, token answer or error body read into memory.
const MAX_BODY: u64 = 8 << 20;

/// The host to talk to for a registry name (`docker.io` → `registry-1.docker.io`).
pub fn wire_registry(name: &str) -> &str {
    match name {
        "docker.io" | "index.docker.io" => DOCKER_HUB_REGISTRY,
        other => other,
    }
}

/// Settings of a [`RegistryClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registries (host[:port]) spoken to over plain HTTP; all others use HTTPS.
    pub insecure_registries: Vec<String>,
    pub credentials: CredentialSource,
    pub retry: RetryPolicy,
    /// Blobs up to this size are uploaded in one PUT; larger ones in PATCH chunks this big.
    pub chunk_size: u64,
    pub connect_timeout: Duration,
    /// Longest silence tolerated on an open connection.
    pub io_timeout: Duration,
    /// CAs trusted for HTTPS besides the built-in Mozilla roots.
    pub extra_roots: ExtraRoots,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            insecure_registries: Vec::new(),
            credentials: CredentialSource::default(),
            retry: RetryPolicy::default(),
            chunk_size: 16 << 20,
            connect_timeout: Duration::from_secs(30),
            io_timeout: Duration::from_secs(120),
            extra_roots: ExtraRoots::default(),
        }
    }
}

impl ClientConfig {
    /// Defaults plus the command's transport options (insecure registries, extra CAs);
    /// fails if a CA file cannot be read or holds no PEM certificate.
    pub fn from_options(options: &TransportOptions) -> Result<Self> {
        Ok(ClientConfig {
            insecure_registries: options.insecure_registries.clone(),
            extra_roots: ExtraRoots::load(&options.extra_root_certs)?,
            ..ClientConfig::default()
        })
    }
}

/// One registry request; rebuilt for every attempt.
pub(crate) struct Call<'a> {
    pub method: &'static str,
    pub url: String,
    pub registry: &'a str,
    /// Token scopes the request needs (e.g. `repository:app:pull`).
    pub scopes: &'a BTreeSet<String>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<&'a [u8]>,
    /// Whether a failed attempt may simply be repeated (upload PATCH/PUT may not: their
    /// session state is unknown after a failure, so the caller restarts the upload).
    pub retry: bool,
}

/// A response read in full.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_str(&self.headers, name)
    }
}

pub(crate) fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// What a response handler decided.
pub(crate) enum Step<T> {
    Done(T),
    /// The response broke off (e.g. a truncated body); repeat the request if allowed.
    Retry(String),
}

/// A Distribution-API-v2 client shared by every repository it opens: one connection pool,
/// one token cache, one set of counters.
#[derive(Debug)]
pub struct RegistryClient {
    agent: ureq::Agent,
    config: ClientConfig,
    auth: Authenticator,
    counters: CounterCell,
    token_fetch: Mutex<()>,
}

impl RegistryClient {
    pub fn new(config: ClientConfig) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Keep the connections of parallel work (blob copies, fleet jobs) for reuse;
            // ureq's default keeps 3 per host and reconnects for the rest.
            .max_idle_connections(MAX_IDLE_CONNECTIONS)
            .max_idle_connections_per_host(MAX_IDLE_CONNECTIONS)
            .user_agent(concat!("relaunch/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(config.connect_timeout))
            .timeout_per_read(Some(config.io_timeout))
            .timeout_per_write(Some(config.io_timeout))
            .tls_config(
                TlsConfig::builder()
                    .root_certs(config.extra_roots.root_certs())
                    .build(),
            )
            .build()
            .new_agent();
        RegistryClient {
            agent,
            auth: Authenticator::new(config.credentials.clone()),
            config,
            counters: CounterCell::default(),
            token_fetch: Mutex::new(()),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// What this client has sent and received so far.
    pub fn counters(&self) -> Counters {
        self.counters.snapshot()
    }

    pub(crate) fn count(&self) -> &CounterCell {
        &self.counters
    }

    fn is_insecure(&self, registry: &str) -> bool {
        let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
        self.config
            .insecure_registries
            .iter()
            .any(|r| r == registry || r == host)
    }

    /// `scheme://registry` for API paths.
    pub(crate) fn base_url(&self, registry: &str) -> String {
        let scheme = if self.is_insecure(registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{registry}")
    }

    /// Sends `call` and reads the whole response body (bounded), retrying broken bodies.
    pub(crate) fn fetch(&self, call: &Call) -> Result<Reply> {
        self.run(call, |response| {
            let (parts, body) = response.into_parts();
            match body.into_with_config().limit(MAX_BODY).read_to_vec() {
                Ok(body) => Ok(Step::Done(Reply {
                    status: parts.status.as_u16(),
                    headers: parts.headers,
                    body,
                })),
                Err(e) => Ok(Step::Retry(format!("reading the response body: {e}"))),
            }
        })
    }

    /// Sends `call` and returns the response with its body unread (blob downloads).
    pub(crate) fn stream(&self, call: &Call) -> Result<Response<Body>> {
        self.run(call, |response| Ok(Step::Done(response)))
    }

    /// The attempt loop: authenticate on 401, back off and repeat on retryable failures.
    fn run<T>(
        &self,
        call: &Call,
        mut finish: impl FnMut(Response<Body>) -> Result<Step<T>>,
    ) -> Result<T> {
        let context = || format!("{} {}", call.method, redact(&call.url));
        let policy = &self.config.retry;
        let mut attempt = 0;
        let mut authenticated = false;
        loop {
            attempt += 1;
            if self
                .auth
                .token_needed(call.registry, call.scopes)?
                .is_some()
            {
                // One fetch at a time: requests running in parallel that need the same
                // token wait for it instead of each asking the token server.
                let _single_flight = super::lock(&self.token_fetch);
                if let Some(request) = self.auth.token_needed(call.registry, call.scopes)? {
                    self.fetch_token(call.registry, request)?;
                }
            }
            let authorization = self.auth.authorization(call.registry, call.scopes)?;
            self.counters.request(call.method);
            tracing::debug!(method = call.method, url = %redact(&call.url), attempt, "registry request");
            let may_retry = call.retry && attempt < policy.max_attempts;
            let (failure, retry_after) = match self.execute(call, authorization.as_deref()) {
                Ok(response) if response.status() == 401 && !authenticated => {
                    let challenge = header_str(response.headers(), "www-authenticate");
                    let Some(challenge) = challenge.map(str::to_string) else {
                        return finish_or_fail(finish(response)?, context);
                    };
                    discard(response);
                    self.counters.update(|c| c.auth_challenges += 1);
                    self.auth
                        .challenged(call.registry, &challenge, authorization.as_deref())?;
                    authenticated = true;
                    attempt -= 1;
                    continue;
                }
                Ok(response) if retryable_status(response.status().as_u16()) && may_retry => {
                    let retry_after =
                        header_str(response.headers(), "retry-after").and_then(parse_retry_after);
                    (format!("HTTP {}", response.status().as_u16()), retry_after)
                }
                Ok(response) => match finish(response)? {
                    Step::Done(value) => return Ok(value),
                    Step::Retry(why) if may_retry => (why, None),
                    Step::Retry(why) => {
                        return Err(registry_error(context(), gave_up(call, attempt, why), None));
                    }
                },
                Err(e) if retryable_error(&e) && may_retry => (e.to_string(), None),
                Err(e) if retryable_error(&e) => {
                    let why = gave_up(call, attempt, e.to_string());
                    return Err(registry_error(context(), why, None));
                }
                Err(e) => return Err(registry_error(context(), failure_message(&e), None)),
            };
            let delay = policy.delay(attempt, retry_after);
            tracing::warn!(
                "{} failed ({failure}); retrying in {delay:?} (attempt {attempt}/{})",
                context(),
                policy.max_attempts
            );
            self.counters.update(|c| c.retries += 1);
            std::thread::sleep(delay);
        }
    }

    fn execute(
        &self,
        call: &Call,
        authorization: Option<&str>,
    ) -> std::result::Result<Response<Body>, ureq::Error> {
        let mut builder = ureq::http::Request::builder()
            .method(call.method)
            .uri(&call.url);
        for (name, value) in &call.headers {
            builder = builder.header(*name, value);
        }
        if let Some(value) = authorization {
            builder = builder.header(header::AUTHORIZATION, value);
        }
        match call.body {
            Some(bytes) => self.agent.run(builder.body(bytes)?),
            None => self.agent.run(builder.body(SendBody::none())?),
        }
    }

    /// Asks a token realm for a bearer token and caches it.
    fn fetch_token(&self, registry: &str, request: TokenRequest) -> Result<()> {
        let no_scopes = BTreeSet::new();
        let (method, url, body, mut headers) = match &request.oauth_form {
            Some(form) => (
                "POST",
                request.url.clone(),
                Some(encode_form(form)),
                vec![(
                    "content-type",
                    "application/x-www-form-urlencoded".to_string(),
                )],
            ),
            None => (
                "GET",
                with_query(&request.url, &request.query),
                None,
                Vec::new(),
            ),
        };
        if let (None, Some(authorization)) = (&request.oauth_form, &request.authorization) {
            headers.push(("authorization", authorization.clone()));
        }
        let policy = &self.config.retry;
        let mut attempt = 0;
        let reply = loop {
            attempt += 1;
            self.counters.update(|c| c.token_requests += 1);
            let call = Call {
                method,
                url: url.clone(),
                registry,
                scopes: &no_scopes,
                headers: headers.clone(),
                body: body.as_deref().map(str::as_bytes),
                retry: false,
            };
            // The token server is not the registry: no auth loop, its own small retry loop.
            let outcome = self.execute(&call, None).and_then(|response| {
                let (parts, body) = response.into_parts();
                let body = body.into_with_config().limit(MAX_BODY).read_to_vec()?;
                Ok((parts.status.as_u16(), body))
            });
            match outcome {
                Ok((status, _)) if retryable_status(status) && attempt < policy.max_attempts => {}
                Ok(reply) => break reply,
                Err(e) if retryable_error(&e) && attempt < policy.max_attempts => {}
                Err(e) => {
                    return Err(Error::Unauthorized {
                        registry: registry.to_string(),
                        message: format!(
                            "token request to {} failed: {}",
                            redact(&url),
                            failure_message(&e)
                        ),
                    })
                }
            }
            self.counters.update(|c| c.retries += 1);
            std::thread::sleep(policy.delay(attempt, None));
        };
        match reply {
            (200, body) => self.auth.store_token(registry, request.scopes, &body),
            (status, body) => Err(Error::Unauthorized {
                registry: registry.to_string(),
                message: format!(
                    "token server {} answered HTTP {status}{}",
                    redact(&url),
                    error_detail(&body)
                ),
            }),
        }
    }
}

/// ureq's message, explained when TLS verification refused the server.
fn failure_message(error: &ureq::Error) -> String {
    if !is_tls_failure(error) {
        return error.to_string();
    }
    let detail = match error {
        ureq::Error::Io(e) => e.to_string(),
        other => other.to_string(),
    };
    format!(
        "TLS handshake failed: {detail} (for a registry whose certificate comes from a \
         private CA, trust that CA: --registry-ca FILE or SSL_CERT_FILE)"
    )
}

/// Says how many attempts were made when a repeatable failure ended the request.
fn gave_up(call: &Call, attempts: u32, why: String) -> String {
    if call.retry {
        format!("{why} (gave up after {attempts} attempts)")
    } else {
        why
    }
}

fn finish_or_fail<T>(step: Step<T>, context: impl Fn() -> String) -> Result<T> {
    match step {
        Step::Done(value) => Ok(value),
        Step::Retry(why) => Err(registry_error(context(), why, None)),
    }
}

pub(crate) fn registry_error(context: String, message: String, status: Option<u16>) -> Error {
    Error::Registry {
        context,
        message,
        status,
    }
}

/// Maps an unexpected reply to the engine's error: 404 → not found, 401/403 → unauthorized,
/// anything else → a registry error carrying the registry's own error message.
pub(crate) fn status_error(reply: &Reply, registry: &str, what: &str) -> Error {
    let detail = error_detail(&reply.body);
    match reply.status {
        404 => Error::NotFound {
            what: what.to_string(),
            location: registry.to_string(),
        },
        401 | 403 => Error::Unauthorized {
            registry: registry.to_string(),
            message: format!("access to {what} denied (HTTP {}){detail}", reply.status),
        },
        status => registry_error(
            what.to_string(),
            format!("unexpected HTTP {status}{detail}"),
            Some(status),
        ),
    }
}

/// `: CODE: message; ...` from a registry error body (`{"errors":[{code,message}]}`).
fn error_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: Option<String>,
        message: Option<String>,
    }
    let Ok(parsed) = serde_json::from_slice::<Errors>(body) else {
        return String::new();
    };
    let parts: Vec<String> = parsed
        .errors
        .into_iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.code.unwrap_or_default(),
                e.message.unwrap_or_default()
            )
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join("; "))
    }
}

/// Drains and drops a response body so its connection can be reused.
pub(crate) fn discard(response: Response<Body>) {
    let mut reader = response.into_body().into_reader();
    let _ = std::io::copy(&mut (&mut reader).take(MAX_BODY), &mut std::io::sink());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_registries_use_plain_http() {
        let client = RegistryClient::new(ClientConfig {
            insecure_registries: vec!["localhost:5000".into(), "plain.example".into()],
            ..ClientConfig::default()
        });
        assert_eq!(client.base_url("localhost:5000"), "http://localhost:5000");
        assert_eq!(client.base_url("localhost:5001"), "https://localhost:5001");
        assert_eq!(
            client.base_url("plain.example:443"),
            "http://plain.example:443"
        );
        assert_eq!(
            client.base_url("registry-1.docker.io"),
            "https://registry-1.docker.io"
        );
    }

    #[test]
    fn docker_hub_names_are_mapped() {
        assert_eq!(wire_registry("docker.io"), DOCKER_HUB_REGISTRY);
        assert_eq!(wire_registry("localhost:5000"), "localhost:5000");
    }

    #[test]
    fn registry_error_bodies_are_summarised() {
        let body = br#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#;
        assert_eq!(
            error_detail(body),
            ": MANIFEST_BLOB_UNKNOWN: blob unknown to registry"
        );
        assert_eq!(error_detail(b"<html>"), "");
    }
}
