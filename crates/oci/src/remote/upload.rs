//! Blob uploads, streamed from the source as it is read: `POST` opens a session, then one
//! `PUT ?digest=` carries the whole blob (or, for a blob larger than a configured chunk
//! size, `PATCH`es of that size and an empty `PUT`). Nothing is buffered: the content is hashed on its way
//! out and the last bytes are held back until it verified, so the registry never completes
//! a blob that does not match. A failed upload restarts from a fresh session when the
//! source can be opened again.

use std::io::{self, Read};

use super::client::{Call, Reply};
use super::failure::status_error;
use super::retry::retryable_status;
use super::url::{resolve_location, with_query};
use super::{lock, RegistryTransport};
use crate::digest::{check_digest, Digest, Hasher};
use crate::error::{Error, Result};

/// Why one upload attempt failed: worth a fresh session, or not.
enum Failure {
    Restart(Error),
    Final(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            // The connection broke (no status): the session's state is unknown.
            Error::Registry { status: None, .. } => Failure::Restart(e),
            other => Failure::Final(other),
        }
    }
}

/// Statuses after which a fresh session may succeed: transient server trouble (the
/// retryable ones), a session the registry lost (404/416), or content damaged in transit
/// (400: it was verified while sending).
fn restartable(status: u16) -> bool {
    retryable_status(status) || matches!(status, 400 | 404 | 416)
}

/// Opens the blob's content (again) from its start; `None` when it cannot be read again.
pub(super) type Open<'o> = dyn FnMut() -> Result<Option<Box<dyn Read + 'o>>> + 'o;

impl RegistryTransport {
    pub(super) fn upload_blob(&self, digest: &Digest, size: u64, open: &mut Open) -> Result<()> {
        let what = format!("blob {digest} for {}", self.describe());
        // Only what can be verified on the way out is sent (an empty body is never read).
        digest.check_verifiable(&what)?;
        if size == 0 {
            check_digest(digest, &Digest::of(b""), &what)?;
        }
        let policy = &self.client.config().retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Some(data) = open()? else {
                return Err(Error::Registry {
                    context: format!("uploading {what}"),
                    message: "the upload broke and its source cannot be read again".into(),
                    status: None,
                });
            };
            let mut body = VerifiedBody::new(data, digest, size, &what);
            let session = lock(&self.pending_uploads).remove(digest);
            let outcome = self.upload_once(digest, size, &mut body, session);
            // The source failed (or did not match): no session can fix that.
            if let Some(source_failure) = body.failure.take() {
                return Err(source_failure);
            }
            let failure = match outcome {
                Ok(()) => {
                    self.remember_blob(digest, size);
                    tracing::debug!(%digest, size, target = %self.describe(), "blob uploaded");
                    return Ok(());
                }
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Restart(e)) if attempt >= policy.max_attempts => {
                    return Err(Error::Registry {
                        context: format!("uploading {what}"),
                        message: format!("{e} (gave up after {attempt} attempts)"),
                        status: None,
                    })
                }
                Err(Failure::Restart(e)) => e,
            };
            let delay = policy.delay(attempt, None);
            tracing::warn!(
                "uploading {what} failed ({failure}); restarting in {delay:?} with a fresh session"
            );
            self.client.count().update(|c| c.retries += 1);
            self.client
                .back_off(delay, || format!("uploading {what}"))?;
        }
    }

    fn upload_once(
        &self,
        digest: &Digest,
        size: u64,
        body: &mut VerifiedBody,
        session: Option<String>,
    ) -> std::result::Result<(), Failure> {
        let mut location = match session {
            Some(location) => location,
            None => self.start_upload()?,
        };
        let mut rest = size;
        let chunk_size = self.client.config().chunk_size.map(|c| c.max(1));
        if let Some(chunk) = chunk_size.filter(|chunk| size > *chunk) {
            while rest > 0 {
                let len = chunk.min(rest);
                let offset = size - rest;
                let range = Some(("content-range", format!("{offset}-{}", offset + len - 1)));
                let reply =
                    self.send_upload("PATCH", location.clone(), range, body, len, digest)?;
                self.expect(&reply, 202, digest)?;
                location = self.next_location(&location, &reply, digest)?;
                rest -= len;
            }
        }
        let url = with_query(&location, &[("digest", digest.to_string())]);
        let reply = self.send_upload("PUT", url, None, body, rest, digest)?;
        self.expect(&reply, 201, digest)?;
        if let Some(header) = reply.header("docker-content-digest") {
            let what = format!("blob uploaded to {}", self.describe());
            check_digest(digest, &Digest::parse(header)?, &what)?;
        }
        Ok(())
    }

    /// `POST …/blobs/uploads/` → the session URL.
    fn start_upload(&self) -> std::result::Result<String, Failure> {
        let url = self.api_url("blobs/uploads/");
        // Opening a session has no effect beyond the session: safe to repeat.
        let reply = self.client.fetch(&Call {
            body: Some(&[]),
            ..Call::new("POST", url.clone(), &self.registry, &self.push)
        })?;
        if reply.status != 202 {
            return Err(Failure::Final(status_error(
                &reply,
                &self.describe(),
                &format!("starting an upload to {}", self.describe()),
            )));
        }
        let location = reply.header("location").ok_or_else(|| {
            Failure::Final(Error::invalid(
                format!("upload session in {}", self.describe()),
                "the registry's 202 answer has no Location",
            ))
        })?;
        Ok(resolve_location(&url, location))
    }

    /// Sends the next `len` bytes of `body` (not repeated: a broken PATCH/PUT leaves the
    /// session in an unknown state, so the upload restarts instead).
    fn send_upload(
        &self,
        method: &'static str,
        url: String,
        range: Option<(&'static str, String)>,
        body: &mut VerifiedBody,
        len: u64,
        digest: &Digest,
    ) -> std::result::Result<Reply, Failure> {
        let mut headers = vec![("content-type", "application/octet-stream".to_string())];
        headers.extend(range);
        let call = Call {
            headers,
            retry: false,
            ..Call::new(method, url, &self.registry, &self.push)
        };
        let reply = self.client.send_stream(&call, &mut body.take(len), len)?;
        if len > 0 {
            self.client.count().uploaded(digest, len);
        }
        Ok(reply)
    }

    fn expect(
        &self,
        reply: &Reply,
        status: u16,
        digest: &Digest,
    ) -> std::result::Result<(), Failure> {
        if reply.status == status {
            return Ok(());
        }
        let error = status_error(reply, &self.describe(), &format!("uploading blob {digest}"));
        Err(if restartable(reply.status) {
            Failure::Restart(error)
        } else {
            Failure::Final(error)
        })
    }

    fn next_location(
        &self,
        current: &str,
        reply: &Reply,
        digest: &Digest,
    ) -> std::result::Result<String, Failure> {
        match reply.header("location") {
            Some(next) => Ok(resolve_location(current, next)),
            None => Err(Failure::Final(Error::invalid(
                format!("upload of blob {digest} to {}", self.describe()),
                "the registry's PATCH answer has no Location",
            ))),
        }
    }
}

