//! Launcher decoupling as pure operations over the engine's image model: stamping a run
//! image with a launcher, switching app images between a binary launcher layer and a
//! symlink to the run image's launcher, and checking API compatibility.

pub mod apis;
pub mod app;
pub mod bundle;
pub mod check;
pub mod contract;
pub mod decouple;
pub mod descriptor;
pub mod effective;
pub mod elf;
pub mod error;
pub mod export;
pub mod fixtures;
pub mod launcher;
pub mod lifecycle_image;
pub mod metadata;
pub mod rebase;
pub mod run_image;
pub mod stamp;
#[cfg(test)]
mod testing;

pub use error::{Error, Result};
