//! relaunch-oci: one image model over two transports (OCI image layout, registry), with
//! verified reads, reproducible edits, a deterministic layer builder and safe layer reading.
//! See API.md for the overview.

pub mod digest;
pub mod error;
pub mod image;
pub mod image_or_index;
pub mod layer;
pub mod layout;
pub mod local;
pub mod mutate;
pub mod read;
pub mod reference;
pub mod remote;
pub mod session;
pub mod transport;
pub mod v1;
pub mod write;

use std::sync::Arc;

pub use digest::Digest;
pub use error::{Error, Result};
pub use image::{BlobSource, Image, Layer};
pub use image_or_index::ImageOrIndex;
pub use layout::Layout;
pub use read::{Artifact, Child, IndexManifest, OpaqueManifest, Repo};
pub use reference::{ImageRef, RegistryRef};
pub use session::Session;
pub use transport::{Location, ManifestRef, Mount, RawManifest, Transport, TransportOptions};
pub use v1::{media_type, Descriptor, Platform};
pub use write::{write_image, write_index, BlobOutcome, NoProgress, Progress, WriteReport};

/// Opens a registry repository (see `remote::RegistryTransport`).
pub fn open_registry(
    reference: &RegistryRef,
    opts: &TransportOptions,
) -> Result<Arc<dyn Transport>> {
    Ok(Arc::new(remote::RegistryTransport::open(reference, opts)?))
}
