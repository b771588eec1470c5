//! When and how long to wait before repeating a failed registry request.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Exponential backoff with jitter, capped.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Upper bound on an honoured `Retry-After`, so a registry cannot stall us for hours.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (`attempt` ≥ 1 failed): the exponential delay
    /// scaled by a random factor in [0.5, 1), raised to `retry_after` when the server asked.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponent = attempt.saturating_sub(1).min(16);
        let base = self
            .initial_backoff
            .saturating_mul(1 << exponent)
            .min(self.max_backoff);
        let jitter = 0.5 + (random_u64() % 1000) as f64 / 2000.0;
        let delay = base.mul_f64(jitter);
        match retry_after {
            Some(asked) => delay.max(asked.min(self.max_retry_after)),
            None => delay,
        }
    }
}

/// Statuses that say "try again": throttling and transient server/gateway failures.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Transport failures worth repeating: the connection broke, timed out or spoke garbage
/// (a refused TLS handshake is not: it fails the same way every time).
pub fn retryable_error(error: &ureq::Error) -> bool {
    !super::tls::is_tls_failure(error)
        && matches!(
            error,
            ureq::Error::Io(_)
                | ureq::Error::Timeout(_)
                | ureq::Error::ConnectionFailed
                | ureq::Error::Protocol(_)
        )
}

/// `Retry-After` in seconds (the HTTP-date form is rare for registries and ignored).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn random_u64() -> u64 {
    // RandomState is seeded randomly per instance: enough entropy for jitter, no extra crate.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let policy = RetryPolicy::default();
        let first = policy.delay(1, None);
        assert!(first >= Duration::from_millis(100) && first < Duration::from_millis(200));
        let third = policy.delay(3, None);
        assert!(third >= Duration::from_millis(400) && third < Duration::from_millis(800));
        assert!(policy.delay(30, None) <= policy.max_backoff);
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3600))),
            policy.max_retry_after
        );
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn classification() {
        for s in [429, 500, 502, 503, 504] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 201, 400, 401, 403, 404, 501] {
            assert!(!retryable_status(s), "{s}");
        }
        assert!(retryable_error(&ureq::Error::ConnectionFailed));
        assert!(!retryable_error(&ureq::Error::HostNotFound));
        let refused = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let refused = std::io::Error::new(std::io::ErrorKind::InvalidData, refused);
        assert!(!retryable_error(&ureq::Error::Io(refused)));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(retryable_error(&ureq::Error::Io(reset)));
    }
}
