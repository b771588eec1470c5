//! The Distribution-API-v2 registry transport: one [`RegistryTransport`] per repository,
//! sharing a [`RegistryClient`] (connections, tokens, counters) per command.
//!
//! What it guarantees: manifests are checked against the digest asked for and against
//! `Docker-Content-Digest`; blobs are verified before they are uploaded and streamed
//! downloads are verified by the engine's reader; a failed upload is restarted from a fresh
//! session and a failure is reported, never papered over — the registry only ever sees a
//! manifest after the engine has put every blob it references.

mod auth;
mod blobs;
mod client;
mod config;
mod counters;
mod credentials;
mod failure;
mod manifests;
mod retry;
mod scheme;
mod tls;
mod upload;
mod url;

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::sync::{Arc, Mutex};

pub use client::{wire_registry, RegistryClient, DOCKER_HUB_REGISTRY};
pub use config::ClientConfig;
pub use counters::Counters;
pub use credentials::{Credential, CredentialSource};
pub use retry::RetryPolicy;
pub use tls::ExtraRoots;

use crate::digest::Digest;
use crate::error::Result;
use crate::reference::RegistryRef;
use crate::transport::{
    BlobReader, Location, ManifestRef, Mount, RawManifest, Transport, TransportOptions,
};

/// Blobs up to this size given as a one-shot reader are kept in memory while uploaded.
const SMALL_BLOB: u64 = 1 << 20;

/// One repository of a registry.
#[derive(Debug)]
pub struct RegistryTransport {
    client: Arc<RegistryClient>,
    /// `host[:port]` as spoken to (Docker Hub names mapped to its API host).
    registry: String,
    repository: String,
    pull: BTreeSet<String>,
    push: BTreeSet<String>,
    /// Blobs known to be in this repository: seen in a manifest it served, or confirmed
    /// by HEAD, upload or mount. Answers `blob_size` without a request; the registry
    /// re-checks every reference when a manifest is put, so a stale entry cannot
    /// publish a manifest with a missing blob.
    known_blobs: Mutex<HashMap<Digest, u64>>,
    /// Upload sessions opened by declined mounts (202), continued by the next `put_blob`.
    pending_uploads: Mutex<HashMap<Digest, String>>,
}

impl RegistryTransport {
    pub fn new(client: Arc<RegistryClient>, registry: &str, repository: &str) -> Self {
        let scope = |actions| BTreeSet::from([auth::repository_scope(repository, actions)]);
        RegistryTransport {
            registry: wire_registry(registry).to_string(),
            repository: repository.to_string(),
            pull: scope("pull"),
            push: scope("pull,push"),
            client,
            known_blobs: Mutex::new(HashMap::new()),
            pending_uploads: Mutex::new(HashMap::new()),
        }
    }

    /// The repository `reference` names, through the client `options` share (configured
    /// from them on first use).
    pub fn open(reference: &RegistryRef, options: &TransportOptions) -> Result<Self> {
        let client = options.shared_client.get(options)?;
        Ok(RegistryTransport::new(
            client,
            &reference.registry,
            &reference.repository,
        ))
    }

    pub fn client(&self) -> &Arc<RegistryClient> {
        &self.client
    }

    fn api_url(&self, tail: &str) -> String {
        format!(
            "{}/v2/{}/{tail}",
            self.client.base_url(&self.registry),
            self.repository
        )
    }

