//! Storage of one repository: the interface every transport (OCI layout, registry) implements.
//! The engine never trusts a transport: it verifies what it reads (see [`Transport::open_blob_verified`]).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::digest::{verify_bytes, Digest, VerifyingReader};
use crate::error::{Error, Result};
use crate::remote::{ClientConfig, Credential, RegistryClient};
use crate::v1::{sniff_manifest_media_type, Descriptor};

/// Selects a manifest in a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestRef {
    Tag(String),
    Digest(Digest),
}

impl fmt::Display for ManifestRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestRef::Tag(t) => write!(f, "tag {t:?}"),
            ManifestRef::Digest(d) => write!(f, "manifest {d}"),
        }
    }
}

/// A manifest (image or index) exactly as stored, with its media type.
#[derive(Debug, Clone, PartialEq)]
pub struct RawManifest {
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl RawManifest {
    /// Media type from the document itself when present, else `fallback`.
    pub fn new(bytes: Vec<u8>, fallback: &str) -> RawManifest {
        let media_type = sniff_manifest_media_type(&bytes).unwrap_or_else(|| fallback.to_string());
        RawManifest { media_type, bytes }
    }
    pub fn digest(&self) -> Digest {
        Digest::of(&self.bytes)
    }
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.media_type.clone(),
            self.digest(),
            self.bytes.len() as u64,
        )
    }
}

/// Where a repository lives, so a target can tell whether it can mount a blob from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `registry` is the host[:port] as used on the wire (docker.io → registry-1.docker.io is
    /// the transport's business, but both sides must normalise the same way).
    Registry {
        registry: String,
        repository: String,
    },
    Layout {
        dir: PathBuf,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Registry {
                registry,
                repository,
            } => write!(f, "{registry}/{repository}"),
            Location::Layout { dir } => write!(f, "oci:{}", dir.display()),
        }
    }
}

pub type BlobReader<'a> = Box<dyn Read + Send + 'a>;

/// What [`Transport::mount_blob`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mount {
    /// Linked (registry) or copied (layout) from the other repository.
    Mounted,
    /// Already here.
    Present,
    /// Not here and not mountable from there: the caller streams it (a registry keeps the
    /// upload session it opened when declining, and the next `put_blob` continues it).
    Absent,
    /// This transport cannot mount from `from`; whether the blob is here is unknown.
    Unsupported,
}

/// One repository's storage. Implementations: [`crate::layout::Layout`] and the registry
/// client in `crate::remote`. All methods are blocking; implementations must be thread-safe.
pub trait Transport: Send + Sync {
    fn location(&self) -> Location;

    /// The manifest stored under `reference`, with its media type. `Error::NotFound` when absent.
    /// Implementations need not verify; callers use [`Transport::get_manifest_verified`].
    fn get_manifest(&self, reference: &ManifestRef) -> Result<RawManifest>;

    /// Stores a manifest. `ManifestRef::Digest(d)` must equal `manifest.digest()`.
    /// Storing by tag is the publishing step: callers do it last, after every blob and
    /// child manifest it references exists.
    fn put_manifest(&self, reference: &ManifestRef, manifest: &RawManifest) -> Result<()>;

    /// Size of the blob if present (HEAD), `None` if absent.
    fn blob_size(&self, digest: &Digest) -> Result<Option<u64>>;

    /// Whether the blob is here and may be reused as is. By default its presence with the
    /// right size (a registry verified it on upload); storage that can be corrupted behind
    /// the engine's back (a layout) also checks the content.
    fn has_blob(&self, digest: &Digest, size: u64) -> Result<bool> {
        Ok(self.blob_size(digest)? == Some(size))
    }

    /// Raw blob stream, unverified. Callers use [`Transport::open_blob_verified`].
    fn open_blob(&self, digest: &Digest) -> Result<BlobReader<'_>>;

    /// Stores a blob read from `data`, which must produce exactly `size` bytes hashing to
    /// `digest`. Implementations must not make a blob visible unless it verified: callers
    /// may pass a source's unverified stream and rely on that check.
    fn put_blob(&self, digest: &Digest, size: u64, data: &mut dyn Read) -> Result<()>;

