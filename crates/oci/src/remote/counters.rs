//! Client-side traffic counters: what a registry operation really cost, for benchmarks
//! and tests (requests by method, blob bytes per digest, mounts, retries).

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::digest::Digest;

/// A snapshot of a client's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Registry requests by HTTP method (every attempt counts; token requests do not).
    pub requests: BTreeMap<String, u64>,
    /// Of `requests`: answers of 401 with a challenge, i.e. how a client learns the auth
    /// scheme (once per registry, plus whenever a token stops being honoured).
    pub auth_challenges: u64,
    /// Requests to token realms.
    pub token_requests: u64,
    /// Attempts repeated after a retryable failure (and upload sessions restarted).
    pub retries: u64,
    /// Blob body bytes received, per blob.
    pub downloaded: BTreeMap<Digest, u64>,
    /// Blob body bytes sent, per blob.
    pub uploaded: BTreeMap<Digest, u64>,
    /// Cross-repository mounts the registry performed (201 answers).
    pub mounts: u64,
    /// Mount attempts the registry declined (202 answers: the blob was uploaded instead).
    pub mount_fallbacks: u64,
    /// `GET /v2/` over HTTPS sent to learn whether a registry allowed plain HTTP needs it
    /// (not in `requests`: once per registry, and not part of any operation).
    pub scheme_probes: u64,
}

impl Counters {
    /// Registry requests of all methods (token requests excluded).
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    pub fn requests_of(&self, method: &str) -> u64 {
        self.requests.get(method).copied().unwrap_or(0)
    }

    pub fn bytes_downloaded(&self) -> u64 {
        self.downloaded.values().sum()
    }

    pub fn bytes_uploaded(&self) -> u64 {
        self.uploaded.values().sum()
    }

    /// Bytes moved (either way) for the given blobs, e.g. an image's layers.
    pub fn bytes_for<'a>(&self, digests: impl IntoIterator<Item = &'a Digest>) -> u64 {
        digests
            .into_iter()
            .map(|d| {
                self.downloaded.get(d).copied().unwrap_or(0)
                    + self.uploaded.get(d).copied().unwrap_or(0)
            })
            .sum()
    }
}

/// The live counters of one client.
#[derive(Debug, Default)]
pub(crate) struct CounterCell(Mutex<Counters>);

impl CounterCell {
    pub fn update(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub fn snapshot(&self) -> Counters {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn request(&self, method: &str) {
        self.update(|c| *c.requests.entry(method.to_string()).or_default() += 1);
    }

    pub fn downloaded(&self, digest: &Digest, bytes: u64) {
        self.update(|c| *c.downloaded.entry(digest.clone()).or_default() += bytes);
    }

    pub fn uploaded(&self, digest: &Digest, bytes: u64) {
        self.update(|c| *c.uploaded.entry(digest.clone()).or_default() += bytes);
    }
}
