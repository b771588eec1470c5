//! Blob uploads: monolithic (POST, then PUT `?digest=`) up to the chunk size, chunked
//! (PATCH with `Content-Range`, then PUT) above it. The content is verified and kept
//! (in memory, or spooled to a temporary file when large) before the first byte is sent,
//! so a failed upload can be restarted from a fresh session.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use super::client::{status_error, Call, Reply};
use super::retry::retryable_status;
use super::url::{resolve_location, with_query};
use super::{lock, RegistryTransport};
use crate::digest::{check_digest, Digest, VerifyingReader};
use crate::error::{Error, Result};

/// Verified blob content, re-readable for restarts: up to the chunk size in memory (sent
/// in one PUT), above it spooled to a file (sent in PATCH chunks).
enum Content {
    Memory(Vec<u8>),
    Spooled(File),
}

impl Content {
    fn read(
        data: &mut dyn Read,
        digest: &Digest,
        size: u64,
        in_memory: bool,
        what: &str,
    ) -> Result<Content> {
        let mut verified = VerifyingReader::new(data, digest.clone(), size, what.to_string());
        let context = || format!("reading {what}");
        if in_memory {
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            verified
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io(context(), e))?;
            return Ok(Content::Memory(bytes));
        }
        let mut file = tempfile::tempfile().map_err(|e| Error::io("creating a spool file", e))?;
        io::copy(&mut verified, &mut file).map_err(|e| Error::io(context(), e))?;
        Ok(Content::Spooled(file))
    }
}

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
/// (400: it was verified before sending).
fn restartable(status: u16) -> bool {
    retryable_status(status) || matches!(status, 400 | 404 | 416)
}

impl RegistryTransport {
    pub(super) fn upload_blob(
        &self,
        digest: &Digest,
        size: u64,
        data: &mut dyn Read,
    ) -> Result<()> {
        let what = format!("blob {digest} for {}", self.describe());
        let chunk = self.client.config().chunk_size.max(1);
        let content = Content::read(data, digest, size, size <= chunk, &what)?;
        let policy = &self.client.config().retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let session = lock(&self.pending_uploads).remove(digest);
            let failure = match self.upload_once(digest, size, &content, session) {
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
            std::thread::sleep(delay);
        }
    }

    fn upload_once(
        &self,
        digest: &Digest,
        size: u64,
        content: &Content,
        session: Option<String>,
    ) -> std::result::Result<(), Failure> {
        let mut location = match session {
            Some(location) => location,
            None => self.start_upload()?,
        };
        let body: &[u8] = match content {
            Content::Memory(bytes) => bytes,
            Content::Spooled(file) => {
                location = self.send_chunks(file, size, location, digest)?;
                &[]
            }
        };
        let url = with_query(&location, &[("digest", digest.to_string())]);
        let reply = self.send_upload("PUT", url, body, 0, digest)?;
        self.expect(&reply, 201, digest)?;
        if let Some(header) = reply.header("docker-content-digest") {
            let what = format!("blob uploaded to {}", self.describe());
            check_digest(digest, &Digest::parse(header)?, &what)?;
        }
        Ok(())
    }

    /// PATCHes the spooled blob in chunks; returns the session URL for the closing PUT.
    fn send_chunks(
        &self,
        file: &File,
        size: u64,
        mut location: String,
        digest: &Digest,
    ) -> std::result::Result<String, Failure> {
        let chunk = self.client.config().chunk_size.max(1);
        let mut offset = 0;
        while offset < size {
            let mut bytes = vec![0; chunk.min(size - offset) as usize];
            file.read_exact_at(&mut bytes, offset)
                .map_err(|e| Failure::Final(Error::io("reading the spooled blob", e)))?;
            let reply = self.send_upload("PATCH", location.clone(), &bytes, offset, digest)?;
            self.expect(&reply, 202, digest)?;
            location = self.next_location(&location, &reply, digest)?;
            offset += bytes.len() as u64;
        }
        Ok(location)
    }

    /// `POST …/blobs/uploads/` → the session URL.
    fn start_upload(&self) -> std::result::Result<String, Failure> {
        let url = self.api_url("blobs/uploads/");
        let reply = self.client.fetch(&Call {
            method: "POST",
            url: url.clone(),
            registry: &self.registry,
            scopes: &self.push,
            headers: Vec::new(),
            body: Some(&[]),
            // Opening a session has no effect beyond the session: safe to repeat.
            retry: true,
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

    fn send_upload(
        &self,
        method: &'static str,
        url: String,
        bytes: &[u8],
        offset: u64,
        digest: &Digest,
    ) -> std::result::Result<Reply, Failure> {
        let mut headers = vec![("content-type", "application/octet-stream".to_string())];
        if method == "PATCH" {
            let end = offset + bytes.len() as u64 - 1;
            headers.push(("content-range", format!("{offset}-{end}")));
        }
        let reply = self.client.fetch(&Call {
            method,
            url,
            registry: &self.registry,
            scopes: &self.push,
            headers,
            body: Some(bytes),
            // A broken PATCH/PUT leaves the session in an unknown state: restart instead.
            retry: false,
        })?;
        if !bytes.is_empty() {
            self.client.count().uploaded(digest, bytes.len() as u64);
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
