//! Content digests (`sha256:<hex>`) and readers/writers that hash what passes through them.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// A validated content digest, `<algorithm>:<encoded>` as the OCI image spec defines it.
/// Only sha256 can be computed and verified here; a descriptor with another algorithm
/// (e.g. `sha512:`) still parses, and reading what it points at is refused as unsupported.
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

    /// Registered algorithms (sha256, sha512) must have their length of lowercase hex;
    /// others only need the spec's grammar.
    pub fn parse(s: &str) -> Result<Digest> {
        let invalid = || Error::InvalidDigest(s.to_string());
        let (algorithm, encoded) = s.split_once(':').ok_or_else(invalid)?;
        let lower_hex = |n: usize| {
            encoded.len() == n
                && encoded
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let valid = match algorithm {
            "sha256" => lower_hex(64),
            "sha512" => lower_hex(128),
            _ => valid_algorithm(algorithm) && valid_encoded(encoded),
        };
        if !valid {
            return Err(invalid());
        }
        Ok(Digest(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The encoded part (hex for sha256), e.g. for `blobs/sha256/<hex>` paths.
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, encoded)| encoded)
    }

    pub fn algorithm(&self) -> &str {
        self.0
            .split_once(':')
            .map_or("", |(algorithm, _)| algorithm)
    }

    /// Whether content can be checked against it (sha256 is the one algorithm supported).
    pub fn is_verifiable(&self) -> bool {
        self.algorithm() == "sha256"
    }

    /// `UnsupportedDigest` for `what` unless this digest can be verified.
    pub fn check_verifiable(&self, what: &str) -> Result<()> {
        match self.is_verifiable() {
            true => Ok(()),
            false => Err(Error::UnsupportedDigest {
                what: what.to_string(),
                digest: self.clone(),
            }),
        }
    }
}

/// `[a-z0-9]+([+._-][a-z0-9]+)*`
fn valid_algorithm(a: &str) -> bool {
    a.split(['+', '.', '_', '-']).all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// `[a-zA-Z0-9=_-]+` (no '/' or '.', so it is safe as a file name too).
fn valid_encoded(e: &str) -> bool {
    !e.is_empty()
        && e.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
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
        self.expected.check_verifiable(&self.what)?;
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
        // Not one byte of content that cannot be checked.
        self.expected.check_verifiable(&self.what)?;
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
    expected.check_verifiable(what)?;
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
            "Upper:abc",
            "alg:a/b",
            "alg:../x",
            "+x:abc",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
    }

    /// Other algorithms parse (a manifest naming one stays readable) but nothing is ever
    /// verified against them: reading says unsupported instead of "digest mismatch".
    #[test]
    fn other_algorithms_parse_and_are_unsupported_for_verification() {
        let sha512 = format!("sha512:{}", "ab".repeat(64));
        for s in [sha512.as_str(), "blake3:abc", "multihash+base58:QmXyz=_-"] {
            let d = Digest::parse(s).unwrap();
            assert!(!d.is_verifiable());
            let err = verify_bytes(b"x", &d, "blob").unwrap_err();
            assert!(matches!(err, Error::UnsupportedDigest { .. }), "{err}");
            let err = VerifyingReader::new(&b"x"[..], d.clone(), 1, "blob")
                .read_to_end(&mut Vec::new())
                .unwrap_err();
            assert!(
                err.to_string()
                    .contains("is not supported (only sha256 can be verified)"),
                "{err}"
            );
        }
        assert_eq!(Digest::parse(&sha512).unwrap().algorithm(), "sha512");
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
