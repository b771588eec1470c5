//! Which registries may be reached over plain HTTP, and how TLS is checked for them —
//! the lifecycle's rules (it uses go-containerregistry):
//!
//! * every registry is tried over HTTPS first;
//! * a registry named with `--insecure-registry` (or `CNB_INSECURE_REGISTRIES`) gets HTTPS
//!   *without* certificate verification, and plain HTTP when HTTPS cannot connect;
//! * without the flag, only go-containerregistry's built-in local names fall back to plain
//!   HTTP (with verified HTTPS tried first): `localhost[:port]`, `*.localhost[:port]`,
//!   `127.0.0.1[:port]`, `::1`, `[::1][:port]` and IPv4 addresses in 10.0.0.0/8,
//!   172.16.0.0/12 and 192.168.0.0/16. Anything else (e.g. `127.0.0.2`) is HTTPS only.

use std::net::Ipv4Addr;

/// How a registry is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Plain HTTP may be used when HTTPS cannot connect.
    pub plain_http_fallback: bool,
    /// HTTPS without certificate verification.
    pub skip_verify: bool,
}

/// The policy for `registry` (`host[:port]`) given the user's insecure list, whose
/// entries match as `host[:port]` or as `host` for every port.
pub(crate) fn policy(registry: &str, insecure: &[String]) -> Policy {
    let host = host_of(registry);
    let flagged = insecure.iter().any(|r| r == registry || r == host);
    Policy {
        plain_http_fallback: flagged || local_by_default(registry),
        skip_verify: flagged,
    }
}

/// `host` of `host:port` (digits after the last colon; IPv6 literals in brackets).
fn host_of(registry: &str) -> &str {
    match registry.rsplit_once(':') {
        Some((host, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.contains(':') || host.ends_with(']')) =>
        {
            host
        }
        _ => registry,
    }
}

/// go-containerregistry's `name.Registry.Scheme()` rules for registries that need no flag
/// to be reached over plain HTTP, matched on the name as written.
fn local_by_default(name: &str) -> bool {
    // `(?::\d{1,5})?$`: nothing, or a colon and one to five digits.
    let port_or_end = |rest: &str| {
        rest.is_empty()
            || rest.strip_prefix(':').is_some_and(|port| {
                (1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit())
            })
    };
    // The text before the first colon, as an IPv4 address in a private block.
    let rfc1918 = name
        .split(':')
        .next()
        .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        .is_some_and(|ip| ip.is_private());
    rfc1918
        || name == "localhost"
        || name.starts_with("localhost:")
        || name
            .rfind(".localhost")
            .is_some_and(|i| port_or_end(&name[i + ".localhost".len()..]))
        || name.strip_prefix("127.0.0.1").is_some_and(port_or_end)
        || name == "::1"
        || name.strip_prefix("[::1]").is_some_and(port_or_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_without_the_flag_exactly_for_ggcr_local_names() {
        let local = [
            "localhost",
            "localhost:5000",
            "registry.localhost",
            ".localhost",
            "a.b.localhost:80",
            "127.0.0.1",
            "127.0.0.1:5000",
            "::1",
            "[::1]",
            "[::1]:5000",
            "10.0.0.1",
            "10.255.1.2:5000",
            "172.16.0.1",
            "172.31.255.255:443",
            "192.168.1.10:5000",
        ];
        for registry in local {
            assert_eq!(
                policy(registry, &[]),
                Policy {
                    plain_http_fallback: true,
                    skip_verify: false
                },
                "{registry}"
            );
        }
        let remote = [
            "127.0.0.2",
            "127.0.0.2:5000",
            "127.1",
            "0.0.0.0:5000",
            "localhost.example.com",
            "mylocalhost:5000",
            "a.localhost:123456",
            "127.0.0.1:123456",
            "172.32.0.1",
            "172.15.0.1:5000",
            "11.0.0.1",
            "192.169.0.1",
            "[::2]:5000",
            "[::1]:123456",
            "registry.example.com",
            "registry-1.docker.io",
        ];
        for registry in remote {
            assert!(!policy(registry, &[]).plain_http_fallback, "{registry}");
        }
    }

    #[test]
    fn the_flag_allows_plain_http_and_skips_verification() {
        let flags = ["reg.example:5000".to_string(), "127.0.0.2".to_string()];
        let insecure = Policy {
            plain_http_fallback: true,
            skip_verify: true,
        };
        assert_eq!(policy("reg.example:5000", &flags), insecure);
        assert_eq!(policy("127.0.0.2:5000", &flags), insecure);
        assert_eq!(policy("127.0.0.2", &flags), insecure);
        assert!(!policy("reg.example:5001", &flags).plain_http_fallback);
        assert!(!policy("reg.example", &flags).skip_verify);
        // Flagging a local name also skips verification.
        assert!(policy("localhost:5000", &["localhost".into()]).skip_verify);
    }
}
