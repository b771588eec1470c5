//! relaunch launcher: a Cloud Native Buildpacks application launcher for Platform API
//! 0.7–0.15 and Buildpack API 0.7–0.12, compatible with the reference lifecycle
//! launcher (v0.21). See docs/launcher.md.

pub mod api;
pub mod arena;
pub mod bundle;
pub mod cli;
pub mod elf;
pub mod env;
pub mod errors;
pub mod exec;
pub mod execd;
pub mod go_text;
pub mod launch;
pub mod layers;
pub mod log;
pub mod metadata;
pub mod paths;
pub mod process;
pub mod self_description;
pub mod shell;
pub mod signals;

#[cfg(test)]
mod testutil;
