//! Layers: deterministic building (`build`) and safe reading (`read`).

pub mod build;
pub mod read;
mod tar;

pub use build::{Content, Entry, LayerBuilder, NORMALIZED_MTIME, NORMALIZED_TIME};
