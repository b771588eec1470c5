//! Test harness for relaunch: real CNCF distribution registries in three auth modes (plain
//! HTTP, or HTTPS with a private CA), a token server, a fault-injecting HTTP proxy and thin
//! wrappers around skopeo, umoci and runc.
//!
//! Everything here is meant for tests: constructors panic with a clear message when the
//! environment cannot provide what the test needs, and every resource cleans up on `Drop`.
//! Ports, temp dirs and container ids are unique, so tests can run in parallel processes.

mod certs;
pub mod fixtures;
mod foreign;
mod hostile;
mod http;
mod proxy;
mod registry;
mod token;
mod tools;

pub use fixtures::busybox_rootfs;
pub use foreign::{ForeignHost, RecordedRequest};
pub use hostile::{sleeping_credential_helper, SilentServer, UnreachablePort};
pub use proxy::{FaultPlan, FaultProxy, ProxyOptions};
pub use registry::Registry;
pub use tools::{require_root, runc_run, skopeo_copy, skopeo_inspect, umoci_unpack};

/// How a [`Registry`] authenticates clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// No authentication: every request is allowed.
    Anonymous,
    /// htpasswd basic auth with the fixed credentials from [`Registry::credentials`].
    Basic,
    /// Bearer-token auth (docker token spec) backed by a token server run by the testkit.
    /// It issues tokens for the fixed credentials from [`Registry::credentials`] (all
    /// requested actions), for [`Registry::read_only_credentials`] (`pull` only) and for
    /// anonymous callers (no access); wrong passwords get 401.
    Token,
}

/// One request received by the token server of an [`Auth::Token`] registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `service` parameter, if sent.
    pub service: Option<String>,
    /// Every requested scope in order, e.g. `repository:app:pull,push`.
    pub scopes: Vec<String>,
    /// User name from the credentials, `None` for anonymous requests.
    pub user: Option<String>,
    /// Whether a token was issued (false: bad credentials, answered 401).
    pub granted: bool,
}
