//! Peers that never finish: a port whose connections never complete, a server that
//! accepts and never answers, and a Docker credential helper that sleeps.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::http::Server;

/// A loopback server that accepts connections, reads whatever is sent and never answers.
/// Each connection is held until the client closes it.
pub struct SilentServer {
    server: Server,
}

impl SilentServer {
    pub fn start() -> SilentServer {
        let server = Server::spawn(
            "silent",
            Arc::new(|mut conn| {
                let _ = io::copy(&mut conn, &mut io::sink());
            }),
        );
        SilentServer { server }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.server.addr().to_string()
    }
}

/// A loopback port that never completes a new connection: it listens but never accepts,
/// and its accept queue is filled, so the kernel drops further handshakes (the client's
/// `connect` waits, as for a black-holed address).
pub struct UnreachablePort {
    listener: TcpListener,
    _queued: Vec<TcpStream>,
}

impl UnreachablePort {
    pub fn start() -> UnreachablePort {
        let listener = TcpListener::bind("127.0.0.1:0").expect("testkit: bind a loopback port");
        let addr = listener
            .local_addr()
            .expect("bound listener has an address");
        let mut queued = Vec::new();
        // The accept queue holds up to the listen backlog (128 for std) plus one.
        while queued.len() < 1024 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(stream) => queued.push(stream),
                Err(_) => break,
            }
        }
        assert!(
            queued.len() < 1024,
            "testkit: the accept queue never filled"
        );
        UnreachablePort {
            listener,
            _queued: queued,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
            .to_string()
    }
}

/// Writes `docker-credential-<name>` into `dir` (created if needed): it reads the server
/// name and then sleeps `seconds` without answering (a helper stuck on a keychain prompt).
/// Returns `dir`, to be put first on `PATH`. The sleep is `exec`ed, so killing the helper
/// ends it.
pub fn sleeping_credential_helper(dir: &Path, name: &str, seconds: u32) -> PathBuf {
    std::fs::create_dir_all(dir).expect("testkit: create helper dir");
    let helper = dir.join(format!("docker-credential-{name}"));
    let script = format!("#!/bin/sh\nread server\nexec sleep {seconds}\n");
    std::fs::write(&helper, script).expect("testkit: write credential helper");
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755))
        .expect("testkit: make credential helper executable");
    dir.to_path_buf()
}
