//! URL handling for registry requests: `Location` resolution, query encoding, redaction.

/// Makes a `Location` header (absolute, host-relative or path-relative) absolute.
pub(crate) fn resolve_location(request_url: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let scheme_end = request_url.find("://").map_or(0, |i| i + 3);
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{}{rest}", &request_url[..scheme_end]);
    }
    if location.starts_with('/') {
        let host_end = request_url[scheme_end..]
            .find('/')
            .map_or(request_url.len(), |i| scheme_end + i);
        return format!("{}{location}", &request_url[..host_end]);
    }
    let path = request_url.split(['?', '#']).next().unwrap_or(request_url);
    let dir_end = path.rfind('/').map_or(path.len(), |i| i + 1);
    format!("{}{location}", &path[..dir_end])
}

/// Whether two absolute URLs name the same scheme, host and port (an absent port is the
/// scheme's default; host names compare case-insensitively).
pub(crate) fn same_authority(a: &str, b: &str) -> bool {
    match (authority(a), authority(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// `(scheme, host, port)` of an absolute `http(s)` URL, lowercased, default port filled in.
fn authority(url: &str) -> Option<(String, String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    // Userinfo never belongs to a registry URL; treat it as part of a foreign authority.
    if authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse().ok()?),
        _ => (authority, default_port),
    };
    Some((scheme, host.to_ascii_lowercase(), port))
}

/// The URL without its query: upload locations carry opaque session state in the query.
pub(crate) fn redact(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// Appends percent-encoded query parameters to `url` (which may already have a query).
pub(crate) fn with_query(url: &str, params: &[(&str, String)]) -> String {
    let mut out = url.to_string();
    for (key, value) in params {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(key);
        out.push('=');
        out.push_str(&percent_encode(value));
    }
    out
}

pub(crate) fn encode_form(params: &[(&str, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_request() {
        let req = "http://reg:5000/v2/a/b/blobs/uploads/?mount=x";
        assert_eq!(
            resolve_location(req, "https://other/up/1?_state=s"),
            "https://other/up/1?_state=s"
        );
        assert_eq!(
            resolve_location(req, "/v2/a/b/blobs/uploads/u1?_state=s"),
            "http://reg:5000/v2/a/b/blobs/uploads/u1?_state=s"
        );
        assert_eq!(resolve_location(req, "//cdn/x"), "http://cdn/x");
        assert_eq!(
            resolve_location(req, "u2"),
            "http://reg:5000/v2/a/b/blobs/uploads/u2"
        );
    }

    #[test]
    fn authorities_compare_scheme_host_and_port() {
        let own = "https://Reg.example";
        assert!(same_authority(
            own,
            "https://reg.example:443/v2/a/blobs/uploads/u"
        ));
        assert!(!same_authority(own, "https://reg.example:5000/v2/"));
        assert!(!same_authority(own, "http://reg.example/v2/"));
        assert!(!same_authority(own, "https://storage.example/upload?sig=x"));
        assert!(!same_authority(own, "https://reg.example@evil.example/"));
        assert!(same_authority("http://[::1]:5000", "http://[::1]:5000/v2/"));
        assert!(!same_authority("http://[::1]:5000", "http://[::1]/v2/"));
        assert!(!same_authority(own, "not a url"));
    }

    #[test]
    fn queries_are_encoded_and_appended() {
        assert_eq!(
            with_query(
                "http://r/v2/a/blobs/uploads/u?_state=x",
                &[("digest", "sha256:ab".into())]
            ),
            "http://r/v2/a/blobs/uploads/u?_state=x&digest=sha256%3Aab"
        );
        assert_eq!(
            with_query(
                "http://t/token",
                &[("scope", "repository:a/b:pull,push".into())]
            ),
            "http://t/token?scope=repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(redact("http://r/u?_state=secret"), "http://r/u");
    }
}
