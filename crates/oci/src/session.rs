//! Opening many repositories for one process: every registry repository shares one
//! [`RegistryClient`] (connection pool, token cache per registry and scope set, counters),
//! so a command that touches hundreds of images authenticates once per registry and scope
//! set instead of once per image.

use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::read::Repo;
use crate::reference::ImageRef;
use crate::remote::{ClientConfig, Counters, RegistryClient, RegistryTransport};
use crate::transport::{Transport, TransportOptions};

/// Opens repositories with one shared registry client, built on first use (a command that
/// only touches layouts never reads `extra_root_certs`).
#[derive(Debug, Default)]
pub struct Session {
    options: TransportOptions,
    client: Mutex<Option<Arc<RegistryClient>>>,
}

impl Session {
    pub fn new(options: TransportOptions) -> Session {
        Session {
            options,
            client: Mutex::new(None),
        }
    }

    pub fn options(&self) -> &TransportOptions {
        &self.options
    }

    /// The shared registry client.
    pub fn client(&self) -> Result<Arc<RegistryClient>> {
        let mut slot = crate::remote::lock(&self.client);
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let client = Arc::new(RegistryClient::new(ClientConfig::from_options(
            &self.options,
        )?));
        *slot = Some(client.clone());
        Ok(client)
    }

    /// What the shared client has sent and received so far (zero before first use).
    pub fn counters(&self) -> Counters {
        crate::remote::lock(&self.client)
            .as_ref()
            .map(|c| c.counters())
            .unwrap_or_default()
    }

    /// For reading, as [`Repo::open`].
    pub fn open(&self, reference: &ImageRef) -> Result<Repo> {
        Repo::open_with(reference, |r| self.registry(r))
    }

    /// For writing, as [`Repo::create`].
    pub fn create(&self, reference: &ImageRef) -> Result<Repo> {
        Repo::create_with(reference, |r| self.registry(r))
    }

    fn registry(&self, r: &crate::reference::RegistryRef) -> Result<Arc<dyn Transport>> {
        Ok(Arc::new(RegistryTransport::new(
            self.client()?,
            &r.registry,
            &r.repository,
        )))
    }
}
