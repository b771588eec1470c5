//! The HTTP side of the registry transport: one `ureq` agent per client, URL building,
//! authentication on 401, retries with backoff, deadlines, and the traffic counters.
//!
//! Deadlines: connecting, each silence on an open connection and the wait for an answer's
//! head are bounded; so is each whole request (body included): `request_timeout`, plus
//! for a blob the time its size takes at `min_throughput`. A command-wide `deadline` cuts
//! every request, retry wait and credential helper short.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::http::{header, HeaderMap, Response};
use ureq::tls::TlsConfig;
use ureq::{Body, SendBody};

use super::auth::{Authenticator, TokenRequest};
use super::config::ClientConfig;
use super::counters::{CounterCell, Counters};
use super::failure::{certificate_refused, error_detail, failure_message, registry_error};
use super::retry::{parse_retry_after, retryable_error, retryable_status};
use super::scheme::{self, Policy};
use super::url::{encode_form, redact, same_authority, with_query};
use crate::error::{Error, Result};

/// The registry Docker Hub names (`docker.io`, `index.docker.io`) are served from.
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";
/// Idle connections kept per client (per host and in total): a fleet run keeps up to
/// `--jobs` requests in flight per registry.
const MAX_IDLE_CONNECTIONS: usize = 64;
/// Largest manifest, token answer or error body read into memory.
const MAX_BODY: u64 = 8 << 20;
static NO_SCOPES: BTreeSet<String> = BTreeSet::new();

