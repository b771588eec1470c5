//! Platform and Buildpack API versions: parsing, the supported lists and the
//! start-up checks (exit 11 / 12) of the reference launcher.

use crate::errors::{Failure, EXIT_BUILDPACK_API, EXIT_PLATFORM_API};
use crate::log::Logger;

/// Platform APIs this launcher implements, ascending. The self-description
/// embedded in the binary is generated from this same list.
pub const PLATFORM_APIS: &[&str] = &[
    "0.7", "0.8", "0.9", "0.10", "0.11", "0.12", "0.13", "0.14", "0.15",
];
/// Buildpack APIs this launcher implements, ascending.
pub const BUILDPACK_APIS: &[&str] = &["0.7", "0.8", "0.9", "0.10", "0.11", "0.12"];
/// Supported but deprecated APIs (none today, as in the reference lifecycle).
pub const DEPRECATED_PLATFORM_APIS: &[&str] = &[];
pub const DEPRECATED_BUILDPACK_APIS: &[&str] = &[];

/// An API version `major.minor`, parsed like the reference (`^v?(\d+)\.?(\d*)$`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
}

impl Version {
    pub const fn new(major: u64, minor: u64) -> Self {
        Version { major, minor }
    }

    pub fn parse(s: &str) -> Option<Version> {
        let s = s.strip_prefix('v').unwrap_or(s);
        let major_len = s.bytes().take_while(u8::is_ascii_digit).count();
        if major_len == 0 {
            return None;
        }
        let (major, rest) = s.split_at(major_len);
        let minor = rest.strip_prefix('.').unwrap_or(rest);
        if !minor.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Version {
            major: major.parse().ok()?,
            minor: if minor.is_empty() {
                0
            } else {
                minor.parse().ok()?
            },
        })
    }

    pub fn at_least(self, major: u64, minor: u64) -> bool {
        self >= Version::new(major, minor)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Whether a launcher supporting `supported` runs something that requests `requested`:
/// 0.x versions must match exactly; from 1.0 on a supported `M.n` covers `M.m`, m <= n.
pub fn covers(supported: Version, requested: Version) -> bool {
    if supported.major == 0 {
        supported == requested
    } else {
        supported.major == requested.major && requested.minor <= supported.minor
    }
}

fn in_list(list: &[&str], v: Version) -> bool {
    list.iter()
        .filter_map(|s| Version::parse(s))
        .any(|s| covers(s, v))
}

/// `CNB_DEPRECATION_MODE`; anything unknown behaves like `warn` (as the reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeprecationMode {
    Quiet,
    Warn,
    Error,
}

impl DeprecationMode {
    pub fn from_env(value: Option<&str>) -> Self {
        match value {
            Some("quiet") => DeprecationMode::Quiet,
            Some("error") => DeprecationMode::Error,
            _ => DeprecationMode::Warn,
        }
    }
}

/// The supported and deprecated lists; a parameter so tests can inject deprecations.
#[derive(Debug, Clone, Copy)]
pub struct ApiLists<'a> {
    pub supported: &'a [&'a str],
    pub deprecated: &'a [&'a str],
}

pub const PLATFORM: ApiLists<'static> = ApiLists {
    supported: PLATFORM_APIS,
    deprecated: DEPRECATED_PLATFORM_APIS,
};
pub const BUILDPACK: ApiLists<'static> = ApiLists {
    supported: BUILDPACK_APIS,
    deprecated: DEPRECATED_BUILDPACK_APIS,
};

/// Checks `CNB_PLATFORM_API`: exit 11 if blank, unparsable or unsupported.
pub fn verify_platform_api(
    requested: &str,
    lists: ApiLists<'_>,
    mode: DeprecationMode,
    log: &Logger,
) -> Result<Version, Failure> {
    if requested.trim().is_empty() {
        return Err(Failure::new(
            EXIT_PLATFORM_API,
            "failed to get platform API version; please set 'CNB_PLATFORM_API' to specify the desired platform API version",
        ));
    }
    let Some(v) = Version::parse(requested) else {
        return Err(Failure::new(
            EXIT_PLATFORM_API,
            format!("failed to parse platform API '{requested}'"),
        ));
    };
    let incompatible = || {
        Failure::new(
            EXIT_PLATFORM_API,
            format!("failed to set platform API: platform API version '{requested}' is incompatible with the lifecycle"),
        )
    };
    let deprecated = || format!("Platform requested deprecated API '{requested}'");
    check_support(v, lists, mode, log, deprecated, incompatible)
}

