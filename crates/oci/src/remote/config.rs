//! Settings of a registry client: endpoints' security, credentials, retries, uploads and
//! the deadlines every request runs under.

use std::time::{Duration, Instant};

use super::credentials::CredentialSource;
use super::retry::RetryPolicy;
use super::tls::ExtraRoots;
use crate::error::Result;
use crate::transport::TransportOptions;

/// Settings of a [`RegistryClient`](super::RegistryClient).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registries (`host[:port]`, or `host` for every port) reached with unverified HTTPS,
    /// falling back to plain HTTP (see `remote::scheme` for the default local names).
    pub insecure_registries: Vec<String>,
    pub credentials: CredentialSource,
    pub retry: RetryPolicy,
    /// `None`: a blob goes up in one streamed PUT. `Some(n)`: in PATCH requests of `n`
    /// bytes (for registries or proxies that cap request sizes).
    pub chunk_size: Option<u64>,
    pub connect_timeout: Duration,
    /// Longest silence tolerated on an open connection.
    pub io_timeout: Duration,
    /// Longest wait for an answer's head once the request is sent.
    pub response_timeout: Duration,
    /// Whole-request budget (body included) for requests without a blob body, and the
    /// fixed part of a blob request's budget.
    pub request_timeout: Duration,
    /// Bytes per second a blob transfer must average: its budget grows by size / this.
    pub min_throughput: u64,
    /// Longest a Docker credential helper may take to answer.
    pub credential_helper_timeout: Duration,
    /// When every registry operation of the command must have ended (`--timeout`).
    pub deadline: Option<Instant>,
    /// CAs trusted for HTTPS besides the built-in Mozilla roots.
    pub extra_roots: ExtraRoots,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            insecure_registries: Vec::new(),
            credentials: CredentialSource::default(),
            retry: RetryPolicy::default(),
            chunk_size: None,
            connect_timeout: Duration::from_secs(30),
            io_timeout: Duration::from_secs(60),
            response_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(120),
            min_throughput: 100 << 10,
            credential_helper_timeout: Duration::from_secs(30),
            deadline: None,
            extra_roots: ExtraRoots::default(),
        }
    }
}

impl ClientConfig {
    /// Defaults plus the command's transport options (insecure registries, extra CAs,
    /// given credentials, deadline); fails if a CA file cannot be read or holds no PEM
    /// certificate.
    pub fn from_options(options: &TransportOptions) -> Result<Self> {
        Ok(ClientConfig {
            insecure_registries: options.insecure_registries.clone(),
            extra_roots: ExtraRoots::load(&options.extra_root_certs)?,
            credentials: CredentialSource::given_then_environment(options.credentials.clone()),
            deadline: options.deadline,
            ..ClientConfig::default()
        })
    }

    /// The whole-request budget for a request moving `body_bytes` of blob.
    pub(crate) fn budget(&self, body_bytes: u64) -> Duration {
        let seconds = body_bytes as f64 / self.min_throughput.max(1) as f64;
        let transfer = Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX);
        self.request_timeout.saturating_add(transfer)
    }
}
