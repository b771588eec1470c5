//! Blob HEAD, streaming GET (resumed with `Range` when the connection breaks) and
//! cross-repository mounts.

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::time::Instant;

use ureq::http::Response;
use ureq::Body;

use super::auth::repository_scope;
use super::client::{header_str, Call, Reply};
use super::failure::status_error;
use super::url::{redact, resolve_location, with_query};
use super::{lock, RegistryTransport};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::transport::Mount;

/// Assumed for a blob whose size is not known before its download (its `Content-Length`
/// then sets the budget): large, so only the throughput rule limits it.
const UNKNOWN_BLOB_SIZE: u64 = 1 << 40;

impl RegistryTransport {
    fn blob_call(&self, method: &'static str, digest: &Digest) -> Call<'_> {
        let url = self.api_url(&format!("blobs/{digest}"));
        Call::new(method, url, &self.registry, &self.pull)
    }

    fn blob_error(&self, reply: &Reply, digest: &Digest) -> Error {
        let what = format!("blob {digest} in {}", self.describe());
        status_error(reply, &self.describe(), &what)
    }

    pub(super) fn head_blob(&self, digest: &Digest) -> Result<Option<u64>> {
        let reply = self.client.fetch(&self.blob_call("HEAD", digest))?;
        match reply.status {
            200 => {
                let size = reply
                    .header("content-length")
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| {
                        Error::invalid(
                            format!("HEAD of blob {digest} in {}", self.describe()),
                            "no Content-Length in the answer",
                        )
                    })?;
                self.remember_blob(digest, size);
                Ok(Some(size))
            }
            404 => Ok(None),
            _ => Err(self.blob_error(&reply, digest)),
        }
    }

    /// A GET of the blob from byte `offset` on (redirects to storage are followed).
    fn request_blob(&self, digest: &Digest, offset: u64) -> Result<Response<Body>> {
        let mut call = self.blob_call("GET", digest);
        // The request's budget covers the body: the size the manifest gave, if known.
        let known = lock(&self.known_blobs).get(digest).copied();
        call.blob_bytes = known.unwrap_or(UNKNOWN_BLOB_SIZE).saturating_sub(offset);
        if offset > 0 {
            call.headers.push(("range", format!("bytes={offset}-")));
        }
        let response = self.client.stream(&call)?;
        let status = response.status().as_u16();
        let ok = status == 200 || (offset > 0 && status == 206);
        if !ok {
            let (parts, body) = response.into_parts();
            let body = body
                .into_with_config()
                .limit(1 << 16)
                .read_to_vec()
                .unwrap_or_default();
            let reply = Reply {
                status,
                headers: parts.headers,
                body,
            };
            return Err(self.blob_error(&reply, digest));
        }
        Ok(response)
    }

    pub(super) fn download_blob(&self, digest: &Digest) -> Result<BlobStream<'_>> {
        let response = self.request_blob(digest, 0)?;
        let total = header_str(response.headers(), "content-length").and_then(|v| v.parse().ok());
        let mut stream = BlobStream {
            transport: self,
            digest: digest.clone(),
            body: Some(Box::new(response.into_body().into_reader())),
            offset: 0,
            total,
            failures: 0,
            due: Instant::now(),
        };
        stream.set_due(0);
        Ok(stream)
    }

    /// `POST …/blobs/uploads/?mount=<digest>&from=<repository>`, tried before any HEAD:
    /// 201 means the registry linked the blob (one request instead of HEAD + POST). 202
    /// means it declined (the source lacks the blob) and opened an upload session; a HEAD
    /// then tells whether the blob is here anyway. If it is, the session is left unused
    /// (the registry purges stale sessions; cancelling would cost a request); if not, the
    /// following `put_blob` continues in it.
    pub(super) fn mount_from(&self, digest: &Digest, size: u64, from: &str) -> Result<Mount> {
        if lock(&self.known_blobs).get(digest) == Some(&size) {
            return Ok(Mount::Present);
        }
        let mut scopes: BTreeSet<String> = self.push.clone();
        scopes.insert(repository_scope(from, "pull"));
        let url = with_query(
            &self.api_url("blobs/uploads/"),
            &[("mount", digest.to_string()), ("from", from.to_string())],
        );
        let reply = self.client.fetch(&Call {
            body: Some(&[]),
            ..Call::new("POST", url.clone(), &self.registry, &scopes)
        });
        let reply = match reply {
            // No right to pull from the source (or to a token naming it): no mount, but the
            // blob may be here already or be uploadable with this repository's own rights.
            Err(Error::Unauthorized { message, .. }) => {
                tracing::debug!(%digest, from, "mount not authorized ({message})");
                return Ok(Mount::Unsupported);
            }
            other => other?,
        };
        match reply.status {
            401 | 403 => {
                tracing::debug!(%digest, from, status = reply.status, "mount not authorized");
                Ok(Mount::Unsupported)
            }
            201 => {
                self.remember_blob(digest, size);
                self.client.count().update(|c| c.mounts += 1);
                tracing::debug!(%digest, from, to = %self.describe(), "blob mounted");
                Ok(Mount::Mounted)
            }
            202 => {
                self.client.count().update(|c| c.mount_fallbacks += 1);
                if self.head_blob(digest)? == Some(size) {
                    tracing::debug!(%digest, from, "mount declined; blob already present");
                    return Ok(Mount::Present);
                }
                if let Some(location) = reply.header("location") {
                    let session = resolve_location(&url, location);
                    lock(&self.pending_uploads).insert(digest.clone(), session);
                }
                tracing::debug!(%digest, from, url = redact(&url), "mount declined; uploading");
                Ok(Mount::Absent)
            }
            _ => {
                let what = format!(
                    "mounting blob {digest} from {from} into {}",
                    self.describe()
                );
                Err(status_error(&reply, &self.describe(), &what))
            }
        }
    }
}