    /// [`Transport::put_blob`] from content `open` produces, from its start, each time it
    /// is called: a transport whose upload breaks part-way may open it again and restart.
    fn put_blob_from<'a>(
        &self,
        digest: &Digest,
        size: u64,
        open: &dyn Fn() -> Result<BlobReader<'a>>,
    ) -> Result<()> {
        self.put_blob(digest, size, &mut open()?)
    }

    /// Makes `digest` available here without the caller streaming it, if this transport can
    /// do so from `from` (registry: cross-repository mount on the same registry; layout:
    /// local copy between layouts). Tried before any presence check, so it also tells
    /// whether the blob was here already; see [`Mount`].
    fn mount_blob(&self, digest: &Digest, size: u64, from: &Location) -> Result<Mount>;

    /// Reads a manifest and checks it: by digest → bytes must hash to it.
    fn get_manifest_verified(&self, reference: &ManifestRef) -> Result<RawManifest> {
        let raw = self.get_manifest(reference)?;
        if let ManifestRef::Digest(d) = reference {
            verify_bytes(
                &raw.bytes,
                d,
                &format!("manifest {d} from {}", self.location()),
            )?;
        }
        Ok(raw)
    }

    /// Blob stream that fails (at the latest at EOF) unless it matches `digest` and `size`.
    fn open_blob_verified(&self, digest: &Digest, size: u64) -> Result<BlobReader<'_>> {
        let what = format!("blob {digest} from {}", self.location());
        digest.check_verifiable(&what)?;
        let inner = self.open_blob(digest)?;
        Ok(Box::new(VerifyingReader::new(
            inner,
            digest.clone(),
            size,
            what,
        )))
    }

    /// Whole small blob (config), verified.
    fn read_blob_verified(&self, digest: &Digest, size: u64) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 24));
        self.open_blob_verified(digest, size)?
            .read_to_end(&mut out)
            .map_err(|e| Error::io(format!("reading blob {digest} from {}", self.location()), e))?;
        Ok(out)
    }
}

/// Settings shared by every transport opened for one command. Clones share one registry
/// client (connections, tokens, counters): every registry repository opened with them, for
/// reading or writing, goes through it.
#[derive(Debug, Clone, Default)]
pub struct TransportOptions {
    /// Registries (`host[:port]`, or `host` for every port) reached with unverified HTTPS,
    /// falling back to plain HTTP (the lifecycle's `--insecure-registry`).
    pub insecure_registries: Vec<String>,
    /// PEM bundles of CA certificates trusted for HTTPS registries in addition to the
    /// built-in Mozilla roots (private registries). The CLI fills it from `--registry-ca`
    /// and `SSL_CERT_FILE`.
    pub extra_root_certs: Vec<PathBuf>,
    /// Credentials by registry (`host[:port]`), consulted before the environment's sources
    /// (`CNB_REGISTRY_AUTH`, Docker config, containers auth file): for programs embedding
    /// this crate.
    pub credentials: BTreeMap<String, Credential>,
    /// When every registry operation must have ended (`--timeout`).
    pub deadline: Option<Instant>,
    /// The registry client these options opened first, reused by every later repository.
    pub shared_client: SharedClient,
}

/// The one registry client of a set of [`TransportOptions`] (created on first use).
#[derive(Debug, Clone, Default)]
pub struct SharedClient(Arc<OnceLock<Arc<RegistryClient>>>);

impl SharedClient {
    /// The client, created from `options` the first time.
    pub fn get(&self, options: &TransportOptions) -> Result<Arc<RegistryClient>> {
        if let Some(client) = self.0.get() {
            return Ok(client.clone());
        }
        let client = Arc::new(RegistryClient::new(ClientConfig::from_options(options)?));
        Ok(self.0.get_or_init(|| client).clone())
    }
}

impl TransportOptions {
    /// Adds the comma-separated `CNB_INSECURE_REGISTRIES` value (the lifecycle's variable).
    pub fn with_env_list(mut self, list: &str) -> Self {
        self.insecure_registries.extend(
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
        self
    }
}
