//! Which certificate authorities HTTPS registry connections trust: the Mozilla roots built
//! into the binary, plus CA bundles the user names for private registries.

use std::path::{Path, PathBuf};

use ureq::tls::{parse_pem, Certificate, PemItem, RootCerts};

use crate::error::{Error, Result};

/// CA certificates trusted in addition to the built-in Mozilla roots.
#[derive(Debug, Clone, Default)]
pub struct ExtraRoots {
    certs: Vec<Certificate<'static>>,
}

impl ExtraRoots {
    /// Reads every certificate from each PEM bundle in `files`. A file that cannot be read,
    /// is malformed PEM or holds no certificate is an error naming it.
    pub fn load(files: &[PathBuf]) -> Result<ExtraRoots> {
        let mut certs = Vec::new();
        for file in files {
            certs.extend(read_bundle(file)?);
        }
        Ok(ExtraRoots { certs })
    }

    /// The trust store for the agent. ureq's built-in `WebPki` store cannot be extended, so
    /// with extra CAs the same Mozilla set is taken in certificate form and the CAs appended.
    pub(crate) fn root_certs(&self) -> RootCerts {
        if self.certs.is_empty() {
            return RootCerts::WebPki;
        }
        webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|der| Certificate::from_der(der))
            .chain(self.certs.iter().cloned())
            .into()
    }
}

/// Whether `error` is a TLS failure (e.g. an untrusted certificate): permanent, so not
/// worth repeating, and worth a hint about trusting a private CA.
pub(crate) fn is_tls_failure(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Rustls(_) | ureq::Error::Tls(_) => true,
        // rustls reports handshake failures through the stream as io errors.
        ureq::Error::Io(e) => e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()),
        _ => false,
    }
}

/// Largest CA bundle read (a system bundle of every Mozilla root is about 200 KiB).
const MAX_CA_BUNDLE_SIZE: u64 = 8 << 20;

fn read_bundle(file: &Path) -> Result<Vec<Certificate<'static>>> {
    let what = || format!("CA certificate file {}", file.display());
    let pem = crate::local::read_bounded(file, MAX_CA_BUNDLE_SIZE, &what())?;
    let mut certs = Vec::new();
    for item in parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => certs.push(cert),
            // Bundles sometimes carry a key next to the certificate; it is not a root.
            Ok(_) => {}
            Err(e) => return Err(Error::invalid(what(), format!("malformed PEM: {e}"))),
        }
    }
    if certs.is_empty() {
        return Err(Error::invalid(
            what(),
            "no PEM certificate (\"-----BEGIN CERTIFICATE-----\") in it",
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(contents: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, contents).unwrap();
        (dir, path)
    }

    #[test]
    fn no_files_means_the_builtin_roots() {
        let roots = ExtraRoots::load(&[]).unwrap();
        assert!(matches!(roots.root_certs(), RootCerts::WebPki));
    }

    #[test]
    fn devices_and_huge_files_are_refused_unread() {
        let err = ExtraRoots::load(&[PathBuf::from("/dev/zero")]).unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        let (_dir, big) = temp_file(b"");
        std::fs::File::options()
            .write(true)
            .open(&big)
            .unwrap()
            .set_len(2 << 30)
            .unwrap();
        let err = ExtraRoots::load(&[big]).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    }

    #[test]
    fn missing_file_is_named() {
        let err = ExtraRoots::load(&[PathBuf::from("/nonexistent/ca.pem")]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/nonexistent/ca.pem"), "{text}");
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
    }

    #[test]
    fn file_without_pem_certificate_is_named() {
        let (_dir, path) = temp_file(b"this is not a certificate\n");
        let err = ExtraRoots::load(std::slice::from_ref(&path)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("no PEM certificate"), "{text}");
    }

    #[test]
    fn malformed_pem_is_named() {
        let (_dir, path) =
            temp_file(b"-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n");
        let err = ExtraRoots::load(std::slice::from_ref(&path)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("malformed PEM"), "{text}");
    }
}
