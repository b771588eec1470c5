//! A layer of an image and where its blob lives; reading it always verifies the compressed
//! digest and the diffID (errors at the end of the stream, never a clean EOF on bad data).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use flate2::read::MultiGzDecoder;

use super::zstd::ZstdFrames;
use crate::digest::{check_digest, Digest, Hasher, VerifyingReader};
use crate::error::{Error, Result};
use crate::transport::{BlobReader, Transport};
use crate::v1::{Compression, Descriptor};

/// Where a layer's compressed blob can be read from.
#[derive(Clone)]
pub enum BlobSource {
    /// Already stored in a repository.
    Stored(Arc<dyn Transport>),
    /// Built here, held in memory.
    Memory(Arc<Vec<u8>>),
    /// Built here, spilled to a temporary file (deleted when the last holder drops).
    File(Arc<tempfile::TempPath>),
}

impl std::fmt::Debug for BlobSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobSource::Stored(t) => write!(f, "Stored({})", t.location()),
            BlobSource::Memory(b) => write!(f, "Memory({} bytes)", b.len()),
            BlobSource::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Layer {
    /// Compressed blob descriptor as it appears in the manifest.
    pub descriptor: Descriptor,
    /// Digest of the uncompressed tar (`rootfs.diff_ids` entry).
    pub diff_id: Digest,
    pub source: BlobSource,
}

impl Layer {
    /// The compressed blob, verified against the descriptor.
    pub fn open(&self) -> Result<BlobReader<'_>> {
        let d = &self.descriptor;
        let what = || format!("layer {}", d.digest);
        match &self.source {
            BlobSource::Stored(t) => t.open_blob_verified(&d.digest, d.size),
            BlobSource::Memory(bytes) => Ok(Box::new(VerifyingReader::new(
                &bytes[..],
                d.digest.clone(),
                d.size,
                what(),
            ))),
            BlobSource::File(path) => {
                let path: &Path = path;
                let f = File::open(path)
                    .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
                Ok(Box::new(VerifyingReader::new(
                    BufReader::new(f),
                    d.digest.clone(),
                    d.size,
                    what(),
                )))
            }
        }
    }

    /// The uncompressed tar stream. At its end the whole blob has been read, so both the
    /// blob digest and the diffID have been checked.
    pub fn open_tar(&self) -> Result<BlobReader<'_>> {
        let mt = &self.descriptor.media_type;
        let unsupported = || Error::UnsupportedMediaType {
            what: format!("layer {}", self.descriptor.digest),
            media_type: mt.clone(),
        };
        let decoded = match Compression::of_media_type(mt).ok_or_else(unsupported)? {
            Compression::None => Decoded::Plain(self.open()?),
            Compression::Gzip => Decoded::Gzip(MultiGzDecoder::new(self.open()?)),
            Compression::Zstd => Decoded::Zstd(Box::new(ZstdFrames::new(self.open()?))),
        };
        Ok(Box::new(TarStream {
            decoded,
            hasher: Hasher::new(),
            expected: self.diff_id.clone(),
        }))
    }
}

enum Decoded<'a> {
    Plain(BlobReader<'a>),
    Gzip(MultiGzDecoder<BlobReader<'a>>),
    Zstd(Box<ZstdFrames<BlobReader<'a>>>),
}

struct TarStream<'a> {
    decoded: Decoded<'a>,
    hasher: Hasher,
    expected: Digest,
}

impl Read for TarStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.decoded {
            Decoded::Plain(r) => r.read(buf)?,
            Decoded::Gzip(r) => r.read(buf)?,
            Decoded::Zstd(r) => r.read(buf)?,
        };
        if n == 0 && !buf.is_empty() {
            // The decoder may stop before the blob's EOF: drain it so the blob digest is checked.
            match &mut self.decoded {
                Decoded::Plain(_) => {}
                Decoded::Gzip(r) => _ = io::copy(r.get_mut(), &mut io::sink())?,
                Decoded::Zstd(r) => _ = io::copy(r.get_mut(), &mut io::sink())?,
            }
            let actual = self.hasher.clone().finish();
            check_digest(&self.expected, &actual, "uncompressed layer (diffID)")?;
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Reads `tar` to its end so the verification in [`Layer::open_tar`] runs; tar readers stop
/// at the end-of-archive blocks.
pub fn drain(mut tar: impl Read, what: &str) -> Result<()> {
    io::copy(&mut tar, &mut io::sink()).map_err(|e| Error::io(what.to_string(), e))?;
    Ok(())
}
