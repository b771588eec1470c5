//! Layers: deterministic building (`build`) and safe reading (`read`).

pub mod blob;
pub mod build;
pub mod read;
mod tar;
mod zstd;

pub use blob::{BlobSource, Layer};
pub use build::{Content, Entry, LayerBuilder, NORMALIZED_MTIME, NORMALIZED_TIME};