/// The host to talk to for a registry name (`docker.io` → `registry-1.docker.io`).
pub fn wire_registry(name: &str) -> &str {
    match name {
        "docker.io" | "index.docker.io" => DOCKER_HUB_REGISTRY,
        other => other,
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
    /// Blob bytes the request moves either way (a download's size): widens its budget.
    pub blob_bytes: u64,
    /// Whether a failed attempt may simply be repeated (upload PATCH/PUT may not: their
    /// session state is unknown after a failure, so the caller restarts the upload).
    pub retry: bool,
}

impl<'a> Call<'a> {
    /// A repeatable request without a body.
    pub fn new(
        method: &'static str,
        url: String,
        registry: &'a str,
        scopes: &'a BTreeSet<String>,
    ) -> Self {
        Call {
            method,
            url,
            registry,
            scopes,
            headers: Vec::new(),
            body: None,
            blob_bytes: 0,
            retry: true,
        }
    }
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
    /// The same, without certificate verification, for `--insecure-registry` names.
    unverified_agent: ureq::Agent,
    /// The scheme each registry answered on (HTTPS unless it may fall back and did).
    schemes: Mutex<HashMap<String, &'static str>>,
    config: ClientConfig,
    auth: Authenticator,
    counters: CounterCell,
    /// Held while fetching a token or probing a scheme, so parallel requests wait for
    /// one answer instead of each asking.
    single_flight: Mutex<()>,
}

impl RegistryClient {
    pub fn new(config: ClientConfig) -> Self {
        let agent = |verify: bool| {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                // Keep the connections of parallel work (blob copies, fleet jobs) for reuse;
                // ureq's default keeps 3 per host and reconnects for the rest.
                .max_idle_connections(MAX_IDLE_CONNECTIONS)
                .max_idle_connections_per_host(MAX_IDLE_CONNECTIONS)
                .user_agent(concat!("relaunch/", env!("CARGO_PKG_VERSION")))
                .timeout_connect(Some(config.connect_timeout))
                .timeout_per_read(Some(config.io_timeout))
                .timeout_per_write(Some(config.io_timeout))
                .timeout_recv_response(Some(config.response_timeout))
                .tls_config(
                    TlsConfig::builder()
                        .root_certs(config.extra_roots.root_certs())
                        .disable_verification(!verify)
                        .build(),
                )
                .build()
                .new_agent()
        };
        let helper_timeout = match config.deadline {
            Some(deadline) => config
                .credential_helper_timeout
                .min(deadline.saturating_duration_since(Instant::now())),
            None => config.credential_helper_timeout,
        };
        RegistryClient {
            agent: agent(true),
            unverified_agent: agent(false),
            schemes: Mutex::new(HashMap::new()),
            auth: Authenticator::new(config.credentials.clone(), helper_timeout),
            config,
            counters: CounterCell::default(),
            single_flight: Mutex::new(()),
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

    fn policy(&self, registry: &str) -> Policy {
        scheme::policy(registry, &self.config.insecure_registries)
    }

    /// `scheme://registry` for API paths. HTTPS, unless the registry may fall back to plain
    /// HTTP and HTTPS cannot connect: learnt once per registry with a `GET /v2/` over
    /// HTTPS (counted as a probe, not as a request), as go-containerregistry's ping does.
    pub(crate) fn base_url(&self, registry: &str) -> String {
        format!("{}://{registry}", self.scheme(registry))
    }

    fn scheme(&self, registry: &str) -> &'static str {
        if !self.policy(registry).plain_http_fallback {
            return "https";
        }
        if let Some(known) = super::lock(&self.schemes).get(registry) {
            return known;
        }
        // One probe per registry, also when requests start in parallel.
        let _single_flight = super::lock(&self.single_flight);
        if let Some(known) = super::lock(&self.schemes).get(registry) {
            return known;
        }
        let url = format!("https://{registry}/v2/");
        let probe = Call::new("GET", url, registry, &NO_SCOPES);
        self.counters.update(|c| c.scheme_probes += 1);
        let scheme = match self.execute(&probe, None) {
            Ok(response) => {
                discard(response);
                "https"
            }
            // It speaks TLS: plain HTTP cannot work, and the refusal is the useful error.
            Err(e) if certificate_refused(&e) => "https",
            Err(e) => {
                tracing::debug!(registry, "HTTPS failed ({e}); using plain HTTP");
                "http"
            }
        };
        super::lock(&self.schemes).insert(registry.to_string(), scheme);
        scheme
    }

    /// Time left before the command's deadline; an error once it has passed.
    pub(crate) fn time_left(&self, context: impl FnOnce() -> String) -> Result<Option<Duration>> {
        let Some(deadline) = self.config.deadline else {
            return Ok(None);
        };
        match deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(Some(left)),
            _ => Err(registry_error(
                context(),
                "the command's deadline (--timeout) has passed".into(),
                None,
            )),
        }
    }

    /// Waits `delay` before a repeat, unless that would pass the deadline.
    pub(crate) fn back_off(&self, delay: Duration, context: impl Fn() -> String) -> Result<()> {
        if self.time_left(&context)?.is_some_and(|left| left <= delay) {
            return Err(registry_error(
                context(),
                "the command's deadline (--timeout) would pass before the next attempt".into(),
                None,
            ));
        }
        std::thread::sleep(delay);
        Ok(())
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
                // Asking again would bring the same oversized body: the cap is final.
                Err(ureq::Error::BodyExceedsLimit(_)) => Err(registry_error(
                    format!("{} {}", call.method, redact(&call.url)),
                    format!(
                        "the response body is larger than the {} MiB limit",
                        MAX_BODY >> 20
                    ),
                    Some(parts.status.as_u16()),
                )),
                Err(e) => Ok(Step::Retry(format!("reading the response body: {e}"))),
            }
        })
    }

    /// Sends `call` once with a streamed body of `len` bytes (blob uploads). Not repeated:
    /// the body cannot be read again; the caller restarts the upload when that is safe.
    pub(crate) fn send_stream(&self, call: &Call, body: &mut dyn Read, len: u64) -> Result<Reply> {
        let context = || format!("{} {}", call.method, redact(&call.url));
        let authorization = match same_authority(&call.url, &self.base_url(call.registry)) {
            true => self.auth.authorization(call.registry, call.scopes)?,
            false => None,
        };
        let budget = self.config.budget(len);
        let budget = match self.time_left(context)? {
            Some(left) => budget.min(left),
            None => budget,
        };
        self.counters.request(call.method);
        tracing::debug!(method = call.method, url = %redact(&call.url), len, "registry upload");
        let mut builder = self.request_builder(call, authorization.as_deref());
        builder = builder.header(header::CONTENT_LENGTH, len);
        let request = builder
            .body(SendBody::from_reader(body))
            .map_err(|e| registry_error(context(), e.to_string(), None))?;
        let response = run_within(self.agent_for(call.registry), request, budget)
            .map_err(|e| registry_error(context(), failure_message(&e), None))?;
        let (parts, body) = response.into_parts();
        let body = body
            .into_with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| registry_error(context(), format!("reading the answer: {e}"), None))?;
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
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
        // Credentials go only to the registry's own host:port: an upload `Location` may
        // name storage elsewhere, which gets no `Authorization` and whose 401 teaches
        // nothing about the registry's authentication.
        let own_host = same_authority(&call.url, &self.base_url(call.registry));
        let mut authenticated = !own_host;
        loop {
            attempt += 1;
            if own_host
                && self
                    .auth
                    .token_needed(call.registry, call.scopes)?
                    .is_some()
            {
                // One fetch at a time: requests running in parallel that need the same
                // token wait for it instead of each asking the token server.
                let _single_flight = super::lock(&self.single_flight);
                if let Some(request) = self.auth.token_needed(call.registry, call.scopes)? {
                    self.fetch_token(call.registry, request)?;
                }
            }
            let authorization = match own_host {
                true => self.auth.authorization(call.registry, call.scopes)?,
                false => None,
            };
            self.counters.request(call.method);
            tracing::debug!(method = call.method, url = %redact(&call.url), attempt, "registry request");
            let may_retry = call.retry && attempt < policy.max_attempts;
            self.time_left(context)?;
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
            self.back_off(delay, context)?;
        }
    }

    fn agent_for(&self, registry: &str) -> &ureq::Agent {
        match self.policy(registry).skip_verify {
            true => &self.unverified_agent,
            false => &self.agent,
        }
    }

    fn request_builder(
        &self,
        call: &Call,
        authorization: Option<&str>,
    ) -> ureq::http::request::Builder {
        let mut builder = ureq::http::Request::builder()
            .method(call.method)
            .uri(&call.url);
        for (name, value) in &call.headers {
            builder = builder.header(*name, value);
        }
        if let Some(value) = authorization {
            builder = builder.header(header::AUTHORIZATION, value);
        }
        builder
    }

    /// One attempt, within the request's budget (cut to the command's deadline).
    fn execute(
        &self,
        call: &Call,
        authorization: Option<&str>,
    ) -> std::result::Result<Response<Body>, ureq::Error> {
        let len = call.body.map_or(0, |b| b.len() as u64);
        let mut budget = self.config.budget(call.blob_bytes.max(len));
        if let Some(deadline) = self.config.deadline {
            budget = budget.min(deadline.saturating_duration_since(Instant::now()));
        }
        let builder = self.request_builder(call, authorization);
        let agent = self.agent_for(call.registry);
        match call.body {
            Some(bytes) => run_within(agent, builder.body(bytes)?, budget),
            None => run_within(agent, builder.body(SendBody::none())?, budget),
        }
    }

    /// Asks a token realm for a bearer token and caches it.
    fn fetch_token(&self, registry: &str, request: TokenRequest) -> Result<()> {
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
                headers: headers.clone(),
                body: body.as_deref().map(str::as_bytes),
                retry: false,
                ..Call::new(method, url.clone(), registry, &NO_SCOPES)
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
            self.back_off(policy.delay(attempt, None), || {
                format!("token request to {}", redact(&url))
            })?;
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

fn run_within<S: ureq::AsSendBody>(
    agent: &ureq::Agent,
    request: ureq::http::Request<S>,
    budget: Duration,
) -> std::result::Result<Response<Body>, ureq::Error> {
    let request = agent.configure_request(request);
    agent.run(request.timeout_global(Some(budget)).build())
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

/// Drains and drops a response body so its connection can be reused.
pub(crate) fn discard(response: Response<Body>) {
    let mut reader = response.into_body().into_reader();
    let _ = std::io::copy(&mut (&mut reader).take(MAX_BODY), &mut std::io::sink());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Registries that may not fall back to plain HTTP are HTTPS without a probe.
    #[test]
    fn only_registries_allowed_plain_http_are_probed() {
        let client = RegistryClient::new(ClientConfig {
            insecure_registries: vec!["plain.example:1".into()],
            connect_timeout: Duration::from_millis(200),
            ..ClientConfig::default()
        });
        assert_eq!(client.base_url("127.0.0.2:1"), "https://127.0.0.2:1");
        assert_eq!(
            client.base_url("registry-1.docker.io"),
            "https://registry-1.docker.io"
        );
        assert_eq!(client.counters().scheme_probes, 0);
        // Nothing listens on 127.0.0.1:1: HTTPS cannot connect, plain HTTP it is (once).
        assert_eq!(client.base_url("127.0.0.1:1"), "http://127.0.0.1:1");
        assert_eq!(client.base_url("127.0.0.1:1"), "http://127.0.0.1:1");
        assert_eq!(client.counters().scheme_probes, 1);
    }

    #[test]
    fn docker_hub_names_are_mapped() {
        assert_eq!(wire_registry("docker.io"), DOCKER_HUB_REGISTRY);
        assert_eq!(wire_registry("localhost:5000"), "localhost:5000");
    }
}