/// The blob as it goes out: hashed while read, and the read that completes it only
/// succeeds once size and digest are right (an over-long source is caught by one more
/// read), so a mismatch aborts the request before its last byte. A source failure is
/// kept in `failure`, to be reported instead of the broken request.
struct VerifiedBody<'a> {
    inner: Box<dyn Read + 'a>,
    hasher: Hasher,
    expected: &'a Digest,
    size: u64,
    what: &'a str,
    failure: Option<Error>,
}

impl<'a> VerifiedBody<'a> {
    fn new(inner: Box<dyn Read + 'a>, expected: &'a Digest, size: u64, what: &'a str) -> Self {
        VerifiedBody {
            inner,
            hasher: Hasher::new(),
            expected,
            size,
            what,
            failure: None,
        }
    }

    fn fail(&mut self, error: Error) -> io::Error {
        let message = error.to_string();
        self.failure = Some(error);
        io::Error::other(message)
    }

    fn size_mismatch(&mut self, actual: u64) -> io::Error {
        self.fail(Error::SizeMismatch {
            what: self.what.to_string(),
            expected: self.size,
            actual,
        })
    }
}

impl Read for VerifiedBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.size - self.hasher.len();
        if buf.is_empty() || remaining == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = match self.inner.read(&mut buf[..want]) {
            Ok(0) => return Err(self.size_mismatch(self.hasher.len())),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => return Err(self.fail(Error::io(format!("reading {}", self.what), e))),
        };
        self.hasher.update(&buf[..n]);
        if self.hasher.len() == self.size {
            match self.inner.read(&mut [0; 1]) {
                Ok(0) => {}
                Ok(_) => return Err(self.size_mismatch(self.size + 1)),
                Err(e) => return Err(self.fail(Error::io(format!("reading {}", self.what), e))),
            }
            let actual = self.hasher.clone().finish();
            if let Err(e) = check_digest(self.expected, &actual, self.what) {
                return Err(self.fail(e));
            }
        }
        Ok(n)
    }
}