    fn describe(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    fn remember_blob(&self, digest: &Digest, size: u64) {
        lock(&self.known_blobs).insert(digest.clone(), size);
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Transport for RegistryTransport {
    fn location(&self) -> Location {
        Location::Registry {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
        }
    }

    fn get_manifest(&self, reference: &ManifestRef) -> Result<RawManifest> {
        self.fetch_manifest(reference)
    }

    fn put_manifest(&self, reference: &ManifestRef, manifest: &RawManifest) -> Result<()> {
        self.store_manifest(reference, manifest)
    }

    fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        if let Some(size) = lock(&self.known_blobs).get(digest) {
            return Ok(Some(*size));
        }
        self.head_blob(digest)
    }

    fn open_blob(&self, digest: &Digest) -> Result<BlobReader<'_>> {
        Ok(Box::new(self.download_blob(digest)?))
    }

    /// A small blob is read into memory first, so a broken upload can restart; a larger
    /// one is streamed once (callers that can reopen it use `put_blob_from`).
    fn put_blob(&self, digest: &Digest, size: u64, data: &mut dyn Read) -> Result<()> {
        if size <= SMALL_BLOB {
            let mut bytes = Vec::with_capacity(size as usize);
            data.take(size + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| crate::Error::io(format!("reading blob {digest}"), e))?;
            return self.put_blob_from(digest, size, &|| Ok(Box::new(&bytes[..])));
        }
        let mut once = Some(data);
        self.upload_blob(digest, size, &mut || {
            Ok(once.take().map(|d| Box::new(d) as Box<dyn Read + '_>))
        })
    }

    fn put_blob_from<'a>(
        &self,
        digest: &Digest,
        size: u64,
        open: &dyn Fn() -> Result<BlobReader<'a>>,
    ) -> Result<()> {
        self.upload_blob(digest, size, &mut || {
            open().map(|r| Some(r as Box<dyn Read>))
        })
    }

    fn mount_blob(&self, digest: &Digest, size: u64, from: &Location) -> Result<Mount> {
        match from {
            Location::Registry {
                registry,
                repository,
            } if wire_registry(registry) == self.registry && *repository != self.repository => {
                self.mount_from(digest, size, repository)
            }
            _ => Ok(Mount::Unsupported),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn docker_hub_names_map_to_its_api_host() {
        let reference = match crate::ImageRef::parse("ubuntu").unwrap() {
            crate::ImageRef::Registry(r) => r,
            other => panic!("{other:?}"),
        };
        let transport = RegistryTransport::open(&reference, &TransportOptions::default()).unwrap();
        assert_eq!(
            transport.location(),
            Location::Registry {
                registry: DOCKER_HUB_REGISTRY.into(),
                repository: "library/ubuntu".into(),
            }
        );
        assert_eq!(
            transport.api_url("manifests/latest"),
            "https://registry-1.docker.io/v2/library/ubuntu/manifests/latest"
        );
    }

    /// One client per run: every repository opened with the same options (clones too),
    /// on one registry or several, shares its connections, tokens and counters.
    #[test]
    fn repositories_opened_with_the_same_options_share_one_client() {
        let options = TransportOptions::default();
        let open = |name: &str, options: &TransportOptions| {
            let reference = match crate::ImageRef::parse(name).unwrap() {
                crate::ImageRef::Registry(r) => r,
                other => panic!("{other:?}"),
            };
            RegistryTransport::open(&reference, options).unwrap()
        };
        let source = open("reg.example/a/src:v1", &options);
        let target = open("reg.example/a/dst:v1", &options.clone());
        let other = open("other.example/b:v1", &options);
        assert!(Arc::ptr_eq(source.client(), target.client()));
        assert!(Arc::ptr_eq(source.client(), other.client()));
        let separate = open("reg.example/a/src:v1", &TransportOptions::default());
        assert!(!Arc::ptr_eq(source.client(), separate.client()));
    }

    #[test]
    fn mounts_are_only_tried_between_repositories_of_one_registry() {
        let client = Arc::new(RegistryClient::new(ClientConfig::default()));
        let target = RegistryTransport::new(client.clone(), "127.0.0.1:1", "dst");
        let digest = Digest::of(b"x");
        let elsewhere = [
            Location::Layout {
                dir: PathBuf::from("/tmp/layout"),
            },
            Location::Registry {
                registry: "other.example".into(),
                repository: "src".into(),
            },
            target.location(),
        ];
        for from in elsewhere {
            assert_eq!(
                target.mount_blob(&digest, 1, &from).unwrap(),
                Mount::Unsupported,
                "{from}"
            );
        }
        assert_eq!(client.counters().total_requests(), 0);
    }
}
