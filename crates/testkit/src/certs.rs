//! Test certificates made with the `openssl` CLI: the token server's signing certificate
//! and the CA + server certificate of a TLS registry.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A P-256 key (PKCS#8 PEM) and an X.509 certificate for it, valid two days.
pub(crate) struct KeyPair {
    pub key: PathBuf,
    pub cert: PathBuf,
}

impl KeyPair {
    /// Where [`KeyPair::generate`] puts the files named `name` in `dir`.
    pub fn at(dir: &Path, name: &str) -> KeyPair {
        KeyPair {
            key: dir.join(format!("{name}-key.pem")),
            cert: dir.join(format!("{name}-cert.pem")),
        }
    }

    /// Runs `openssl req -x509` to write `{name}-key.pem` and `{name}-cert.pem` into `dir`.
    /// The certificate is self-signed unless `issuer` is given; `extensions` are added with
    /// `-addext`. Panics with openssl's message if it fails.
    pub fn generate(
        dir: &Path,
        name: &str,
        subject: &str,
        issuer: Option<&KeyPair>,
        extensions: &[&str],
    ) -> KeyPair {
        let pair = KeyPair::at(dir, name);
        let mut cmd = Command::new("openssl");
        cmd.args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .arg("ec_paramgen_curve:prime256v1")
            .args(["-nodes", "-days", "2", "-subj", subject])
            .arg("-keyout")
            .arg(&pair.key)
            .arg("-out")
            .arg(&pair.cert);
        if let Some(ca) = issuer {
            cmd.arg("-CA").arg(&ca.cert).arg("-CAkey").arg(&ca.key);
        }
        for extension in extensions {
            cmd.args(["-addext", extension]);
        }
        let out = cmd.output().unwrap_or_else(|e| {
            panic!("testkit: cannot run openssl (Debian package openssl): {e}")
        });
        assert!(
            out.status.success(),
            "testkit: openssl could not create the {name} certificate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pair
    }
}

/// A CA and a server certificate it signed for `127.0.0.1` / `localhost`, in `dir`.
/// Returns `(ca, server)`.
pub(crate) fn loopback_server(dir: &Path) -> (KeyPair, KeyPair) {
    let ca = KeyPair::generate(
        dir,
        "tls-ca",
        "/CN=relaunch-testkit-ca",
        None,
        &[
            "basicConstraints=critical,CA:TRUE",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    let server = KeyPair::generate(
        dir,
        "tls-server",
        "/CN=127.0.0.1",
        Some(&ca),
        &[
            // An end-entity certificate must not claim to be a CA (webpki refuses it).
            "basicConstraints=critical,CA:FALSE",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "extendedKeyUsage=serverAuth",
        ],
    );
    (ca, server)
}
