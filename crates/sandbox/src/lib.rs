//! The host side of running images in tests and the demo: a root filesystem of Debian's
//! static busybox and bash, and `umoci unpack` + `runc run` of an OCI layout. Errors are
//! returned, not panicked on: the testkit wraps these with panics, the demo reports them.

mod bundle;
mod rootfs;

pub use bundle::{containers_unavailable, is_root, run_bundle, run_tool, umoci_unpack, RunOptions};
pub use rootfs::{busybox_rootfs, BUSYBOX_APPLETS};

/// A failure of the host side of the fixtures: files copied from the host, or the
/// container tools (umoci, runc).
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{what}: {cause}")]
    Io { what: String, cause: std::io::Error },
    #[error("`{command}` failed ({status}): {stderr}")]
    Tool {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("runtime config {path}: {reason}")]
    BadRuntimeConfig { path: String, reason: String },
}

impl HostError {
    /// For `map_err`: an I/O error while doing `what`.
    pub fn io(what: String) -> impl FnOnce(std::io::Error) -> HostError {
        move |cause| HostError::Io { what, cause }
    }
}
