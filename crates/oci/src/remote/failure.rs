//! Registry failures as engine errors: HTTP statuses, registry error bodies, and transport
//! failures explained (TLS refusals get a hint about private CAs).

use super::client::Reply;
use super::tls::is_tls_failure;
use crate::error::Error;

/// Whether the server's TLS certificate was refused (rather than TLS failing to start).
pub(crate) fn certificate_refused(error: &ureq::Error) -> bool {
    let refused = |e: &rustls::Error| matches!(e, rustls::Error::InvalidCertificate(_));
    match error {
        ureq::Error::Rustls(e) => refused(e),
        ureq::Error::Io(e) => e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(refused),
        _ => false,
    }
}

/// ureq's message, explained when TLS verification refused the server.
pub(crate) fn failure_message(error: &ureq::Error) -> String {
    if !is_tls_failure(error) {
        return error.to_string();
    }
    let detail = match error {
        ureq::Error::Io(e) => e.to_string(),
        other => other.to_string(),
    };
    format!(
        "TLS handshake failed: {detail} (for a registry whose certificate comes from a \
         private CA, trust that CA: --registry-ca FILE or SSL_CERT_FILE)"
    )
}

pub(crate) fn registry_error(context: String, message: String, status: Option<u16>) -> Error {
    Error::Registry {
        context,
        message,
        status,
    }
}

/// Maps an unexpected reply to the engine's error: 404 → not found, 401/403 → unauthorized,
/// anything else → a registry error carrying the registry's own error message.
pub(crate) fn status_error(reply: &Reply, registry: &str, what: &str) -> Error {
    let detail = error_detail(&reply.body);
    match reply.status {
        404 => Error::NotFound {
            what: what.to_string(),
            location: registry.to_string(),
        },
        401 | 403 => Error::Unauthorized {
            registry: registry.to_string(),
            message: format!("access to {what} denied (HTTP {}){detail}", reply.status),
        },
        status => registry_error(
            what.to_string(),
            format!("unexpected HTTP {status}{detail}"),
            Some(status),
        ),
    }
}

/// `: CODE: message; ...` from a registry error body (`{"errors":[{code,message}]}`).
pub(crate) fn error_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: Option<String>,
        message: Option<String>,
    }
    let Ok(parsed) = serde_json::from_slice::<Errors>(body) else {
        return String::new();
    };
    let parts: Vec<String> = parsed
        .errors
        .into_iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.code.unwrap_or_default(),
                e.message.unwrap_or_default()
            )
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_error_bodies_are_summarised() {
        let body = br#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#;
        assert_eq!(
            error_detail(body),
            ": MANIFEST_BLOB_UNKNOWN: blob unknown to registry"
        );
        assert_eq!(error_detail(b"<html>"), "");
    }
}
