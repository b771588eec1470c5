//! Launcher decoupling as pure operations over the engine's image model: stamping a run
//! image with a launcher, switching app images between a binary launcher layer and a
//! symlink to the run image's launcher, and checking API compatibility.

pub mod apis;
pub mod check;
pub mod contract;
pub mod descriptor;
pub mod launcher;
pub mod metadata;