/// Checks one `[[buildpacks]]` entry: exit 12 if unparsable or unsupported.
pub fn verify_buildpack_api(
    id: &str,
    requested: &str,
    lists: ApiLists<'_>,
    mode: DeprecationMode,
    log: &Logger,
) -> Result<Version, Failure> {
    let Some(v) = Version::parse(requested) else {
        // The reference formats its nil *Version here, hence the literal `<nil>`.
        return Err(Failure::new(
            EXIT_BUILDPACK_API,
            format!("failed to parse buildpack API '<nil>' for buildpack '{id}'"),
        ));
    };
    let incompatible = || {
        Failure::new(
            EXIT_BUILDPACK_API,
            format!("failed to set API for buildpack '{id}': buildpack API version '{requested}' is incompatible with the lifecycle"),
        )
    };
    let deprecated = || format!("buildpack '{id}' requests deprecated API '{requested}'");
    check_support(v, lists, mode, log, deprecated, incompatible)
}

/// Unsupported → `incompatible`; deprecated → per `CNB_DEPRECATION_MODE`: nothing,
/// a warning, or two `ERROR:` lines and `incompatible` (as the reference).
fn check_support(
    v: Version,
    lists: ApiLists<'_>,
    mode: DeprecationMode,
    log: &Logger,
    deprecated: impl Fn() -> String,
    incompatible: impl Fn() -> Failure,
) -> Result<Version, Failure> {
    if !in_list(lists.supported, v) {
        return Err(incompatible());
    }
    if in_list(lists.deprecated, v) {
        match mode {
            DeprecationMode::Quiet => {}
            DeprecationMode::Warn => log.warn(&deprecated()),
            DeprecationMode::Error => {
                log.error(&deprecated());
                log.error("Deprecated APIs are disabled by CNB_DEPRECATION_MODE=error");
                return Err(incompatible());
            }
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet_log() -> Logger {
        Logger::capture(true)
    }

    #[test]
    fn parses_like_the_reference_regex() {
        assert_eq!(Version::parse("0.15"), Some(Version::new(0, 15)));
        assert_eq!(Version::parse("v0.9"), Some(Version::new(0, 9)));
        assert_eq!(Version::parse("1"), Some(Version::new(1, 0)));
        assert_eq!(Version::parse("1."), Some(Version::new(1, 0)));
        for bad in [
            "", "bad-api", "0.x", ".1", "0.1.2", " 0.9", "0.9 ", "v", "0..1",
        ] {
            assert_eq!(Version::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Version::parse("99999999999999999999.1"), None);
        assert_eq!(Version::new(0, 15).to_string(), "0.15");
    }

    #[test]
    fn supported_lists_are_ascending_and_parse() {
        for list in [PLATFORM_APIS, BUILDPACK_APIS] {
            let parsed: Vec<_> = list.iter().map(|s| Version::parse(s).unwrap()).collect();
            assert!(parsed.windows(2).all(|w| w[0] < w[1]), "{list:?}");
        }
        assert_eq!(PLATFORM_APIS.first(), Some(&"0.7"));
        assert_eq!(PLATFORM_APIS.last(), Some(&"0.15"));
        assert_eq!(BUILDPACK_APIS.last(), Some(&"0.12"));
    }

    #[test]
    fn platform_api_errors_match_reference_messages() {
        let log = quiet_log();
        let m = DeprecationMode::Warn;
        for blank in ["", "  "] {
            let e = verify_platform_api(blank, PLATFORM, m, &log).unwrap_err();
            assert_eq!(e.code, 11);
            assert_eq!(e.message, "failed to get platform API version; please set 'CNB_PLATFORM_API' to specify the desired platform API version");
        }
        let e = verify_platform_api("bad-api", PLATFORM, m, &log).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (11, "failed to parse platform API 'bad-api'")
        );
        for v in ["0.6", "0.16", "2.2"] {
            let e = verify_platform_api(v, PLATFORM, m, &log).unwrap_err();
            assert_eq!(e.code, 11);
            assert_eq!(e.message, format!("failed to set platform API: platform API version '{v}' is incompatible with the lifecycle"));
        }
        for v in PLATFORM_APIS {
            assert!(verify_platform_api(v, PLATFORM, m, &log).is_ok());
        }
        assert_eq!(
            verify_platform_api("v0.10", PLATFORM, m, &log).unwrap(),
            Version::new(0, 10)
        );
    }

    #[test]
    fn buildpack_api_errors_match_reference_messages() {
        let log = quiet_log();
        let m = DeprecationMode::Warn;
        let e = verify_buildpack_api("a/b", "0.6", BUILDPACK, m, &log).unwrap_err();
        assert_eq!(e.code, 12);
        assert_eq!(e.message, "failed to set API for buildpack 'a/b': buildpack API version '0.6' is incompatible with the lifecycle");
        for bad in ["", "x"] {
            let e = verify_buildpack_api("a/b", bad, BUILDPACK, m, &log).unwrap_err();
            assert_eq!(
                (e.code, e.message.as_str()),
                (
                    12,
                    "failed to parse buildpack API '<nil>' for buildpack 'a/b'"
                )
            );
        }
        for v in BUILDPACK_APIS {
            assert!(verify_buildpack_api("a", v, BUILDPACK, m, &log).is_ok());
        }
    }

    #[test]
    fn one_x_minor_compatibility() {
        assert!(in_list(&["1.2"], Version::new(1, 1)));
        assert!(!in_list(&["1.2"], Version::new(1, 3)));
        assert!(!in_list(&["0.9"], Version::new(0, 8)));
    }

    #[test]
    fn deprecation_modes() {
        let lists = ApiLists {
            supported: &["0.8", "0.9"],
            deprecated: &["0.8"],
        };
        let log = Logger::capture(true);
        assert!(verify_platform_api("0.8", lists, DeprecationMode::Warn, &log).is_ok());
        assert_eq!(
            log.captured(),
            "Warning: Platform requested deprecated API '0.8'\n"
        );

        let log = Logger::capture(true);
        assert!(verify_platform_api("0.8", lists, DeprecationMode::Quiet, &log).is_ok());
        assert_eq!(log.captured(), "");

        let log = Logger::capture(true);
        let e = verify_platform_api("0.8", lists, DeprecationMode::Error, &log).unwrap_err();
        assert_eq!(e.code, 11);
        assert_eq!(log.captured(), "ERROR: Platform requested deprecated API '0.8'\nERROR: Deprecated APIs are disabled by CNB_DEPRECATION_MODE=error\n");

        let log = Logger::capture(true);
        let e = verify_buildpack_api("bp", "0.8", lists, DeprecationMode::Error, &log).unwrap_err();
        assert_eq!(e.code, 12);
        assert!(log
            .captured()
            .starts_with("ERROR: buildpack 'bp' requests deprecated API '0.8'\n"));
        let log = Logger::capture(true);
        assert!(verify_buildpack_api("bp", "0.8", lists, DeprecationMode::Warn, &log).is_ok());
        assert_eq!(
            log.captured(),
            "Warning: buildpack 'bp' requests deprecated API '0.8'\n"
        );

        assert_eq!(DeprecationMode::from_env(None), DeprecationMode::Warn);
        assert_eq!(
            DeprecationMode::from_env(Some("silent")),
            DeprecationMode::Warn
        );
        assert_eq!(
            DeprecationMode::from_env(Some("quiet")),
            DeprecationMode::Quiet
        );
        assert_eq!(
            DeprecationMode::from_env(Some("error")),
            DeprecationMode::Error
        );
        assert_eq!(
            DeprecationMode::from_env(Some("ERROR")),
            DeprecationMode::Warn,
            "modes are case-sensitive"
        );
        // A supported, non-deprecated API is accepted silently in every mode.
        for mode in [
            DeprecationMode::Quiet,
            DeprecationMode::Warn,
            DeprecationMode::Error,
        ] {
            let log = Logger::capture(true);
            assert!(verify_platform_api("0.9", lists, mode, &log).is_ok());
            assert!(verify_buildpack_api("bp", "0.9", lists, mode, &log).is_ok());
            assert_eq!(log.captured(), "");
        }
    }
}
