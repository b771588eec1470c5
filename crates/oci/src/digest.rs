//! Content digests (`sha256:<hex>`) and readers/writers that hash what passes through them.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// A validated `sha256:<64 lowercase hex>` digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Digest of a byte slice.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_sha256(Sha256::digest(bytes).into())
    }

    fn from_sha256(raw: [u8; 32]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(raw)))
    }

    pub fn parse(s: &str) -> Result<Digest> {
        let hex_part = s
            .strip_prefix("sha256:")
            .ok_or_else(|| Error::InvalidDigest(s.to_string()))?;
        let valid = hex_part.len() == 64
            && hex_part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(Error::InvalidDigest(s.to_string()));
        }
        Ok(Digest(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part, e.g. for `blobs/sha256/<hex>` paths.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    pub fn algorithm(&self) -> &str {
        "sha256"
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Digest> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Incremental sha256 with a byte count.
#[derive(Clone, Default)]
pub struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Hasher {
    pub fn new() -> Hasher {
        Hasher::default()
    }
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.len += bytes.len() as u64;
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn finish(self) -> Digest {
        Digest::from_sha256(self.sha.finalize().into())
    }
}

/// A writer that hashes everything written through it to `inner`.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Hasher::new(),
        }
    }
    /// Returns the inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        let len = self.hasher.len();
        (self.inner, self.hasher.finish(), len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that checks the bytes read against an expected digest and size.
/// Reading past `size` fails at once; a digest mismatch fails at EOF, so a consumer never
/// sees a clean end of a corrupt stream.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Hasher,
    expected: Digest,
    size: u64,
    what: String,
    verified: bool,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Digest, size: u64, what: impl Into<String>) -> Self {
        VerifyingReader {
            inner,
            hasher: Hasher::new(),
            expected,
            size,
            what: what.into(),
            verified: false,
        }
    }

    fn check_end(&mut self) -> io::Result<()> {
        if self.verified {
            return Ok(());
        }
        if self.hasher.len() != self.size {
            return Err(Error::SizeMismatch {
                what: self.what.clone(),
                expected: self.size,
                actual: self.hasher.len(),
            }
            .into());
        }
        check_digest(&self.expected, &self.hasher.clone().finish(), &self.what)?;
        self.verified = true;
        Ok(())
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Ask for one byte more than remains so an over-long stream is caught.
        let remaining = self.size.saturating_sub(self.hasher.len());
        let want = buf
            .len()
            .min(usize::try_from(remaining.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            self.check_end()?;
            return Ok(0);
        }
        self.hasher.update(&buf[..n]);
        if self.hasher.len() > self.size {
            return Err(Error::SizeMismatch {
                what: self.what.clone(),
                expected: self.size,
                actual: self.hasher.len(),
            }
            .into());
        }
        Ok(n)
    }
}

/// Checks in-memory content (manifests, configs) against its descriptor digest.
pub fn verify_bytes(bytes: &[u8], expected: &Digest, what: &str) -> Result<()> {
    check_digest(expected, &Digest::of(bytes), what)
}

/// `DigestMismatch` for `what` unless `actual` is `expected`.
pub fn check_digest(expected: &Digest, actual: &Digest, what: &str) -> Result<()> {
    if expected != actual {
        return Err(Error::DigestMismatch {
            what: what.to_string(),
            expected: expected.clone(),
            actual: actual.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let d = Digest::of(b"");
        assert_eq!(
            d.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        for bad in [
            "",
            "sha256:",
            "sha512:00",
            "sha256:E3B0",
            &d.as_str().replace('e', "E"),
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn verifying_reader_errors_at_eof_on_mismatch() {
        let data = b"hello world".to_vec();
        let good = Digest::of(&data);
        let mut out = Vec::new();
        VerifyingReader::new(&data[..], good.clone(), 11, "blob")
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);

        let err = VerifyingReader::new(&data[..], Digest::of(b"other"), 11, "blob")
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(matches!(Error::io("x", err), Error::DigestMismatch { .. }));

        let err = VerifyingReader::new(&data[..], good.clone(), 5, "blob")
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(matches!(Error::io("x", err), Error::SizeMismatch { .. }));

        let err = VerifyingReader::new(&data[..5], good, 11, "blob")
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(matches!(Error::io("x", err), Error::SizeMismatch { .. }));
    }
}