/// A blob download that survives broken connections: it re-requests the rest with
/// `Range: bytes=<offset>-` (skipping what it already has if the server ignores ranges).
/// Content is verified by the engine's `VerifyingReader` around it.
pub(super) struct BlobStream<'a> {
    transport: &'a RegistryTransport,
    digest: Digest,
    body: Option<Box<dyn Read + Send + 'static>>,
    offset: u64,
    /// Length announced by the first answer; a clean EOF before it is a break.
    total: Option<u64>,
    failures: u32,
    /// When the current response's body must have arrived: the client's budget for what is
    /// left of the blob (the minimum-throughput rule), checked on every read.
    due: Instant,
}

impl BlobStream<'_> {
    fn set_due(&mut self, offset: u64) {
        let left = self
            .total
            .unwrap_or(UNKNOWN_BLOB_SIZE)
            .saturating_sub(offset);
        self.due = Instant::now() + self.transport.client.config().budget(left);
    }

    fn reopen(&mut self) -> io::Result<()> {
        let response = self.transport.request_blob(&self.digest, self.offset)?;
        let whole = response.status().as_u16() == 200;
        let mut reader: Box<dyn Read + Send> = Box::new(response.into_body().into_reader());
        if whole && self.offset > 0 {
            let skipped = io::copy(&mut (&mut reader).take(self.offset), &mut io::sink())?;
            self.count(skipped);
            if skipped != self.offset {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "blob ended before the resume offset",
                ));
            }
        }
        self.body = Some(reader);
        self.set_due(self.offset);
        Ok(())
    }

    fn count(&self, bytes: u64) {
        self.transport
            .client
            .count()
            .downloaded(&self.digest, bytes);
    }
}

impl Read for BlobStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(body) = self.body.as_mut() else {
                // The client already retried the request itself; its failure is final.
                self.reopen()?;
                continue;
            };
            let failure = match body.read(buf) {
                Ok(n) if n > 0 && Instant::now() > self.due => io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "slower than {} bytes/s after {} bytes",
                        self.transport.client.config().min_throughput,
                        self.offset
                    ),
                ),
                Ok(0) if self.total.is_some_and(|t| self.offset < t) => io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("connection closed after {} bytes", self.offset),
                ),
                Ok(n) => {
                    self.offset += n as u64;
                    self.count(n as u64);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => e,
            };
            let policy = &self.transport.client.config().retry;
            self.failures += 1;
            if self.failures >= policy.max_attempts {
                return Err(io::Error::new(
                    failure.kind(),
                    format!(
                        "downloading blob {} from {}: {failure} (gave up after {} attempts)",
                        self.digest,
                        self.transport.describe(),
                        self.failures
                    ),
                ));
            }
            let delay = policy.delay(self.failures, None);
            tracing::warn!(
                digest = %self.digest,
                offset = self.offset,
                "blob download broke ({failure}); resuming in {delay:?}"
            );
            self.transport.client.count().update(|c| c.retries += 1);
            self.body = None;
            let context = || format!("downloading blob {}", self.digest);
            self.transport.client.back_off(delay, context)?;
        }
    }
}
