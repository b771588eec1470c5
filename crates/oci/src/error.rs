//! The engine's error type: every variant names what was being read or written.

use std::io;

use crate::digest::Digest;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid digest {0:?}: expected \"sha256:\" followed by 64 lowercase hex characters (or another <algorithm>:<encoded>)")]
    InvalidDigest(String),

    #[error("{what}: digest algorithm {:?} of {digest} is not supported (only sha256 can be verified)", digest.algorithm())]
    UnsupportedDigest { what: String, digest: Digest },

    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },

    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },

    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },

    #[error("{what} not found in {location}")]
    NotFound { what: String, location: String },

    #[error("unsupported media type {media_type:?} for {what}")]
    UnsupportedMediaType { what: String, media_type: String },

    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },

    // The cause is part of the message and deliberately not `source()`: error chains
    // printed whole (`{:#}`) would otherwise repeat it.
    #[error("parsing {what} as JSON: {cause}")]
    Json {
        what: String,
        cause: serde_json::Error,
    },

    #[error("{context}: {cause}")]
    Io { context: String, cause: io::Error },

    #[error("no manifest in {index} matches platform {platform}")]
    NoMatchingPlatform { index: String, platform: String },

    #[error("unsafe entry {path:?} in {layer}: {reason}")]
    UnsafeEntry {
        layer: String,
        path: String,
        reason: String,
    },

    #[error("{path:?} is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge { path: String, size: u64, limit: u64 },

    #[error("authentication to {registry} failed: {message}")]
    Unauthorized { registry: String, message: String },

    /// Registry protocol errors (HTTP status, malformed responses, connection failures).
    #[error("{context}: {message}")]
    Registry {
        context: String,
        message: String,
        status: Option<u16>,
    },
}

impl Error {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        // A verification failure raised inside a reader travels as io::Error; unwrap it.
        match source.downcast::<Error>() {
            Ok(inner) => inner,
            Err(cause) => Error::Io {
                context: context.into(),
                cause,
            },
        }
    }

    pub fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            what: what.into(),
            cause: source,
        }
    }

    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// A local file or directory that does not exist (ENOENT).
    pub fn is_missing_file(&self) -> bool {
        matches!(self, Error::Io { cause, .. } if cause.kind() == io::ErrorKind::NotFound)
    }
}

/// Lets `?` on engine results work inside `io::Read`/`io::Write` impls.
impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        io::Error::other(e)
    }
}
